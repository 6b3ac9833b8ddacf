// The determinant path: Cholesky log det against a naive LU, FP32 vs FP64, buffers, and
// sample k being a pure function of (seed, k).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

using namespace slurmlab::linalg;
using slurmlab::Precision;

namespace {

// log |det A| by Gaussian elimination with partial pivoting (row-major, a copy).
double naive_lu_log_abs_det(std::vector<double> a, int n) {
  double log_det = 0;
  for (int k = 0; k < n; ++k) {
    int pivot = k;
    for (int i = k + 1; i < n; ++i)
      if (std::abs(a[i * n + k]) > std::abs(a[pivot * n + k])) pivot = i;
    if (pivot != k)
      for (int j = 0; j < n; ++j) std::swap(a[k * n + j], a[pivot * n + j]);
    log_det += std::log(std::abs(a[k * n + k]));
    for (int i = k + 1; i < n; ++i) {
      const double f = a[i * n + k] / a[k * n + k];
      for (int j = k; j < n; ++j) a[i * n + j] -= f * a[k * n + j];
    }
  }
  return log_det;
}

// A random symmetric positive definite matrix B B^T + n I (full storage).
std::vector<double> random_spd(int n, std::mt19937_64& generator) {
  std::normal_distribution<double> normal;
  std::vector<double> b(static_cast<std::size_t>(n) * n), a(b.size());
  for (auto& v : b) v = normal(generator);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double sum = i == j ? n : 0.0;
      for (int k = 0; k < n; ++k) sum += b[i * n + k] * b[j * n + k];
      a[i * n + j] = sum;
    }
  return a;
}

}  // namespace

TEST(CholeskyLogDet, AgreesWithNaiveLuOnSmallMatrices) {
  std::mt19937_64 generator(3);
  for (int n = 1; n <= 9; ++n) {
    const auto a = random_spd(n, generator);
    const double expected = naive_lu_log_abs_det(a, n);
    auto work = a;
    const auto got = cholesky_log_det(work.data(), n);
    ASSERT_TRUE(got.has_value());
    EXPECT_NEAR(*got, expected, 1e-12 * std::max(1.0, std::abs(expected))) << "n=" << n;
    std::vector<float> work32(a.begin(), a.end());
    const auto got32 = cholesky_log_det(work32.data(), n);
    ASSERT_TRUE(got32.has_value());
    EXPECT_NEAR(*got32, expected, 1e-5 * std::max(1.0, std::abs(expected))) << "n=" << n;
  }
}

TEST(CholeskyLogDet, GramOfAnLkjFactorAgreesWithNaiveLu) {
  const int d = 8;
  std::vector<double> factor(d * d), gram(d * d), full(d * d);
  sample_lkj_cholesky(1, 0, d, 1.0, factor.data());
  gram_lower(factor.data(), gram.data(), d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j <= i; ++j) full[i * d + j] = full[j * d + i] = gram[i * d + j];
  for (int i = 0; i < d; ++i) EXPECT_NEAR(full[i * d + i], 1.0, 1e-14);
  const double expected = naive_lu_log_abs_det(full, d);
  EXPECT_NEAR(cholesky_log_det(gram.data(), d).value(), expected, 1e-12 * std::abs(expected));
}

TEST(CholeskyLogDet, SaysWhenNotPositiveDefinite) {
  std::vector<double> indefinite = {1, 2, 2, 1};  // eigenvalues 3 and -1
  EXPECT_FALSE(cholesky_log_det(indefinite.data(), 2).has_value());
  std::vector<float> singular = {1, 1, 1, 1};
  EXPECT_FALSE(cholesky_log_det(singular.data(), 2).has_value());
}

TEST(LogdetEngine, SampleDependsOnlyOnSeedAndIndex) {
  LogdetConfig config;
  config.dim = 60;
  config.seed = 9;
  config.cpu_threads = 1;
  auto first = make_cpu_logdet_engine(config);
  auto second = make_cpu_logdet_engine(config);
  const auto a5 = first->compute(5);
  first->compute(6);
  const auto b7 = second->compute(7);
  const auto b5 = second->compute(5);
  EXPECT_EQ(a5.log_det, b5.log_det);  // bit for bit, whatever was computed before
  EXPECT_EQ(a5.log_det_factor, b5.log_det_factor);
  EXPECT_NE(a5.log_det, b7.log_det);
  config.seed = 10;
  EXPECT_NE(make_cpu_logdet_engine(config)->compute(5).log_det, a5.log_det);
}

