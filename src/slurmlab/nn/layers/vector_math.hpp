#pragma once
// Internal to the nn CPU backend: exp and erf for float written without calls or branches, so
// that the element-wise loops that use them (GELU) vectorize like rational_tanh's; libm's expf
// and erff are scalar calls that kept GELU at about a tenth of the speed of the other
// activations (airbench94's six GELUs were 15% of its step).
#include <bit>
#include <cmath>
#include <cstdint>

namespace slurmlab::nn::detail {

#if defined(__GNUC__)
#define SLURMLAB_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define SLURMLAB_ALWAYS_INLINE inline
#endif

// e^x for x in [-87.3, 88] (clamped; e^-87.3 is near the smallest normal float): Cephes' expf,
// x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, 2^n from the exponent bits.
// Relative error below 2e-7.
SLURMLAB_ALWAYS_INLINE float vector_exp(float x) {
  const float low = x < -87.3f ? -87.3f : x;
  const float c = low > 88.0f ? 88.0f : low;
  const float n = std::floor(c * 1.44269504088896341f + 0.5f);
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23);
  return e * scale;
}

// erf(x) as a 13/8 rational function on [-4, 4] (clamped; erf is +-1 in float beyond), the
// approximation Eigen uses; a few float ulps.
SLURMLAB_ALWAYS_INLINE float vector_erf(float x) {
  const float low = x < -4.0f ? -4.0f : x;
  const float c = low > 4.0f ? 4.0f : low;
  const float x2 = c * c;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * c;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

}  // namespace slurmlab::nn::detail
