#pragma once
// Internal to the nn CPU backend: independent items (BatchNorm's channels, pooling's image
// planes) split over the compute threads, as many as OpenBLAS uses (the process's one thread
// count), when the work is large enough to pay for waking them (2^16 values). Each item is
// computed the same way on any thread count, so results are the same bits.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <functional>

#include "slurmlab/core/compute_pool.hpp"

namespace slurmlab::nn::detail {

inline void for_each_item(std::int64_t items, std::int64_t values, const std::function<void(std::int64_t)>& body) {
  const int parts = values >= (1 << 16) ? std::max(1, openblas_get_num_threads()) : 1;
  ComputePool::instance().run(
      parts, items,
      [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t item = begin; item < end; ++item) body(item);
      },
      1);
}

}  // namespace slurmlab::nn::detail
