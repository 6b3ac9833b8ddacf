// The CPU backend: OpenBLAS SYRK and LAPACKE POTRF on buffers allocated once.
#include <cblas.h>
#include <lapacke.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

extern "C" {
// OpenBLAS extensions (declared here: Debian's cblas.h may be the reference one).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace slurmlab::linalg {

const char* to_string(Precision precision) { return precision == Precision::Double ? "fp64" : "fp32"; }

void validate(const LogdetConfig& config) {
  if (config.dim < 2) throw std::invalid_argument("dimension must be at least 2, got " + std::to_string(config.dim));
  if (!(config.eta > 0.0)) throw std::invalid_argument("eta must be positive, got " + std::to_string(config.eta));
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
    set_blas_threads(config.cpu_threads);
    const auto n = static_cast<std::size_t>(config.dim) * static_cast<std::size_t>(config.dim);
    // Two buffers in FP64 (L, C); FP32 adds the single-precision copy of L and C.
    factor_.resize(n);
    if (config.precision == Precision::Double) {
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
    result.log_det_factor =
        sample_lkj_cholesky(config_.seed, static_cast<std::uint64_t>(sample_index), d, config_.eta, factor_.data());
    result.sample_seconds = seconds_since(start);

    start = Clock::now();
    std::optional<double> log_det;
    if (config_.precision == Precision::Double) {
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

  std::string describe() const override {
    return "cpu (OpenBLAS " + std::to_string(blas_threads()) + " threads, " + to_string(config_.precision) + ")";
  }
  std::size_t buffer_bytes() const override {
    return factor_.size() * sizeof(double) + gram_.size() * sizeof(double) + factor32_.size() * sizeof(float) +
           gram32_.size() * sizeof(float);
  }

 private:
  std::vector<double> factor_, gram_;
  std::vector<float> factor32_, gram32_;
};

}  // namespace

std::unique_ptr<LogdetEngine> make_cpu_logdet_engine(const LogdetConfig& config) {
  return std::make_unique<CpuLogdetEngine>(config);
}

}  // namespace slurmlab::linalg
