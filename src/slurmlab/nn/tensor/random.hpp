#pragma once
// Generator: the one random source of slurmlab::nn (initialisation, dropout masks, shuffles).
// Its full state round-trips through a string, so checkpoints restore it exactly.
#include <cstdint>
#include <random>
#include <span>
#include <string>

namespace slurmlab::nn {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  // Uniform in [low, high), computed from 24 random bits so it is the same on every
  // standard library (std::uniform_real_distribution is not).
  float uniform(float low, float high) {
    const auto bits = static_cast<std::uint32_t>(engine_() >> 40);  // 24 bits
    const float unit = static_cast<float>(bits) * (1.0f / 16777216.0f);
    return low + (high - low) * unit;
  }
  // Fills `values` with uniforms in [low, high) (24 bits each, as uniform()) from one 64-bit
  // key drawn from this generator: value i is the SplitMix64 stream of that key entered at
  // draw i, a function of (key, i) alone. So a layer's initialisation is filled on all compute
  // threads with the same numbers on any thread count, and the generator advances one draw per
  // call (AlexNet's 57M weights: 0.45 s drawn one by one from the Mersenne twister).
  void fill_uniform(std::span<float> values, float low, float high);
  // Standard normal (Box-Muller on the 24-bit uniforms).
  float normal();
  std::uint64_t next() { return engine_(); }
  // Uniform integer in [0, bound), unbiased (rejection), portable.
  std::uint64_t below(std::uint64_t bound);
  std::string state() const;
  void set_state(const std::string& state);

 private:
  std::mt19937_64 engine_;
};

}  // namespace slurmlab::nn
