// Digamma, trigamma and the exact mean/variance of log det C against independent values:
// closed forms, the recurrence, finite differences and a direct quadrature.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "slurmlab/linalg/lkj_theory.hpp"

using namespace slurmlab::linalg;

namespace {
constexpr double kEulerGamma = 0.57721566490153286061;
constexpr double kPi = std::numbers::pi;
}  // namespace

TEST(Digamma, ClosedForms) {
  EXPECT_NEAR(digamma(1.0), -0.5772156649015329, 1e-14);
  EXPECT_NEAR(digamma(0.5), -kEulerGamma - 2 * std::log(2.0), 1e-14);
  EXPECT_NEAR(digamma(2.0), 1 - kEulerGamma, 1e-14);
  EXPECT_NEAR(digamma(1.5), 2 - kEulerGamma - 2 * std::log(2.0), 1e-14);
  EXPECT_NEAR(digamma(0.25), -kEulerGamma - kPi / 2 - 3 * std::log(2.0), 1e-13);
  EXPECT_NEAR(digamma(1e6), std::log(1e6) - 0.5e-6 - 1.0 / 12e12, 1e-15 * 14);
  EXPECT_THROW(digamma(0.0), std::domain_error);
}

TEST(Digamma, RecurrenceAcrossTheSeriesBoundary) {
  for (double x : {0.01, 0.7, 8.6, 9.5, 10.4, 15.5, 15.99, 16.0, 16.4, 33.3}) {
    EXPECT_NEAR(digamma(x + 1), digamma(x) + 1 / x, 1e-13 * std::max(1.0, 1 / x)) << x;
    EXPECT_NEAR(trigamma(x + 1), trigamma(x) - 1 / (x * x), 1e-13 * std::max(1.0, 1 / (x * x))) << x;
  }
}

TEST(Trigamma, ClosedForms) {
  EXPECT_NEAR(trigamma(1.0), kPi * kPi / 6, 1e-14);
  EXPECT_NEAR(trigamma(0.5), kPi * kPi / 2, 1e-13);
  EXPECT_NEAR(trigamma(2.0), kPi * kPi / 6 - 1, 1e-14);
  EXPECT_NEAR(trigamma(0.25), kPi * kPi + 8 * 0.915965594177219015054603514932384110774, 1e-12);  // Catalan
}

TEST(Trigamma, IsTheDerivativeOfDigamma) {
  for (double x : {0.3, 1.0, 1.7, 9.9, 10.1, 57.0, 1234.5}) {
    const double h = 1e-4 * x;
    const double central = (digamma(x + h) - digamma(x - h)) / (2 * h);
    EXPECT_NEAR(trigamma(x), central, 1e-7 * trigamma(x)) << x;
  }
}

TEST(LkjTheory, TwoByTwoClosedForm) {
  // d = 2, eta = 1: log det = log(1 - r^2) with r uniform on [-1, 1].
  EXPECT_NEAR(lkj_log_det_mean(2, 1.0), 2 * std::log(2.0) - 2, 1e-14);
  EXPECT_NEAR(lkj_log_det_variance(2, 1.0), 4 - kPi * kPi / 3, 1e-13);
}

TEST(LkjTheory, FiftyDimensionsEtaOne) { EXPECT_NEAR(lkj_log_det_mean(50, 1.0), -46.9, 0.05); }

TEST(LkjTheory, RejectsImpossibleParameters) {
  EXPECT_THROW(lkj_log_det_mean(1, 1.0), std::domain_error);
  EXPECT_THROW(lkj_log_det_variance(3, 0.0), std::domain_error);
}

// Independent of digamma: E[log B] and E[log^2 B] for B ~ Beta(a, b) by quadrature of
// the density, summed over the rows.
namespace {
struct BetaLogMoments {
  double mean, variance;
};
BetaLogMoments beta_log_moments_by_quadrature(double a, double b) {
  const double log_beta = std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
  // B = 1 - s^2 removes the b < 1 singularity at B = 1; s = 1 - t^2 the log one at B = 0.
  const int n = 200000;
  double m1 = 0, m2 = 0;
  for (int k = 0; k < n; ++k) {
    const double t = (k + 0.5) / n;
    const double s = 1 - t * t;
    const double log_x = 2 * std::log(t) + std::log(1 + s);  // log(1 - s^2), exactly
    // density of s: 2 s^(2b-1) x^(a-1) / B(a, b); ds = 2 t dt
    const double w = 4 * t * std::exp((2 * b - 1) * std::log(s) + (a - 1) * log_x - log_beta) / n;
    m1 += w * log_x;
    m2 += w * log_x * log_x;
  }
  return {m1, m2 - m1 * m1};
}
}  // namespace

TEST(LkjTheory, AgreesWithQuadratureOfTheBetaFactors) {
  for (auto [d, eta] : {std::pair{4, 2.0}, std::pair{5, 1.0}, std::pair{3, 3.5}}) {
    double mean = 0, variance = 0;
    for (int i = 1; i <= d - 1; ++i) {
      const auto m = beta_log_moments_by_quadrature(eta + 0.5 * (d - 1 - i), 0.5 * i);
      mean += m.mean;
      variance += m.variance;
    }
    EXPECT_NEAR(lkj_log_det_mean(d, eta), mean, 1e-6) << "d=" << d << " eta=" << eta;
    EXPECT_NEAR(lkj_log_det_variance(d, eta), variance, 1e-5) << "d=" << d << " eta=" << eta;
  }
}
