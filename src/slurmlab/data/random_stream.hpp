#pragma once
// The data pipeline's random numbers, portable and stateless where it matters: the same bits
// on every standard library, thread count and rank count (std::uniform_int_distribution and
// friends differ between libraries, so they are not used).
#include <cstdint>
#include <random>

#include "slurmlab/core/splitmix64.hpp"

namespace slurmlab::data {

// Uniform integer in [0, bound), unbiased (rejection), from a 64-bit engine (bound > 0).
inline std::uint64_t uniform_below(std::mt19937_64& engine, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t value = engine();
  while (value >= limit) value = engine();
  return value % bound;
}

// Counter-based draws for per-sample augmentation: a pure function of (seed, epoch, sample,
// draw), so any thread may draw for any sample in any order and get the same numbers.
class SampleRandom {
 public:
  SampleRandom(std::uint64_t seed, std::int64_t epoch, std::int64_t sample)
      : key_(splitmix64(splitmix64(seed ^ 0x5851f42d4c957f2dULL) + static_cast<std::uint64_t>(epoch)) ^
             splitmix64(static_cast<std::uint64_t>(sample) + 0x9e3779b97f4a7c15ULL)) {}
  std::uint64_t next() { return splitmix64(key_ + 0x9e3779b97f4a7c15ULL * ++counter_); }
  // Uniform in [0, bound): 64 random bits modulo the bound (bias below 2^-40
  // for any image-sized bound).
  std::uint64_t below(std::uint64_t bound) { return next() % bound; }
  bool coin() { return (next() >> 63) != 0; }

 private:
  std::uint64_t key_;
  std::uint64_t counter_ = 0;
};

}  // namespace slurmlab::data
