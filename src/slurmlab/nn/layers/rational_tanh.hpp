#pragma once
#include <cstddef>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Internal to the nn CPU backend: the tanh that ActivationLayer and FusedMlp share, so the
// generic and the fused networks agree to a float ulp or two.
namespace slurmlab::nn::detail {

// tanh as a 13/6 rational function on [-7.9, 7.9] (the approximation Eigen uses), accurate to
// a few float ulps: tanh(x) = x P(x^2) / Q(x^2) with x clamped to [-kTanhClamp, kTanhClamp].
// Near 0 this is x * (alpha_1 / beta_0) = x * (1 - 1.3e-7): no special case needed, which keeps
// it branch-free. Measured error against double tanh: below 4e-7 everywhere.
inline constexpr float kTanhClamp = 7.90531110763549805f;
// P's coefficients from the highest power of x^2 down, then Q's.
inline constexpr float kTanhP[7] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f,
                                    5.12229709037114e-08f,  1.48572235717979e-05f, 6.37261928875436e-04f,
                                    4.89352455891786e-03f};
inline constexpr float kTanhQ[4] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f,
                                    4.89352518554385e-03f};

// Unlike a libm call it has no branches the compiler cannot turn into selects, so loops over it
// vectorize; the fit-regression MLP spends most of its step here. Always inlined: the vectorized
// loops are compiled once per instruction set (target_clones), and the helper must take each
// clone's instructions. ActivationLayer's tanh runs the same arithmetic in explicit AVX2/AVX-512
// (activations.cpp), where GCC's selects for the clamp cost a fifth of the loop.
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
// Horner's steps written out: as loops over the coefficient arrays, GCC at -O2 did not unroll
// them inside FusedMlp's row loops, which then stayed scalar (fit-regression's epochs 2.5x
// slower, bench/fit, 2026-12-04).
inline float rational_tanh(float x) {
  const float low = x < -kTanhClamp ? -kTanhClamp : x;
  const float c = low > kTanhClamp ? kTanhClamp : low;
  const float x2 = c * c;
  float p = x2 * kTanhP[0] + kTanhP[1];
  p = p * x2 + kTanhP[2];
  p = p * x2 + kTanhP[3];
  p = p * x2 + kTanhP[4];
  p = p * x2 + kTanhP[5];
  p = p * x2 + kTanhP[6];
  p = p * c;
  float q = x2 * kTanhQ[0] + kTanhQ[1];
  q = q * x2 + kTanhQ[2];
  q = q * x2 + kTanhQ[3];
  return p / q;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SLURMLAB_TANH_VECTORS 1
// rational_tanh's arithmetic on 8 and 16 floats, for kernels compiled for AVX2+FMA and AVX-512
// (activations.cpp; Linear(1, k)'s outer product with the tanh after it, linear.cpp): the same
// operations in the same order, so the same bits as rational_tanh compiled with FMA. GCC turns
// the scalar clamp into compares and blends on the result (nine instructions a vector, a fifth
// of the loop); here it is one max and one min, with the operands ordered so that a NaN input
// stays NaN, as in the scalar code.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 rational_tanh8(__m256 x) {
  const __m256 c = _mm256_min_ps(_mm256_set1_ps(kTanhClamp), _mm256_max_ps(_mm256_set1_ps(-kTanhClamp), x));
  const __m256 x2 = _mm256_mul_ps(c, c);
  __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(kTanhP[0]), _mm256_set1_ps(kTanhP[1]));
  for (int k = 2; k < 7; ++k) p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(kTanhP[k]));
  __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(kTanhQ[0]), _mm256_set1_ps(kTanhQ[1]));
  for (int k = 2; k < 4; ++k) q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(kTanhQ[k]));
  return _mm256_div_ps(_mm256_mul_ps(p, c), q);
}
// GCC 12 reports its own _mm512 intrinsics as maybe reading an uninitialized value (a known
// false positive of -Wmaybe-uninitialized), hence the pragma.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"), always_inline)) inline __m512 rational_tanh16(__m512 x) {
  const __m512 c = _mm512_min_ps(_mm512_set1_ps(kTanhClamp), _mm512_max_ps(_mm512_set1_ps(-kTanhClamp), x));
  const __m512 x2 = _mm512_mul_ps(c, c);
  __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(kTanhP[0]), _mm512_set1_ps(kTanhP[1]));
  for (int k = 2; k < 7; ++k) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(kTanhP[k]));
  __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(kTanhQ[0]), _mm512_set1_ps(kTanhQ[1]));
  for (int k = 2; k < 4; ++k) q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(kTanhQ[k]));
  return _mm512_div_ps(_mm512_mul_ps(p, c), q);
}
#pragma GCC diagnostic pop
#endif

// The array kernels ActivationLayer chooses from (this CPU's): the portable loop over
// rational_tanh and, on x86-64, AVX2 and AVX-512; listed so that tests check each one.
struct TanhKernelEntry {
  const char* name;
  void (*kernel)(const float* x, float* y, std::size_t n);  // y may be x
};
std::vector<TanhKernelEntry> tanh_kernels();
// y[i] = rational_tanh(x[i]) by the widest of those kernels (chosen once); y may be x.
void tanh_array(const float* x, float* y, std::size_t n);
// y[i] = rational_tanh(shift + x[i] scale) in one pass (FusedMlp's first layer with one input);
// y may be x.
void tanh_affine_array(const float* x, float scale, float shift, float* y, std::size_t n);

}  // namespace slurmlab::nn::detail
