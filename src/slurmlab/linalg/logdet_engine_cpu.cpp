// The CPU backend: OpenBLAS SYRK and LAPACKE POTRF on buffers allocated once.
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

extern "C" {
// OpenBLAS extensions (declared here: Debian's cblas.h may be the reference one).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace slurmlab::linalg {

void validate(const LogdetConfig& config) {
  if (config.dim < 2) throw std::invalid_argument("dimension must be at least 2, got " + std::to_string(config.dim));
  if (!(config.eta > 0.0)) throw std::invalid_argument("eta must be positive, got " + std::to_string(config.eta));
  if (config.precision == Precision::bf16)
    throw std::invalid_argument("log-determinants are computed in fp64 or fp32, not bf16");
}

std::size_t matrix_buffer_bytes(const LogdetConfig& config) {
  const auto n = static_cast<std::size_t>(config.dim) * static_cast<std::size_t>(config.dim);
  return config.precision == Precision::float64 ? 2 * n * sizeof(double) : n * sizeof(double) + 2 * n * sizeof(float);
}

void require_memory(const LogdetConfig& config, std::size_t per_rank, std::uint64_t available, const std::string& where) {
  const int ranks = std::max(1, config.ranks_sharing_memory);
  const double needed = static_cast<double>(per_rank);
  if (needed * ranks <= static_cast<double>(available)) return;
  auto gib = [](double bytes) {
    std::ostringstream text;
    bytes /= 1024.0 * 1024.0 * 1024.0;
    if (bytes >= 100) text << std::fixed << std::setprecision(0);
    else text << std::setprecision(3);
    text << bytes << " GiB";
    return text.str();
  };
  std::string message = "--dim " + std::to_string(config.dim) + " needs " + gib(needed) + " of " + where +
                        " per rank for its d x d buffers (" + short_name(config.precision) + ")";
  if (ranks > 1) message += ", " + std::to_string(ranks) + " ranks here need " + gib(needed * ranks) + ",";
  message += " but " + gib(static_cast<double>(available)) + " is available; lower --dim" +
             (ranks > 1 ? ", or run fewer ranks per node." : ".");
  throw UsageError(message);
}

std::optional<std::uint64_t> available_host_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return std::nullopt;
}

double determinant_flops(int dim) {
  const double d = dim;
  return d * d * (d + 1.0) + d * d * d / 3.0;
}

void gram_lower(const double* factor, double* gram, int dim) {
  cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, dim, dim, 1.0, factor, dim, 0.0, gram, dim);
}
void gram_lower(const float* factor, float* gram, int dim) {
  cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, dim, dim, 1.0f, factor, dim, 0.0f, gram, dim);
}

namespace {
template <class Real>
double log_det_of_diagonal(const Real* factor, int dim) {
  double sum = 0.0;
  for (int i = 0; i < dim; ++i) sum += std::log(static_cast<double>(factor[static_cast<std::size_t>(i) * dim + i]));
  return 2.0 * sum;
}
}  // namespace

std::optional<double> cholesky_log_det(double* matrix, int dim) {
  const lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', dim, matrix, dim);
  if (info < 0) throw std::logic_error("LAPACKE_dpotrf: argument " + std::to_string(-info) + " is invalid");
  if (info > 0) return std::nullopt;
  return log_det_of_diagonal(matrix, dim);
}
std::optional<double> cholesky_log_det(float* matrix, int dim) {
  const lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', dim, matrix, dim);
  if (info < 0) throw std::logic_error("LAPACKE_spotrf: argument " + std::to_string(-info) + " is invalid");
  if (info > 0) return std::nullopt;
  return log_det_of_diagonal(matrix, dim);
}

void set_blas_threads(int threads) {
  if (threads > 0) openblas_set_num_threads(threads);
}
int blas_threads() { return openblas_get_num_threads(); }

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

