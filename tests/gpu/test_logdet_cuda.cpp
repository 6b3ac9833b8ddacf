// Label gpu: the CUDA log-det engine against the CPU reference, sample by sample, on the
// same (seed, index): same L up to device rounding of log/sqrt/sincos, so FP64 log dets
// agree to 1e-9 relative. Skipped, with the reason, when no GPU answers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#if SLURMLAB_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/linalg/lkj_theory.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

using namespace slurmlab;
using namespace slurmlab::linalg;
using slurmlab::Precision;

namespace {
#define SKIP_WITHOUT_GPU()                                                                    \
  do {                                                                                        \
    if (!cuda_logdet_engine_built()) GTEST_SKIP() << "slurmlab was built without CUDA";       \
    const auto status = cluster::probe_gpu_runtime();                                        \
    if (status.device_count == 0) GTEST_SKIP() << "no GPU answers: " << status.note;          \
  } while (0)

double relative(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }
}  // namespace

TEST(LogdetCuda, Fp64MatchesTheCpuSampleBySample) {
  SKIP_WITHOUT_GPU();
  for (int dim : {2, 3, 257, 1000}) {
    LogdetConfig config;
    config.dim = dim;
    config.eta = 1.3;
    config.seed = 31;
    auto cpu = make_cpu_logdet_engine(config);
    auto gpu = make_cuda_logdet_engine(config, 0);
    for (std::int64_t k : {0, 1, 17, 123456789}) {
      const auto a = cpu->compute(k), b = gpu->compute(k);
      ASSERT_TRUE(b.positive_definite) << "dim " << dim << " sample " << k;
      EXPECT_LT(relative(b.log_det_factor, a.log_det_factor), 1e-9) << "dim " << dim << " sample " << k;
      EXPECT_LT(relative(b.log_det, a.log_det), 1e-9) << "dim " << dim << " sample " << k << ": " << b.log_det
                                                      << " vs " << a.log_det;
      EXPECT_LT(relative(b.log_det, b.log_det_factor), 1e-9) << "cross-check on the GPU";
      EXPECT_GT(b.determinant_seconds, 0.0);
    }
  }
}

TEST(LogdetCuda, Fp32IsCloseAndSaysWhenNotPositiveDefinite) {
  SKIP_WITHOUT_GPU();
  LogdetConfig config;
  config.dim = 500;
  config.seed = 5;
  config.precision = Precision::float32;
  auto gpu = make_cuda_logdet_engine(config, 0);
  config.precision = Precision::float64;
  auto cpu = make_cpu_logdet_engine(config);
  int compared = 0;
  for (std::int64_t k = 0; k < 4; ++k) {
    const auto a = cpu->compute(k), b = gpu->compute(k);
    if (!b.positive_definite) {
      EXPECT_TRUE(std::isnan(b.log_det));
      continue;
    }
    EXPECT_LT(relative(b.log_det, a.log_det), 1e-3);
    ++compared;
  }
  // d = 500, eta = 1 is well inside FP32's range: if no sample came out positive definite,
  // the FP32 path is broken rather than the matrices hard.
  EXPECT_GT(compared, 0) << "no FP32 sample was positive definite: nothing was compared";
  EXPECT_NE(gpu->describe().find("fp32"), std::string::npos);
}

// The GPU's samples follow the theory too (not just the CPU's): d = 50, 2000 samples.
TEST(LogdetCuda, MeanFollowsTheTheory) {
  SKIP_WITHOUT_GPU();
  LogdetConfig config;
  config.dim = 50;
  config.seed = 8;
  auto gpu = make_cuda_logdet_engine(config, 0);
  const int n = 2000;
  double sum = 0;
  for (int k = 0; k < n; ++k) sum += gpu->compute(k).log_det;
  const double z = (sum / n - lkj_log_det_mean(50, 1.0)) / std::sqrt(lkj_log_det_variance(50, 1.0) / n);
  EXPECT_LT(std::abs(z), 4.0);
}

// The engine's buffers are allocated once: memory does not grow with the samples.
TEST(LogdetCuda, DeviceMemoryIsBounded) {
  SKIP_WITHOUT_GPU();
  LogdetConfig config;
  config.dim = 2000;
  auto gpu = make_cuda_logdet_engine(config, 0);
  EXPECT_GE(gpu->buffer_bytes(), 2u * 2000 * 2000 * sizeof(double));
  EXPECT_LT(gpu->buffer_bytes(), 3u * 2000 * 2000 * sizeof(double));
#if SLURMLAB_HAVE_CUDA
  (void)gpu->compute(0);  // warm-up: the libraries' own first-call allocations
  std::size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  for (int k = 1; k <= 50; ++k) (void)gpu->compute(k);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  // 50 samples of 32 MB matrices: a leak of one per sample would take 1.6 GB.
  EXPECT_GE(free_after + (std::size_t{16} << 20), free_before) << "device memory fell by "
                                                                 << ((free_before - free_after) >> 20) << " MiB";
#endif
}
