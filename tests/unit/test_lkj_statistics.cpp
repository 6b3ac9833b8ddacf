// The sampler + determinant pipeline against the exact theory: mean within 4 standard
// errors, variance within a band, d = 3 against an independent rejection sampler, and a
// test of the test: torch's Beta(i - 1/2, ...) variant must fail the very same check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "../support/moments.hpp"
#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/lkj_theory.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

using namespace slurmlab::linalg;

namespace {

using slurmlab::testing::Moments;
using slurmlab::testing::moments;

// z-score of the sample mean against the theory (standard error from the theory's variance).
double mean_z_score(const Moments& s, int d, double eta) {
  return (s.mean - lkj_log_det_mean(d, eta)) / std::sqrt(lkj_log_det_variance(d, eta) / static_cast<double>(s.n));
}

std::vector<double> engine_log_dets(int d, double eta, int samples, std::uint64_t seed) {
  LogdetConfig config;
  config.dim = d;
  config.eta = eta;
  config.seed = seed;
  config.cpu_threads = 1;
  auto engine = make_cpu_logdet_engine(config);
  std::vector<double> out;
  for (int k = 0; k < samples; ++k) {
    const auto r = engine->compute(k);
    EXPECT_TRUE(r.positive_definite);
    // The Cholesky of C loses about eps * cond(C) (C = L L^T rounds 1 - r^2 when |r| ~ 1);
    // small eta gives near-singular samples, hence a tolerance far above eps here. The tight
    // agreement on well-conditioned matrices is in test_logdet_engine.
    EXPECT_NEAR(r.log_det, r.log_det_factor, 1e-4 * std::max(1.0, std::abs(r.log_det_factor)));
    out.push_back(r.log_det);
  }
  return out;
}

// Two-sample Kolmogorov-Smirnov statistic.
double ks_two_sample(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double worst = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    worst = std::max(worst, std::abs(static_cast<double>(i) / static_cast<double>(a.size()) - static_cast<double>(j) / static_cast<double>(b.size())));
  }
  return worst;
}

OnionBeta torch_beta_parameters(int dim, double eta, int row) {
  return {row - 0.5, eta + 0.5 * (dim - 1 - row)};  // torch.distributions.LKJCholesky's choice
}

}  // namespace

class LkjAgainstTheory : public ::testing::TestWithParam<std::tuple<int, double>> {};
TEST_P(LkjAgainstTheory, MeanAndVarianceOfLogDet) {
  const auto [d, eta] = GetParam();
  const int samples = 4000;
  const auto s = moments(engine_log_dets(d, eta, samples, 2024));
  const double z = mean_z_score(s, d, eta);
  EXPECT_LT(std::abs(z), 4.0) << "d=" << d << " eta=" << eta << " mean " << s.mean << " theory "
                              << lkj_log_det_mean(d, eta);
  // Variance: within 5 standard errors of the sample variance (from the 4th moment).
  const double theory_variance = lkj_log_det_variance(d, eta);
  const double se_variance = std::sqrt((s.fourth - s.variance * s.variance) / samples);
  EXPECT_NEAR(s.variance, theory_variance, 5 * se_variance) << "d=" << d << " eta=" << eta;
}
INSTANTIATE_TEST_SUITE_P(DimensionsAndEtas, LkjAgainstTheory,
                         ::testing::Combine(::testing::Values(2, 3, 10, 50), ::testing::Values(0.5, 1.0, 2.0)));

TEST(LkjAgainstTheory, TorchBetaVariantFailsTheSameTest) {
  const int d = 50, samples = 4000;
  const double eta = 1.0;
  std::vector<double> factor(static_cast<std::size_t>(d) * d), gram(factor.size());
  std::vector<double> wrong;
  for (int k = 0; k < samples; ++k) {
    sample_lkj_cholesky(2024, static_cast<std::uint64_t>(k), d, eta, factor.data(), &torch_beta_parameters);
    gram_lower(factor.data(), gram.data(), d);
    wrong.push_back(cholesky_log_det(gram.data(), d).value());
  }
  const auto s = moments(wrong);
  EXPECT_GT(std::abs(mean_z_score(s, d, eta)), 50.0) << "the theory test must reject the torch variant";
  EXPECT_NEAR(s.mean, -65.2, 0.5);  // the measured torch figure quoted in the issue
}

// d = 3, eta = 1 is the uniform distribution on 3x3 correlation matrices: draw
// (r12, r13, r23) uniformly in [-1, 1]^3 and keep the positive definite ones.
TEST(LkjAgainstTheory, ThreeDimensionsMatchesARejectionSampler) {
  std::mt19937_64 generator(7);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> rejection;
  while (rejection.size() < 20000) {
    const double a = uniform(generator), b = uniform(generator), c = uniform(generator);
    const double det = 1 + 2 * a * b * c - a * a - b * b - c * c;
    if (det > 0) rejection.push_back(std::log(det));
  }
  const auto ours = engine_log_dets(3, 1.0, 20000, 11);
  const auto s = moments(rejection);
  EXPECT_LT(std::abs(mean_z_score(s, 3, 1.0)), 4.0) << "the rejection sampler agrees with the theory";
  // KS at the 0.1% level: c(0.001) sqrt((n + m) / (n m)) = 1.949 * sqrt(2 / 20000).
  EXPECT_LT(ks_two_sample(ours, rejection), 1.949 * std::sqrt(2.0 / 20000));
}

TEST(LkjSampler, FactorIsLowerTriangularWithUnitRows) {
  const int d = 17;
  std::vector<double> factor(static_cast<std::size_t>(d) * d, -1.0);
  const double log_det = sample_lkj_cholesky(5, 3, d, 0.7, factor.data());
  double check = 0;
  for (int i = 0; i < d; ++i) {
    double norm = 0;
    for (int j = 0; j < d; ++j) {
      const double v = factor[static_cast<std::size_t>(i) * d + j];
      if (j > i) {
        EXPECT_EQ(v, 0.0);
      }
      norm += v * v;
    }
    EXPECT_NEAR(norm, 1.0, 1e-14) << "C = L L^T has unit diagonal";
    EXPECT_GT(factor[static_cast<std::size_t>(i) * d + i], 0.0);
    check += 2 * std::log(factor[static_cast<std::size_t>(i) * d + i]);
  }
  EXPECT_NEAR(log_det, check, 1e-12);
}
