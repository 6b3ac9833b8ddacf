// data/sampler: DistributedSampler semantics per global batch, drop and pad, any rank count.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/sampler.hpp"

namespace slurmlab::data {
namespace {

// How often each index is drawn in `epoch`, over all ranks and batches.
std::map<std::int64_t, int> epoch_counts(std::int64_t size, std::int64_t global_batch, int world, LastBatch last,
                                         std::int64_t epoch) {
  std::map<std::int64_t, int> counts;
  for (int r = 0; r < world; ++r) {
    ShardedSampler sampler(size, global_batch, world, r, 99, last);
    for (std::int64_t b = 0; b < sampler.batches_per_epoch(); ++b)
      for (auto i : sampler.local_indices(epoch, b)) ++counts[i];
  }
  return counts;
}

TEST(ShardedSampler, DropCoversAllButTheDroppedTailOnAnyRankCount) {
  const std::int64_t size = 103, batch = 12;  // 8 batches, 7 dropped
  for (int world : {1, 2, 3, 4}) {
    const auto counts = epoch_counts(size, batch, world, LastBatch::drop, 2);
    EXPECT_EQ(counts.size(), 96u) << world;
    for (auto [index, n] : counts) EXPECT_EQ(n, 1) << "index " << index << " world " << world;
    ShardedSampler sampler(size, batch, world, 0, 99, LastBatch::drop);
    EXPECT_EQ(sampler.batches_per_epoch(), 8);
    EXPECT_EQ(sampler.padded_samples(), -7);
    // The dropped samples are the tail of the (rank-independent) epoch order.
    const auto order = sampler.epoch_order(2);
    for (std::size_t k = 96; k < order.size(); ++k) EXPECT_EQ(counts.count(order[k]), 0u);
  }
}

TEST(ShardedSampler, PadCoversEverySampleAndCountsThePadding) {
  const std::int64_t size = 103, batch = 12;  // 9 batches, 5 padded
  for (int world : {1, 2, 3, 4}) {
    const auto counts = epoch_counts(size, batch, world, LastBatch::pad, 1);
    ShardedSampler sampler(size, batch, world, world - 1, 99, LastBatch::pad);
    EXPECT_EQ(sampler.batches_per_epoch(), 9);
    EXPECT_EQ(sampler.padded_samples(), 5);
    ASSERT_EQ(counts.size(), 103u) << world;
    int total = 0, twice = 0;
    for (auto [index, n] : counts) {
      total += n;
      twice += n == 2;
      EXPECT_GE(n, 1);
      EXPECT_LE(n, 2);
    }
    EXPECT_EQ(total, 108);
    EXPECT_EQ(twice, 5);
    // Padding repeats the start of the epoch order, as DistributedSampler does.
    const auto order = sampler.epoch_order(1);
    for (std::size_t k = 0; k < 5; ++k) EXPECT_EQ(counts.at(order[k]), 2);
  }
  // A global batch larger than the data set repeats it cyclically.
  ShardedSampler tiny(3, 8, 2, 1, 0, LastBatch::pad, false);
  EXPECT_EQ(tiny.batches_per_epoch(), 1);
  EXPECT_EQ(tiny.local_indices(0, 0), (std::vector<std::int64_t>{1, 2, 0, 1}));
}

TEST(ShardedSampler, GlobalBatchesDoNotDependOnTheRankCount) {
  for (LastBatch last : {LastBatch::drop, LastBatch::pad}) {
    ShardedSampler single(50, 12, 1, 0, 5, last);
    for (int world : {2, 3, 4}) {
      if (12 % world) continue;
      for (std::int64_t b = 0; b < single.batches_per_epoch(); ++b) {
        std::vector<std::int64_t> gathered;
        for (int r = 0; r < world; ++r) {
          const auto mine = ShardedSampler(50, 12, world, r, 5, last).local_indices(3, b);
          gathered.insert(gathered.end(), mine.begin(), mine.end());
        }
        EXPECT_EQ(gathered, single.local_indices(3, b));
      }
    }
  }
}

TEST(ShardedSampler, SeedsAndEpochsAndSubsets) {
  ShardedSampler a(40, 8, 2, 0, 1, LastBatch::drop), b(40, 8, 2, 1, 1, LastBatch::drop);
  EXPECT_EQ(a.epoch_order(5), b.epoch_order(5));
  EXPECT_EQ(a.epoch_order(5), ShardedSampler(40, 8, 2, 0, 1, LastBatch::drop).epoch_order(5));
  EXPECT_NE(a.epoch_order(5), a.epoch_order(6));
  EXPECT_NE(a.epoch_order(5), ShardedSampler(40, 8, 2, 0, 2, LastBatch::drop).epoch_order(5));
  // Over a split's part: the same order, mapped through the index list.
  std::vector<std::int64_t> part(40);
  for (std::size_t i = 0; i < part.size(); ++i) part[i] = 1000 + 3 * static_cast<std::int64_t>(i);
  ShardedSampler over(part, 8, 2, 0, 1, LastBatch::drop);
  const auto plain = a.epoch_order(2), mapped = over.epoch_order(2);
  for (std::size_t k = 0; k < plain.size(); ++k) EXPECT_EQ(mapped[k], part[static_cast<std::size_t>(plain[k])]);
}

TEST(ShardedSampler, ResumeAtABatchSeesTheUninterruptedSequence) {
  ShardedSampler sampler(70, 16, 2, 1, 3, LastBatch::pad);  // 5 batches per epoch
  std::vector<std::vector<std::int64_t>> uninterrupted;
  BatchPosition p;
  for (int step = 0; step < 17; ++step, p = sampler.next(p)) {
    EXPECT_EQ(sampler.position_of_step(step), p);
    EXPECT_EQ(sampler.step_of(p), step);
    uninterrupted.push_back(sampler.local_indices(p.epoch, p.batch));
  }
  EXPECT_EQ(p, (BatchPosition{3, 2}));
  // A fresh sampler (a restarted job) from step 7 = (1, 2).
  ShardedSampler resumed(70, 16, 2, 1, 3, LastBatch::pad);
  BatchPosition q{1, 2};
  for (int step = 7; step < 17; ++step, q = resumed.next(q)) {
    EXPECT_EQ(resumed.local_indices(q.epoch, q.batch), uninterrupted[static_cast<std::size_t>(step)]) << step;
  }
}

TEST(ShardedSampler, BadBatchesAreUsageErrorsWithNumbersAndFix) {
  try {
    ShardedSampler(100, 10, 3, 0, 1, LastBatch::pad);
    FAIL();
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("global batch size 10 does not divide among 3 ranks"), std::string::npos) << m;
    EXPECT_NE(m.find("--batch-size"), std::string::npos) << m;
  }
  EXPECT_THROW(ShardedSampler(8, 16, 1, 0, 1, LastBatch::drop), UsageError);
  EXPECT_NO_THROW(ShardedSampler(8, 16, 1, 0, 1, LastBatch::pad));
  EXPECT_THROW(ShardedSampler(0, 4, 1, 0, 1, LastBatch::pad), UsageError);
  EXPECT_THROW(ShardedSampler(10, 2, 1, 0, 1, LastBatch::drop).local_indices(0, 5), std::out_of_range);
}

}  // namespace
}  // namespace slurmlab::data
