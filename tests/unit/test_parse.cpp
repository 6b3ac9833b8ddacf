// core/parse.hpp and core/precision.hpp: comma lists, whole-text numbers, LO,HI ranges, precisions.
#include "slurmlab/core/parse.hpp"
#include "slurmlab/core/precision.hpp"

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

TEST(Precision, OneEnumTwoSpellingsAndEachModulesSubset) {
  EXPECT_EQ(to_string(Precision::float64), "float64");
  EXPECT_EQ(short_name(Precision::float64), "fp64");
  EXPECT_EQ(short_name(Precision::bf16), "bf16");
  for (auto precision : {Precision::float64, Precision::float32, Precision::bf16}) {
    EXPECT_EQ(parse_precision(to_string(precision)), precision);
    EXPECT_EQ(parse_precision(short_name(precision)), precision);
  }
  EXPECT_EQ(parse_precision("bfloat16"), Precision::bf16);
  try {
    parse_precision("bf16", {Precision::float64, Precision::float32});
    ADD_FAILURE() << "bf16 accepted where only fp64 and fp32 are";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "unknown precision 'bf16'; use fp64 or fp32");
  }
  try {
    parse_precision("fp16");
    ADD_FAILURE() << "fp16 accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "unknown precision 'fp16'; use fp64, fp32 or bf16");
  }
}
