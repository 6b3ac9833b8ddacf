#pragma once
// Counter-based random numbers for the LKJ sampler, identical on host and device.
//
// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC'11) maps a 128-bit counter and a 64-bit key to 128 random bits with no
// state, so any draw of any sample can be computed on its own: sample k is the same
// whatever the number of ranks or GPUs that computed the others. Everything here is
// header-only and marked __host__ __device__ when nvcc compiles it, so the CUDA
// sampling kernel and the CPU reference run the very same code.
//
// Counter layout of the sampler (see DrawStream): word 0 = draw number within a stream,
// word 1 = row of the Cholesky factor, word 2 = sample index (low 32 bits), word 3 = sample
// index (bits 32..47) | stream purpose << 16. Key = the 64-bit seed.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SLURMLAB_HOST_DEVICE __host__ __device__
#else
#define SLURMLAB_HOST_DEVICE
#endif

namespace slurmlab::linalg {

struct Philox4x32 {
  std::uint32_t v[4];
};

// The 10-round Philox4x32 bijection, keyed by (key0, key1): the Random123 reference.
SLURMLAB_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMultiplier0 = 0xD2511F53u;
  constexpr std::uint32_t kMultiplier1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
  constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
  std::uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t product0 = static_cast<std::uint64_t>(kMultiplier0) * c0;
    const std::uint64_t product1 = static_cast<std::uint64_t>(kMultiplier1) * c2;
    const auto hi0 = static_cast<std::uint32_t>(product0 >> 32), lo0 = static_cast<std::uint32_t>(product0);
    const auto hi1 = static_cast<std::uint32_t>(product1 >> 32), lo1 = static_cast<std::uint32_t>(product1);
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// A uniform double in (0, 1) from 64 bits: 52 random bits, offset by half a step, so the
// values run from 2^-53 to 1 - 2^-53, all exact: neither 0 nor 1 can occur (log(u) and
// Box-Muller stay finite). With 53 bits the top value would round to 1.
SLURMLAB_HOST_DEVICE inline double uniform_open01(std::uint32_t high, std::uint32_t low) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(high) << 32) | low) >> 12;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-52;
}

// Which independent stream of a row a draw comes from.
enum class StreamPurpose : std::uint32_t { direction = 0, gamma_numerator = 1, gamma_denominator = 2, test = 3 };

// One stream of draws: (seed, sample index, row, purpose); draw n is Philox(counter n).
// Each draw yields two uniforms in (0, 1).
struct DrawStream {
  std::uint64_t seed;
  std::uint64_t sample;  // < 2^48
  std::uint32_t row;
  StreamPurpose purpose;

  struct Pair {
    double first, second;
  };
  SLURMLAB_HOST_DEVICE Pair uniforms(std::uint32_t draw) const {
    const Philox4x32 counter{{draw, row, static_cast<std::uint32_t>(sample),
                              static_cast<std::uint32_t>((sample >> 32) & 0xFFFFu) |
                                  (static_cast<std::uint32_t>(purpose) << 16)}};
    const Philox4x32 bits =
        philox4x32_10(counter, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
    return {uniform_open01(bits.v[0], bits.v[1]), uniform_open01(bits.v[2], bits.v[3])};
  }
  // Two independent standard normals from draw n (Box-Muller).
  SLURMLAB_HOST_DEVICE Pair normals(std::uint32_t draw) const {
    const Pair u = uniforms(draw);
    const double radius = std::sqrt(-2.0 * std::log(u.first));
    const double angle = 6.283185307179586476925286766559 * u.second;
    return {radius * std::cos(angle), radius * std::sin(angle)};
  }
};

// Gamma(shape, 1) by Marsaglia & Tsang (2000), "A simple method for generating gamma
// variables": for shape >= 1 squeeze-and-reject on (1 + x/sqrt(9d))^3 with d = shape - 1/3;
// for shape < 1 the boost Gamma(shape) = Gamma(shape + 1) * U^(1/shape). Draw 0 of the
// stream is the boost's uniform; attempt k uses draws 2k+1 (the normal) and 2k+2 (the
// acceptance uniform). Returns log Gamma as well, so that tiny values (U^(1/shape) can
// underflow for small shapes) keep their logarithm.
struct GammaDraw {
  double value;
  double log_value;
};
SLURMLAB_HOST_DEVICE inline GammaDraw sample_gamma(const DrawStream& stream, double shape) {
  const bool boosted = shape < 1.0;
  const double a = boosted ? shape + 1.0 : shape;
  const double d = a - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  double log_value = 0.0;
  for (std::uint32_t attempt = 0;; ++attempt) {
    const double x = stream.normals(2 * attempt + 1).first;
    const double t = 1.0 + c * x;
    if (t <= 0.0) continue;
    const double v = t * t * t;
    const double u = stream.uniforms(2 * attempt + 2).first;
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) {
      log_value = std::log(d) + std::log(v);
      break;
    }
  }
  if (boosted) log_value += std::log(stream.uniforms(0).first) / shape;
  return {std::exp(log_value), log_value};
}

// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). Returns y and 1 - y, each
// computed from its own Gamma (no cancellation in 1 - y when y is close to 1), and
// log(1 - y), which the log-determinant needs exactly.
struct BetaDraw {
  double y;
  double one_minus_y;
  double log_one_minus_y;
};
SLURMLAB_HOST_DEVICE inline BetaDraw beta_from_gammas(GammaDraw x, GammaDraw z) {
  // Work relative to the larger log so that neither sum underflows nor overflows.
  const double top = x.log_value > z.log_value ? x.log_value : z.log_value;
  const double ex = std::exp(x.log_value - top), ez = std::exp(z.log_value - top);
  const double sum = ex + ez;
  return {ex / sum, ez / sum, z.log_value - top - std::log(sum)};
}
SLURMLAB_HOST_DEVICE inline BetaDraw sample_beta(const DrawStream& numerator, const DrawStream& denominator, double a,
                                                 double b) {
  return beta_from_gammas(sample_gamma(numerator, a), sample_gamma(denominator, b));
}

}  // namespace slurmlab::linalg
