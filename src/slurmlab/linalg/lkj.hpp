#pragma once
// LKJ(eta) correlation matrices in Cholesky-factor form by the onion method
// (Lewandowski, Kurowicka & Joe 2009, section 3.2), host and device alike.
//
// Row 0 of L is e_0. For row i = 1..d-1: y_i ~ Beta(i/2, eta + (d-1-i)/2), u_i uniform on
// the unit sphere in R^i, L[i, :i] = sqrt(y_i) u_i and L[i, i] = sqrt(1 - y_i). Then
// C = L L^T is LKJ(eta) distributed and log det C = sum_i log(1 - y_i).
// (torch.distributions.LKJCholesky draws Beta(i - 1/2, ...) instead, which is not LKJ
// for d >= 3; tests/unit/test_lkj_statistics.cpp shows the theory test catches that.)
//
// Every row has its own Philox streams (random.hpp), so rows can be drawn in any order
// and in parallel (the CUDA kernel gives one block per row) with identical results.
#include <cstdint>

#include "slurmlab/linalg/random.hpp"

namespace slurmlab::linalg {

struct OnionBeta {
  double a;
  double b;
};

// The Beta parameters of row i (1 <= i < d) of the onion method.
SLURMLAB_HOST_DEVICE inline OnionBeta onion_beta_parameters(int dim, double eta, int row) {
  return {0.5 * row, eta + 0.5 * (dim - 1 - row)};
}

SLURMLAB_HOST_DEVICE inline DrawStream onion_stream(std::uint64_t seed, std::uint64_t sample, int row,
                                                    StreamPurpose purpose) {
  return DrawStream{seed, sample, static_cast<std::uint32_t>(row), purpose};
}

// The Beta draw of row i with the given parameters.
SLURMLAB_HOST_DEVICE inline BetaDraw onion_row_beta(std::uint64_t seed, std::uint64_t sample, int row, OnionBeta p) {
  return sample_beta(onion_stream(seed, sample, row, StreamPurpose::gamma_numerator),
                     onion_stream(seed, sample, row, StreamPurpose::gamma_denominator), p.a, p.b);
}

// The j-th unnormalised direction coordinate of row i: standard normal; normalising the
// vector (z_0..z_{i-1}) gives a uniform point on the unit sphere in R^i.
SLURMLAB_HOST_DEVICE inline double onion_direction_normal(std::uint64_t seed, std::uint64_t sample, int row, int j) {
  const auto pair = onion_stream(seed, sample, row, StreamPurpose::direction).normals(static_cast<std::uint32_t>(j / 2));
  return (j % 2 == 0) ? pair.first : pair.second;
}

// Writes row i (entries 0..i) of L given its Beta parameters; returns log L[i, i]^2 =
// log(1 - y_i). The CPU reference; the CUDA kernel does the same work spread over a block.
template <class Real>
inline double sample_onion_row(std::uint64_t seed, std::uint64_t sample, int row, OnionBeta p, Real* out) {
  if (row == 0) {
    out[0] = Real(1);
    return 0.0;
  }
  const BetaDraw beta = onion_row_beta(seed, sample, row, p);
  const auto direction = onion_stream(seed, sample, row, StreamPurpose::direction);
  double squared_norm = 0.0;
  for (int j = 0; j < row; j += 2) {
    const auto pair = direction.normals(static_cast<std::uint32_t>(j / 2));
    out[j] = static_cast<Real>(pair.first);
    squared_norm += pair.first * pair.first;
    if (j + 1 < row) {
      out[j + 1] = static_cast<Real>(pair.second);
      squared_norm += pair.second * pair.second;
    }
  }
  const double scale = std::sqrt(beta.y / squared_norm);
  for (int j = 0; j < row; ++j) out[j] = static_cast<Real>(static_cast<double>(out[j]) * scale);
  out[row] = static_cast<Real>(std::sqrt(beta.one_minus_y));
  return beta.log_one_minus_y;
}

// The whole factor, row-major d x d with zeros above the diagonal. Returns
// 2 * sum log L_ii = log det(L L^T), exact up to the Beta draws' rounding.
// `beta_of_row` maps (dim, eta, row) to the Beta parameters: onion_beta_parameters for
// LKJ; the tests pass a deliberately wrong one to check that they would notice.
template <class BetaOfRow = OnionBeta (*)(int, double, int)>
inline double sample_lkj_cholesky(std::uint64_t seed, std::uint64_t sample, int dim, double eta, double* factor,
                                  BetaOfRow beta_of_row = &onion_beta_parameters) {
  double log_det = 0.0;
  for (int i = 0; i < dim; ++i) {
    double* row = factor + static_cast<std::int64_t>(i) * dim;
    log_det += sample_onion_row(seed, sample, i, beta_of_row(dim, eta, i), row);
    for (int j = i + 1; j < dim; ++j) row[j] = 0.0;
  }
  return log_det;
}

}  // namespace slurmlab::linalg
