#include "slurmlab/nn/tensor/random.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

#include "slurmlab/core/compute_pool.hpp"
#include "slurmlab/core/splitmix64.hpp"

// OpenBLAS (linked by nn): its thread count is the process's compute-thread policy.
extern "C" int openblas_get_num_threads(void);

namespace slurmlab::nn {

void Generator::fill_uniform(std::span<float> values, float low, float high) {
  const std::uint64_t key = engine_();
  const float scale = (high - low) * (1.0f / 16777216.0f);
  float* out = values.data();
  const auto n = static_cast<std::int64_t>(values.size());
  const int threads = std::max(1, openblas_get_num_threads());
  ComputePool::instance().run(n >= (1 << 16) ? threads : 1, n, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const auto bits =
          static_cast<std::uint32_t>(splitmix64(key + kGoldenGamma * static_cast<std::uint64_t>(i + 1)) >> 40);
      out[i] = low + scale * static_cast<float>(bits);
    }
  });
}

float Generator::normal() {
  float u1 = uniform(0.0f, 1.0f);
  while (u1 <= 0.0f) u1 = uniform(0.0f, 1.0f);
  const float u2 = uniform(0.0f, 1.0f);
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(2.0f * std::numbers::pi_v<float> * u2);
}

std::uint64_t Generator::below(std::uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("Generator::below(0)");
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t value = engine_();
  while (value >= limit) value = engine_();
  return value % bound;
}

std::string Generator::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail()) throw std::runtime_error("random generator state does not parse (corrupt checkpoint?)");
  engine_ = engine;
}

}  // namespace slurmlab::nn