class CpuLogdetEngine final : public LogdetEngine {
 public:
  explicit CpuLogdetEngine(const LogdetConfig& config) : LogdetEngine(config) {
    validate(config);
    if (const auto available = available_host_memory()) require_memory(config, matrix_buffer_bytes(config), *available, "memory");
    set_blas_threads(config.cpu_threads);
    const auto n = static_cast<std::size_t>(config.dim) * static_cast<std::size_t>(config.dim);
    // Sampling threads: as many as OpenBLAS uses, but one for small matrices (a thread start
    // costs more than a few hundred short rows).
    sampling_threads_ = config.dim >= 256 ? std::max(1, blas_threads()) : 1;
    row_log_.resize(static_cast<std::size_t>(config.dim));
    // Two buffers in FP64 (L, C); FP32 adds the single-precision copy of L and C.
    factor_.resize(n);
    if (config.precision == Precision::float64) {
      gram_.resize(n);
    } else {
      factor32_.resize(n);
      gram32_.resize(n);
    }
  }

  LogdetSample compute(std::int64_t sample_index) override {
    const int d = config_.dim;
    LogdetSample result;
    result.index = sample_index;
    auto start = Clock::now();
    result.log_det_factor = sample_factor(static_cast<std::uint64_t>(sample_index));
    result.sample_seconds = seconds_since(start);

    start = Clock::now();
    std::optional<double> log_det;
    if (config_.precision == Precision::float64) {
      gram_lower(factor_.data(), gram_.data(), d);
      log_det = cholesky_log_det(gram_.data(), d);
    } else {
      for (std::size_t i = 0; i < factor_.size(); ++i) factor32_[i] = static_cast<float>(factor_[i]);
      gram_lower(factor32_.data(), gram32_.data(), d);
      log_det = cholesky_log_det(gram32_.data(), d);
    }
    result.determinant_seconds = seconds_since(start);
    result.positive_definite = log_det.has_value() && std::isfinite(*log_det);
    result.log_det = result.positive_definite ? *log_det : std::numeric_limits<double>::quiet_NaN();
    return result;
  }

  // Rows are independent (each has its own Philox streams), so threads take every T-th
  // row (balanced: row i costs about i); the log-diagonal is summed afterwards in row
  // order, so the result is bit-identical to the sequential sample_lkj_cholesky.
  double sample_factor(std::uint64_t sample) {
    const int d = config_.dim;
    auto rows = [&](int first, int step) {
      for (int i = first; i < d; i += step) {
        double* row = factor_.data() + static_cast<std::size_t>(i) * d;
        row_log_[i] = sample_onion_row(config_.seed, sample, i, onion_beta_parameters(d, config_.eta, i), row);
        std::fill(row + i + 1, row + d, 0.0);
      }
    };
    if (sampling_threads_ == 1) {
      rows(0, 1);
    } else {
      std::vector<std::jthread> helpers;
      for (int t = 1; t < sampling_threads_; ++t) helpers.emplace_back(rows, t, sampling_threads_);
      rows(0, sampling_threads_);
    }  // the jthreads join here
    double log_det = 0.0;
    for (double v : row_log_) log_det += v;
    return log_det;
  }

  std::string describe() const override {
    return "cpu (OpenBLAS " + std::to_string(blas_threads()) + " threads, " + short_name(config_.precision) + ")";
  }
  std::size_t buffer_bytes() const override {
    return factor_.size() * sizeof(double) + gram_.size() * sizeof(double) + factor32_.size() * sizeof(float) +
           gram32_.size() * sizeof(float);
  }

 private:
  std::vector<double> factor_, gram_;
  std::vector<float> factor32_, gram32_;
  std::vector<double> row_log_;  // log L_ii^2 per row of the current sample
  int sampling_threads_ = 1;
};

}  // namespace

std::unique_ptr<LogdetEngine> make_cpu_logdet_engine(const LogdetConfig& config) {
  return std::make_unique<CpuLogdetEngine>(config);
}

}  // namespace slurmlab::linalg
