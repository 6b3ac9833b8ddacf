// Philox4x32-10 against the Random123 known answers, and the moments of the variates
// built on it (uniform, normal, Gamma, Beta, sphere directions).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "../support/moments.hpp"
#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/lkj_theory.hpp"
#include "slurmlab/linalg/random.hpp"

using namespace slurmlab::linalg;

namespace {

using slurmlab::testing::moments;

DrawStream stream(std::uint64_t sample, std::uint32_t row = 0, StreamPurpose purpose = StreamPurpose::test) {
  return DrawStream{12345, sample, row, purpose};
}
constexpr int kDraws = 200000;

}  // namespace

// Random123's kat_vectors, the three philox4x32 10-round lines (counter[4] key[2] -> out[4]).
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Vector {
    Philox4x32 counter;
    std::uint32_t key0, key1;
    Philox4x32 expected;
  };
  const Vector vectors[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const auto& v : vectors) {
    const auto out = philox4x32_10(v.counter, v.key0, v.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], v.expected.v[i]) << "word " << i;
  }
}

TEST(Philox, StreamsAreKeyedBySeedSampleRowAndPurpose) {
  const auto base = stream(7, 3).uniforms(5);
  EXPECT_EQ(base.first, stream(7, 3).uniforms(5).first);  // a pure function of its inputs
  EXPECT_NE(base.first, (DrawStream{12346, 7, 3, StreamPurpose::test}).uniforms(5).first);
  EXPECT_NE(base.first, stream(8, 3).uniforms(5).first);
  EXPECT_NE(base.first, stream(7, 4).uniforms(5).first);
  EXPECT_NE(base.first, stream(7, 3, StreamPurpose::direction).uniforms(5).first);
  EXPECT_NE(base.first, stream(7, 3).uniforms(6).first);
  // Bits 32..47 of the sample index count too.
  EXPECT_NE(base.first, stream(7 + (1ull << 40), 3).uniforms(5).first);
}

TEST(Variates, UniformsAreInTheOpenIntervalWithUniformMoments) {
  EXPECT_GT(uniform_open01(0, 0), 0.0);
  EXPECT_LT(uniform_open01(0xffffffff, 0xffffffff), 1.0);
  std::vector<double> u;
  for (int i = 0; i < kDraws; ++i) u.push_back(stream(1).uniforms(static_cast<std::uint32_t>(i)).second);
  const auto m = moments(u);
  EXPECT_NEAR(m.mean, 0.5, 4 * m.standard_error_of_mean());
  EXPECT_NEAR(m.variance, 1.0 / 12, 4 * m.standard_error_of_variance());
}

TEST(Variates, BoxMullerNormalsHaveNormalMoments) {
  std::vector<double> z;
  for (int i = 0; i < kDraws / 2; ++i) {
    const auto pair = stream(2).normals(static_cast<std::uint32_t>(i));
    z.push_back(pair.first);
    z.push_back(pair.second);
  }
  const auto m = moments(z);
  EXPECT_NEAR(m.mean, 0.0, 4 * m.standard_error_of_mean());
  EXPECT_NEAR(m.variance, 1.0, 4 * m.standard_error_of_variance());
  EXPECT_NEAR(m.fourth, 3.0, 0.06);  // kurtosis of N(0, 1); SE about sqrt(96 / n) = 0.022
  // The two normals of a pair are uncorrelated.
  double cross = 0;
  for (std::size_t i = 0; i < z.size(); i += 2) cross += z[i] * z[i + 1];
  EXPECT_NEAR(cross / static_cast<double>(z.size() / 2), 0.0, 4 / std::sqrt(static_cast<double>(z.size()) / 2.0));
}

