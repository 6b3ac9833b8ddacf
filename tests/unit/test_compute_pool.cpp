// ComputePool: static ranges that cover every element once, on the caller and the workers,
// aligned, reused across calls with different part counts, and errors brought back.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "slurmlab/core/compute_pool.hpp"

using slurmlab::ComputePool;

TEST(ComputePool, RangesCoverEveryElementOnceAlignedAndSplitOverThreads) {
  for (int parts : {1, 2, 3, 4, 2, 1}) {  // grows the pool, then asks for fewer parts again
    for (std::int64_t n : {0, 1, 15, 16, 17, 100, 1000, 65537}) {
      std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
      std::mutex mutex;
      std::set<std::thread::id> threads;
      std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
      ComputePool::instance().run(parts, n, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) seen[static_cast<std::size_t>(i)]++;
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
        ranges.emplace_back(begin, end);
      });
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1) << parts << " " << n;
      for (auto [begin, end] : ranges) {
        EXPECT_EQ(begin % 16, 0) << "part start " << begin;
        EXPECT_LT(begin, end) << "no empty part is run";
      }
      // As many parts as there are 16-element blocks at most, each on its own thread.
      const auto expected = std::min<std::int64_t>(parts, (n + 15) / 16);
      if (n > 0) {
        EXPECT_EQ(static_cast<std::int64_t>(threads.size()), std::max<std::int64_t>(expected, 1));
      }
    }
  }
}

TEST(ComputePool, AnExceptionInAWorkersPartReachesTheCallerAfterEveryPartEnded) {
  std::atomic<int> finished{0};
  EXPECT_THROW(ComputePool::instance().run(3, 3 * 16,
                                           [&](std::int64_t begin, std::int64_t) {
                                             if (begin == 32) throw std::runtime_error("part 2 failed");
                                             finished++;
                                           }),
               std::runtime_error);
  EXPECT_EQ(finished, 2);
  // The pool still works afterwards.
  std::atomic<std::int64_t> sum{0};
  ComputePool::instance().run(3, 3 * 16, [&](std::int64_t begin, std::int64_t end) { sum += end - begin; });
  EXPECT_EQ(sum, 48);
}
