#pragma once
// bfloat16 on the CPU: the upper 16 bits of a float32, rounded to nearest, ties to even (as
// oneDNN's reorders, PyTorch's .bfloat16() and CUDA's __float2bfloat16_rn round). NaN stays a
// quiet NaN. Internal to nn's CPU backends and their tests.
#include <bit>
#include <cstddef>
#include <cstdint>

namespace slurmlab::nn::detail {

inline std::uint16_t float_to_bf16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);  // NaN: quiet
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(std::uint16_t value) { return std::bit_cast<float>(static_cast<std::uint32_t>(value) << 16); }

// y[i] = float_to_bf16(x[i]) for n elements (vectorized; split over the compute threads for large n).
void floats_to_bf16(const float* x, std::uint16_t* y, std::size_t n);

}  // namespace slurmlab::nn::detail
