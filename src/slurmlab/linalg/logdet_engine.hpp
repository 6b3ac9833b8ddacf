#pragma once
// Log-determinants of LKJ matrices, really computed: sample the Cholesky factor L of
// sample k (lkj.hpp), form C = L L^T (SYRK), factor C again (POTRF) and take
// log det C = 2 sum log diag(chol(C)). The sampler's own 2 sum log L_ii is kept beside it
// as a cross-check (they agree to rounding in FP64; in FP32 their gap is the FP32 error).
//
// One engine per rank holds a fixed set of d x d buffers and reuses them for every
// sample, so memory does not grow with the number of samples. Backends: CPU (OpenBLAS +
// LAPACKE, logdet_engine_cpu.cpp) and CUDA (cuBLAS + cuSOLVER, logdet_engine_cuda.cu).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "slurmlab/core/precision.hpp"

namespace slurmlab::linalg {


struct LogdetConfig {
  int dim = 5000;
  double eta = 1.0;
  std::uint64_t seed = 0;
  Precision precision = Precision::float64;  // float64 or float32
  int cpu_threads = 0;  // OpenBLAS threads; 0 leaves OpenBLAS's own choice
  int ranks_sharing_memory = 1;  // ranks on this node that hold the same buffers (memory check)
};

struct LogdetSample {
  std::int64_t index = 0;
  double log_det = 0.0;         // 2 sum log diag(chol(L L^T)) in the engine's precision; NaN if not PD
  double log_det_factor = 0.0;  // 2 sum log L_ii from the sampler, always FP64
  bool positive_definite = true;  // false: POTRF found C not numerically positive definite
  double sample_seconds = 0.0;       // drawing L
  double determinant_seconds = 0.0;  // SYRK + POTRF (+ the transfers they need)
};

class LogdetEngine {
 public:
  virtual ~LogdetEngine() = default;
  virtual LogdetSample compute(std::int64_t sample_index) = 0;
  virtual std::string describe() const = 0;        // "cpu (OpenBLAS, 2 threads, fp64)"
  virtual std::size_t buffer_bytes() const = 0;   // bytes of matrix buffers held (host or device)
  const LogdetConfig& config() const { return config_; }

 protected:
  explicit LogdetEngine(const LogdetConfig& config) : config_(config) {}
  LogdetConfig config_;
};

// Throws std::invalid_argument on dim < 2 or eta <= 0.
void validate(const LogdetConfig& config);

// Bytes of the d x d host buffers the CPU engine holds: L and C in FP64; in FP32 also
// their single-precision copies, with L kept in FP64 for the sampler.
std::size_t matrix_buffer_bytes(const LogdetConfig& config);
// Throws UsageError (one sentence: what --dim needs, what there is, the fix) when
// `ranks_sharing_memory` engines holding `per_rank` bytes each do not fit in `available`
// bytes of `where` ("memory" or "GPU memory").
void require_memory(const LogdetConfig& config, std::size_t per_rank, std::uint64_t available, const std::string& where);
// MemAvailable of /proc/meminfo in bytes; nullopt where the kernel does not say.
std::optional<std::uint64_t> available_host_memory();

std::unique_ptr<LogdetEngine> make_cpu_logdet_engine(const LogdetConfig& config);
// The CUDA engine on device `ordinal` (already selected for this rank). Throws
// std::runtime_error when the library was built without CUDA or the device fails.
std::unique_ptr<LogdetEngine> make_cuda_logdet_engine(const LogdetConfig& config, int ordinal);
bool cuda_logdet_engine_built();

// Floating-point operations of one determinant: SYRK (d^2 (d + 1)) + POTRF (d^3 / 3).
double determinant_flops(int dim);

// CPU building blocks (OpenBLAS), row-major d x d:
// gram_lower: lower triangle of C = L L^T (cblas_{d,s}syrk); the upper one is not written.
void gram_lower(const double* factor, double* gram, int dim);
void gram_lower(const float* factor, float* gram, int dim);
// In place: Cholesky factor of the symmetric `matrix` (lower triangle read) by
// LAPACKE_{d,s}potrf, then 2 sum log of its diagonal, accumulated in double; nullopt when
// the matrix is not numerically positive definite.
std::optional<double> cholesky_log_det(double* matrix, int dim);
std::optional<double> cholesky_log_det(float* matrix, int dim);
// Sets OpenBLAS's thread count (openblas_set_num_threads) and reads it back.
void set_blas_threads(int threads);
int blas_threads();

}  // namespace slurmlab::linalg
