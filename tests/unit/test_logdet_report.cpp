// logdet-histogram's option checks, sample split, Freedman-Diaconis bins (vs numpy's
// 'fd'), histogram, KS statistic and the treatment of non positive definite samples.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "logdet_report.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/linalg/lkj_theory.hpp"

using namespace slurmlab;
using namespace slurmlab::logdet;

namespace {
std::string usage_error(const ProgramOptions& options) {
  try {
    check_options(options);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}
}  // namespace

TEST(LogdetOptions, BadInputIsNamedWithItsFix) {
  ProgramOptions o;
  o.dim = 1;
  EXPECT_NE(usage_error(o).find("--dim 1"), std::string::npos);
  o = {};
  o.eta = 0;
  EXPECT_NE(usage_error(o).find("--eta"), std::string::npos);
  o = {};
  o.eta = -2;
  EXPECT_NE(usage_error(o).find("positive"), std::string::npos);
  o = {};
  o.eta = 1e300;  // the theory's mean came out as -1.7e147 here
  EXPECT_NE(usage_error(o).find("give at most --eta 1e12"), std::string::npos);
  o = {};
  o.eta = 1e12;
  EXPECT_NO_THROW(check_options(o));
  o = {};
  o.samples = 0;
  EXPECT_NE(usage_error(o).find("--samples 0"), std::string::npos);
  o = {};
  o.bins = "0";
  EXPECT_NE(usage_error(o).find("--bins 0"), std::string::npos);
  o = {};
  o.bins = "ten";
  EXPECT_NE(usage_error(o).find("not a count"), std::string::npos);
  o = {};
  o.range = "3,1";
  EXPECT_NE(usage_error(o).find("LO must be below HI"), std::string::npos);
  o = {};
  o.range = "a,1";
  EXPECT_NE(usage_error(o).find("not a number"), std::string::npos);
}

TEST(LogdetOptions, GoodInputBecomesAPlan) {
  ProgramOptions o;
  o.bins = "40";
  o.range = "-60,-30.5";
  o.fp32 = true;
  const auto plan = check_options(o);
  EXPECT_EQ(plan.bins, 40);
  ASSERT_TRUE(plan.range.has_value());
  EXPECT_EQ(plan.range->first, -60.0);
  EXPECT_EQ(plan.range->second, -30.5);
  EXPECT_EQ(plan.precision, Precision::float32);
  EXPECT_FALSE(check_options(ProgramOptions{}).bins.has_value());
}

TEST(SampleBlock, EveryIndexExactlyOnceInRankOrder) {
  for (std::int64_t n : {1, 2, 7, 100, 100001}) {
    for (int ranks : {1, 2, 3, 8}) {
      std::int64_t expected_first = 0;
      for (int r = 0; r < ranks; ++r) {
        const auto b = sample_block(n, r, ranks);
        EXPECT_EQ(b.first, expected_first);
        EXPECT_LE(b.end - b.first, n / ranks + 1);
        expected_first = b.end;
      }
      EXPECT_EQ(expected_first, n);
    }
  }
}

TEST(Histogram, FreedmanDiaconisMatchesNumpy) {
  std::vector<double> ramp, exponential;
  for (int i = 1; i <= 100; ++i) ramp.push_back(i);
  for (int i = 0; i < 50; ++i) exponential.push_back(std::exp(i / 10.0));
  // numpy.histogram_bin_edges(x, 'fd'): 5 and 7 bins.
  EXPECT_EQ(freedman_diaconis_bins(ramp), 5);
  EXPECT_EQ(freedman_diaconis_bins(exponential), 7);
  EXPECT_EQ(freedman_diaconis_bins({3.0}), 1);
  EXPECT_EQ(freedman_diaconis_bins({2.0, 2.0, 2.0}), 1);
}

TEST(Histogram, CountsLikeNumpyWithAClosedLastBin) {
  // numpy.histogram([0, .5, 1, 1.5, 2, 2.5, 3], bins=3, range=(0, 3)) -> [2, 2, 3]
  const auto h = make_histogram({0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, -1}, 3, {0.0, 3.0});
  ASSERT_EQ(h.counts.size(), 3u);
  EXPECT_EQ(h.counts[0], 2);
  EXPECT_EQ(h.counts[1], 2);
  EXPECT_EQ(h.counts[2], 3);
  EXPECT_EQ(h.outside, 2);
  EXPECT_EQ(h.edges, (std::vector<double>{0, 1, 2, 3}));
}

TEST(KolmogorovSmirnov, KnownValues) {
  EXPECT_DOUBLE_EQ(ks_statistic_normal({0.0}, 0.0, 1.0), 0.5);
  // Two points at the quartiles of N(0, 1): F = 0.25, 0.75 -> D = 0.25.
  EXPECT_NEAR(ks_statistic_normal({-0.6744897501960817, 0.6744897501960817}, 0, 1), 0.25, 1e-12);
  std::mt19937_64 generator(1);
  std::normal_distribution<double> normal(3.0, 2.0);
  std::vector<double> x(20000);
  for (auto& v : x) v = normal(generator);
  EXPECT_LT(ks_statistic_normal(x, 3.0, 4.0), 1.63 / std::sqrt(20000.0));
  EXPECT_GT(ks_statistic_normal(x, 3.5, 4.0), 0.05);  // a shifted normal is rejected
}

TEST(Analysis, NonPositiveDefiniteSamplesAreCountedAndLeftOut) {
  ProgramOptions o;
  o.dim = 2;
  const auto plan = check_options(o);
  RunResults r;
  r.index = {0, 1, 2};
  r.log_det = {-1.0, std::nan(""), -2.0};
  r.log_det_factor = {-1.0, -5.0, -2.0 + 1e-9};
  r.positive_definite = {1, 0, 1};
  r.rank = {0, 0, 0};
  r.sample_seconds = {1, 1, 1};
  r.determinant_seconds = {1, 3, 2};
  r.wall_seconds = 3;
  r.rank_devices = {"cpu"};
  const auto a = analyze(plan, r);
  EXPECT_EQ(a.not_positive_definite, 1);
  EXPECT_EQ(a.valid, 2);
  EXPECT_DOUBLE_EQ(a.mean, -1.5);
  EXPECT_NEAR(a.max_abs_cross_check, 1e-9, 1e-15);
  double total = 0;
  for (double c : a.histogram.counts) {
    EXPECT_FALSE(std::isnan(c));
    total += c;
  }
  EXPECT_EQ(total, 2.0);
  EXPECT_DOUBLE_EQ(a.theory_mean, linalg::lkj_log_det_mean(2, 1.0));
  EXPECT_DOUBLE_EQ(a.matrices_per_second, 1.0);
  EXPECT_DOUBLE_EQ(a.median_determinant_seconds, 2.0);
  const auto text = format_summary(plan, r, a);
  EXPECT_NE(text.find("1 of 3 samples: C = L L^T was not numerically positive definite"), std::string::npos) << text;
}