// The CPU engine draws rows on several threads at d >= 256: the factor must be the very
// one the sequential reference draws, whatever the thread count.
TEST(LogdetEngine, ThreadedSamplingEqualsTheSequentialReference) {
  const int d = 300;
  std::vector<double> factor(static_cast<std::size_t>(d) * d);
  const double reference = sample_lkj_cholesky(12, 4, d, 0.8, factor.data());
  for (int threads : {1, 2, 3}) {
    LogdetConfig config;
    config.dim = d;
    config.eta = 0.8;
    config.seed = 12;
    config.cpu_threads = threads;
    const auto r = make_cpu_logdet_engine(config)->compute(4);
    EXPECT_EQ(r.log_det_factor, reference) << threads << " threads";
    EXPECT_NEAR(r.log_det, reference, 1e-10 * std::abs(reference)) << threads << " threads";
  }
}

TEST(LogdetEngine, HoldsTwoMatrixBuffersInFp64) {
  LogdetConfig config;
  config.dim = 100;
  auto engine = make_cpu_logdet_engine(config);
  EXPECT_EQ(engine->buffer_bytes(), 2u * 100 * 100 * sizeof(double));
  EXPECT_NE(engine->describe().find("fp64"), std::string::npos);
}

TEST(LogdetEngine, Fp32AgreesWithFp64ToSinglePrecision) {
  LogdetConfig config;
  config.dim = 200;
  config.seed = 4;
  config.cpu_threads = 1;
  auto fp64 = make_cpu_logdet_engine(config);
  config.precision = Precision::float32;
  auto fp32 = make_cpu_logdet_engine(config);
  for (int k = 0; k < 3; ++k) {
    const auto a = fp64->compute(k), b = fp32->compute(k);
    EXPECT_EQ(a.log_det_factor, b.log_det_factor) << "same L in FP64 either way";
    EXPECT_NEAR(a.log_det, a.log_det_factor, 1e-10 * std::abs(a.log_det_factor));
    ASSERT_TRUE(b.positive_definite);
    const double relative = std::abs(b.log_det - a.log_det) / std::abs(a.log_det);
    EXPECT_LT(relative, 1e-3);
    EXPECT_GT(relative, 0.0) << "FP32 really computed in single precision";
  }
}

TEST(LogdetEngine, RejectsImpossibleConfigurations) {
  LogdetConfig config;
  config.dim = 1;
  EXPECT_THROW(make_cpu_logdet_engine(config), std::invalid_argument);
  config.dim = 3;
  config.eta = 0.0;
  EXPECT_THROW(make_cpu_logdet_engine(config), std::invalid_argument);
  config.eta = 1.0;
  config.precision = Precision::bf16;  // the library's Precision has it; linalg does not compute in it
  EXPECT_THROW(make_cpu_logdet_engine(config), std::invalid_argument);
}

TEST(LogdetEngine, MemoryItCannotHaveIsAUsageErrorNotACrash) {
  LogdetConfig config;
  config.dim = 100;
  EXPECT_EQ(matrix_buffer_bytes(config), make_cpu_logdet_engine(config)->buffer_bytes());
  config.precision = Precision::float32;
  EXPECT_EQ(matrix_buffer_bytes(config), 100u * 100 * (sizeof(double) + 2 * sizeof(float)));
  EXPECT_EQ(matrix_buffer_bytes(config), make_cpu_logdet_engine(config)->buffer_bytes());

  config.precision = Precision::float64;
  config.dim = 16384;  // 4 GiB of buffers per rank
  const std::uint64_t gib = 1ull << 30;
  EXPECT_NO_THROW(require_memory(config, matrix_buffer_bytes(config), 5 * gib, "memory"));
  try {
    require_memory(config, matrix_buffer_bytes(config), 3 * gib, "memory");
    FAIL() << "4 GiB fit into 3";
  } catch (const slurmlab::UsageError& e) {
    EXPECT_STREQ(e.what(), "--dim 16384 needs 4 GiB of memory per rank for its d x d buffers (fp64) but 3 GiB is "
                           "available; lower --dim.");
  }
  config.ranks_sharing_memory = 2;  // two ranks of a node: 8 GiB
  try {
    require_memory(config, matrix_buffer_bytes(config), 5 * gib, "memory");
    FAIL() << "2 x 4 GiB fit into 5";
  } catch (const slurmlab::UsageError& e) {
    EXPECT_STREQ(e.what(), "--dim 16384 needs 4 GiB of memory per rank for its d x d buffers (fp64), 2 ranks here "
                           "need 8 GiB, but 5 GiB is available; lower --dim, or run fewer ranks per node.");
  }
  // This machine's own figure is read from the kernel.
  const auto available = available_host_memory();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0u);
  // The engine refuses, before allocating, what no machine here has (160 TiB of buffers).
  config.ranks_sharing_memory = 1;
  config.dim = 3'000'000;
  EXPECT_THROW(make_cpu_logdet_engine(config), slurmlab::UsageError);
}

TEST(LogdetEngine, FlopCount) { EXPECT_DOUBLE_EQ(determinant_flops(3), 9 * 4 + 9); }
