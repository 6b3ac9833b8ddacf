// ShardedSampler with drop_last (formerly nn::ShardedBatches): every global batch split among ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/sampler.hpp"

namespace slurmlab::data {
namespace {

TEST(ShardedBatches, RanksSplitEachGlobalBatchExactly) {
  const int world = 4;
  auto single = ShardedSampler::drop_last(103, 20, 1, 0, 42);
  EXPECT_EQ(single.batches_per_epoch(), 5);  // 103 // 20, the remainder is dropped
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    for (std::int64_t b = 0; b < 5; ++b) {
      std::vector<std::int64_t> gathered;
      for (int r = 0; r < world; ++r) {
        auto shard = ShardedSampler::drop_last(103, 20, world, r, 42);
        auto mine = shard.local_indices(epoch, b);
        ASSERT_EQ(mine.size(), 5u);
        gathered.insert(gathered.end(), mine.begin(), mine.end());
      }
      // The four shards, in rank order, are exactly the single-rank global batch.
      EXPECT_EQ(gathered, single.local_indices(epoch, b));
    }
  }
}

TEST(ShardedBatches, EpochIsAPermutationThatChangesPerEpochAndSeed) {
  auto s = ShardedSampler::drop_last(50, 10, 2, 1, 7);
  auto e0 = s.epoch_order(0), e1 = s.epoch_order(1);
  EXPECT_NE(e0, e1);
  auto sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 50; ++i) ASSERT_EQ(sorted[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(ShardedSampler::drop_last(50, 10, 2, 0, 7).epoch_order(1), e1);  // same on every rank
  EXPECT_NE(ShardedSampler::drop_last(50, 10, 2, 1, 8).epoch_order(0), e0);  // the seed matters
  // Within an epoch no sample repeats across batches and ranks.
  std::set<std::int64_t> seen;
  for (int r = 0; r < 2; ++r)
    for (std::int64_t b = 0; b < 5; ++b)
      for (auto i : ShardedSampler::drop_last(50, 10, 2, r, 7).local_indices(3, b)) EXPECT_TRUE(seen.insert(i).second);
  EXPECT_EQ(seen.size(), 50u);
  auto ordered = ShardedSampler::drop_last(50, 10, 2, 0, 7, false).epoch_order(4);
  EXPECT_TRUE(std::is_sorted(ordered.begin(), ordered.end()));
}

TEST(ShardedBatches, BadBatchSizesAreUsageErrors) {
  try {
    ShardedSampler::drop_last(100, 10, 4, 0, 1);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide among 4 ranks"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ShardedSampler::drop_last(8, 16, 1, 0, 1), UsageError);
}

}  // namespace
}  // namespace slurmlab::data
