// data/split: seeded train/validation split (--val-size as a count or a fraction).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/split.hpp"

namespace slurmlab::data {
namespace {

std::string usage_message(std::int64_t size, double val_size) {
  try {
    split_train_validation(size, val_size, 1);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

TEST(TrainValidationSplit, CountsAndFractions) {
  EXPECT_EQ(validation_count(50000, 5000), 5000);
  EXPECT_EQ(validation_count(50000, 0.1), 5000);
  EXPECT_EQ(validation_count(1000, 0.0125), 13);  // 12.5 rounds away from zero (llround)
  EXPECT_EQ(validation_count(10, 0), 0);
  EXPECT_EQ(validation_count(10, 1), 1);  // a whole number >= 1 is a count
  auto split = split_train_validation(1000, 0.25, 7);
  EXPECT_EQ(split.validation.size(), 250u);
  EXPECT_EQ(split.train.size(), 750u);
  // Disjoint, covering, sorted.
  std::vector<std::int64_t> all = split.train;
  all.insert(all.end(), split.validation.begin(), split.validation.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
  EXPECT_TRUE(std::is_sorted(split.train.begin(), split.train.end()));
  EXPECT_TRUE(std::is_sorted(split.validation.begin(), split.validation.end()));
  EXPECT_TRUE(split_train_validation(10, 0, 7).validation.empty());
}

TEST(TrainValidationSplit, DeterministicPerSeed) {
  const auto a = split_train_validation(5000, 500, 3), b = split_train_validation(5000, 500, 3);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(split_train_validation(5000, 500, 4).validation, a.validation);
  // Not just the first or last indices: the validation part is spread over the set.
  EXPECT_LT(a.validation.front(), 100);
  EXPECT_GT(a.validation.back(), 4900);
  // The count and the equivalent fraction pick the same samples.
  EXPECT_EQ(split_train_validation(5000, 0.1, 3).validation, a.validation);
}

TEST(TrainValidationSplit, BadSizesAreUsageErrorsNamingTheOption) {
  for (double bad : {-1.0, -0.5, 2.5, 1000.0, 2000.0, 0.0001}) {
    const auto message = usage_message(1000, bad);
    EXPECT_NE(message.find("--val-size"), std::string::npos) << message;
  }
  EXPECT_NE(usage_message(1000, 1000).find("leaves none to train on"), std::string::npos);
  EXPECT_NE(usage_message(1000, 0.0001).find("rounds to no validation sample"), std::string::npos);
  EXPECT_NE(usage_message(1000, 2.5).find("neither a whole count nor a fraction"), std::string::npos);
  EXPECT_THROW(validation_count(10, std::nan("")), UsageError);
  try {
    validation_count(10, 20, "--holdout");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--holdout 20"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slurmlab::data
