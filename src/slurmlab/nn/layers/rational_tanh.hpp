#pragma once
// Internal to the nn CPU backend: the tanh that ActivationLayer and FusedMlp share, so the
// generic and the fused networks agree to a float ulp or two.
namespace slurmlab::nn::detail {

// tanh as a 13/6 rational function on [-7.9, 7.9] (the approximation Eigen uses), accurate to
// a few float ulps. Unlike a libm call it has no branches the compiler cannot turn into
// selects, so the loop vectorizes; the fit-regression MLP spends most of its step here.
// Always inlined: the vectorized loops are compiled once per instruction set
// (target_clones), and the helper must take each clone's instructions.
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline float rational_tanh(float x) {
  constexpr float kClamp = 7.90531110763549805f;
  const float low = x < -kClamp ? -kClamp : x;
  const float c = low > kClamp ? kClamp : low;
  const float x2 = c * c;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * c;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  // Near 0 this is x * (alpha_1 / beta_0) = x * (1 - 1.3e-7): no special case needed, which
  // keeps the loop branch-free. Measured error against double tanh: below 4e-7 everywhere.
  return p / q;
}

}  // namespace slurmlab::nn::detail
