#include "slurmlab/core/process.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace {

TEST(ProcessAge, IsSmallForAFreshProcessAndGrowsWithTheClock) {
  const auto before = slurmlab::process_age_seconds();
  ASSERT_TRUE(before.has_value());
  // CTest starts one process per test: it began well under a minute ago, never in the future.
  EXPECT_GE(*before, 0.0);
  EXPECT_LT(*before, 60.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto after = slurmlab::process_age_seconds();
  ASSERT_TRUE(after.has_value());
  // The start time is fixed; one clock tick (10 ms) of resolution plus scheduling slack.
  EXPECT_NEAR(*after - *before, 0.3, 0.05);
}

}  // namespace