class GammaMoments : public ::testing::TestWithParam<double> {};
TEST_P(GammaMoments, MeanAndVarianceEqualTheShape) {
  const double shape = GetParam();
  std::vector<double> x, log_x;
  for (int i = 0; i < kDraws / 2; ++i) {
    const auto g = sample_gamma(stream(static_cast<std::uint64_t>(i)), shape);
    ASSERT_TRUE(std::isfinite(g.log_value));
    ASSERT_NEAR(std::log(g.value), g.log_value, 1e-12 * std::max(1.0, std::abs(g.log_value)));
    x.push_back(g.value);
    log_x.push_back(g.log_value);
  }
  const auto m = moments(x);
  EXPECT_NEAR(m.mean, shape, 4 * m.standard_error_of_mean());
  EXPECT_NEAR(m.variance, shape, 4 * m.standard_error_of_variance());
  // E[log X] = psi(shape): checks the tails (the boost for shape < 1) too.
  const auto ml = moments(log_x);
  EXPECT_NEAR(ml.mean, digamma(shape), 4 * ml.standard_error_of_mean());
  EXPECT_NEAR(ml.variance, trigamma(shape), 4 * ml.standard_error_of_variance());
}
INSTANTIATE_TEST_SUITE_P(Shapes, GammaMoments, ::testing::Values(0.05, 0.3, 0.5, 1.0, 2.5, 10.0, 250.0));

class BetaMoments : public ::testing::TestWithParam<std::pair<double, double>> {};
TEST_P(BetaMoments, MatchTheBetaDistribution) {
  const auto [a, b] = GetParam();
  std::vector<double> y, log_one_minus;
  for (int i = 0; i < kDraws / 2; ++i) {
    const auto draw = sample_beta(stream(static_cast<std::uint64_t>(i), 0, StreamPurpose::gamma_numerator),
                                  stream(static_cast<std::uint64_t>(i), 0, StreamPurpose::gamma_denominator), a, b);
    ASSERT_NEAR(draw.y + draw.one_minus_y, 1.0, 1e-15);
    y.push_back(draw.y);
    log_one_minus.push_back(draw.log_one_minus_y);
  }
  const auto m = moments(y);
  EXPECT_NEAR(m.mean, a / (a + b), 4 * m.standard_error_of_mean());
  EXPECT_NEAR(m.variance, a * b / ((a + b) * (a + b) * (a + b + 1)), 4 * m.standard_error_of_variance());
  const auto ml = moments(log_one_minus);  // log(1 - Y), Y ~ Beta(a, b): 1 - Y ~ Beta(b, a)
  EXPECT_NEAR(ml.mean, digamma(b) - digamma(a + b), 4 * ml.standard_error_of_mean());
  EXPECT_NEAR(ml.variance, trigamma(b) - trigamma(a + b), 4 * ml.standard_error_of_variance());
}
INSTANTIATE_TEST_SUITE_P(Parameters, BetaMoments,
                         ::testing::Values(std::pair{0.5, 1.0}, std::pair{2.0, 3.0}, std::pair{10.0, 0.5},
                                           std::pair{1000.0, 2.0}, std::pair{0.5, 1000.0}));

// The onion row's off-diagonal part divided by sqrt(y) is uniform on the unit sphere:
// unit norm, E[u_j] = 0, E[u_j^2] = 1/i; in R^3 each coordinate is uniform on [-1, 1]
// (Archimedes), so E|u_0| = 1/2.
TEST(Variates, OnionDirectionsAreUniformOnTheSphere) {
  for (int i : {1, 2, 3, 7}) {
    std::vector<double> first, first_squared, first_abs;
    std::vector<double> row(static_cast<std::size_t>(i) + 1);
    for (int n = 0; n < 40000; ++n) {
      sample_onion_row(99, static_cast<std::uint64_t>(n), i, OnionBeta{0.5 * i, 1.0}, row.data());
      double norm = 0;
      for (int j = 0; j < i; ++j) norm += row[j] * row[j];
      norm = std::sqrt(norm);
      ASSERT_NEAR(norm * norm + row[i] * row[i], 1.0, 1e-13) << "rows of L have unit norm";
      first.push_back(row[0] / norm);
      first_squared.push_back(row[0] * row[0] / (norm * norm));
      first_abs.push_back(std::abs(row[0]) / norm);
    }
    const auto m = moments(first), m2 = moments(first_squared);
    EXPECT_NEAR(m.mean, 0.0, 4 * m.standard_error_of_mean()) << "i = " << i;
    EXPECT_NEAR(m2.mean, 1.0 / i, 4 * m2.standard_error_of_mean()) << "i = " << i;
    if (i == 3) {
      const auto ma = moments(first_abs);
      EXPECT_NEAR(ma.mean, 0.5, 4 * ma.standard_error_of_mean());
    }
  }
}
