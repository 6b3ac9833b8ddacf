// core/parse.hpp: comma lists, whole-text numbers and LO,HI ranges.
#include "slurmlab/core/parse.hpp"

#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"

using namespace slurmlab;

TEST(SplitCommaList, TrimsItemsAndKeepsEmptyOnesForTheCallerToName) {
  EXPECT_EQ(split_comma_list("8, 64,\t512 "), (std::vector<std::string>{"8", "64", "512"}));
  EXPECT_EQ(split_comma_list("zCMB"), (std::vector<std::string>{"zCMB"}));
  EXPECT_EQ(split_comma_list(",a,"), (std::vector<std::string>{"", "a", ""}));
  EXPECT_EQ(split_comma_list(" "), (std::vector<std::string>{""}));
  EXPECT_TRUE(split_comma_list("").empty());
}

TEST(ParseFiniteDouble, ReadsTheWholeTextOrNothing) {
  EXPECT_EQ(parse_finite_double("-30.5"), -30.5);
  EXPECT_EQ(parse_finite_double("1e-3"), 1e-3);
  EXPECT_EQ(parse_finite_double("+2"), 2.0);
  for (const char* bad : {"", "12x", " 1", "1 ", "nan", "inf", "-inf", "1e999", "a"})
    EXPECT_FALSE(parse_finite_double(bad).has_value()) << bad;
}

TEST(ParseInteger, ReadsTheWholeTextOrNothing) {
  EXPECT_EQ(parse_integer("512"), 512);
  EXPECT_EQ(parse_integer("-3"), -3);
  EXPECT_EQ(parse_integer("+7"), 7);
  for (const char* bad : {"", "8.5", "8x", " 8", "x", "99999999999999999999"})
    EXPECT_FALSE(parse_integer(bad).has_value()) << bad;
}

TEST(ParseRange, GivesLoAndHi) {
  EXPECT_EQ(parse_range("range", "-60,-30.5", "-60,-30"), (std::pair<double, double>{-60.0, -30.5}));
  EXPECT_EQ(parse_range("holdout-z", " 0.3 , 3", "0.5,2.5"), (std::pair<double, double>{0.3, 3.0}));
}

TEST(ParseRange, RefusesWithOneSentenceNamingTheOptionWhatIsWrongAndTheFix) {
  const std::string fix = "; give LO,HI with LO < HI, e.g. 0.5,2.5.";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1", " is not a range"},         {"1,2,3", " is not a range"},      {"", " is not a range"},
      {"a,1", ": 'a' is not a number"}, {"1,nan", ": 'nan' is not a number"}, {",", ": '' is not a number"},
      {"3,1", ": LO must be below HI"}, {"1,1", ": LO must be below HI"}};
  for (const auto& [text, problem] : cases) {
    try {
      parse_range("holdout-z", text, "0.5,2.5");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "--holdout-z '" + text + "'" + problem + fix);
    }
  }
}
