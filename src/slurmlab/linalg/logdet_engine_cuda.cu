// The CUDA backend: the onion sampler as a kernel (one block per row, the same Philox
// streams as the CPU reference), cuBLAS SYRK and cuSOLVER POTRF on device buffers
// allocated once per engine, all on one stream of the rank's GPU.
//
// One stream is enough here: at d = 5000 each SYRK/POTRF fills the GPU on its own, so
// overlapping two samples buys little; the host waits only for 2 d doubles per sample.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

namespace slurmlab::linalg {

bool cuda_logdet_engine_built() { return true; }

namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // reported here, not left for the next launch check to blame
  throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}
void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(status)));
}
void check_cusolver(cusolverStatus_t status, const char* what) {
  if (status != CUSOLVER_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuSOLVER status " + std::to_string(static_cast<int>(status)));
}

constexpr int kThreadsPerRow = 256;

// Block i draws row i of L (row-major, zeros above the diagonal) and log(1 - y_i).
template <class Real>
__global__ void onion_rows_kernel(std::uint64_t seed, std::uint64_t sample, int dim, double eta, Real* factor,
                                  double* log_diagonal_squared) {
  const int row = blockIdx.x;
  Real* out = factor + static_cast<std::size_t>(row) * dim;
  __shared__ double partial[kThreadsPerRow];
  __shared__ double scale;
  __shared__ double diagonal;

  if (threadIdx.x == 0) {
    if (row == 0) {
      scale = 0.0;
      diagonal = 1.0;
      log_diagonal_squared[0] = 0.0;
    } else {
      const BetaDraw beta = onion_row_beta(seed, sample, row, onion_beta_parameters(dim, eta, row));
      scale = beta.y;  // becomes sqrt(y / |z|^2) below
      diagonal = sqrt(beta.one_minus_y);
      log_diagonal_squared[row] = beta.log_one_minus_y;
    }
  }
  // Unnormalised direction: pairs of normals, exactly as the CPU reference draws them.
  double squared = 0.0;
  const auto direction = onion_stream(seed, sample, row, StreamPurpose::direction);
  for (int pair = threadIdx.x; 2 * pair < row; pair += blockDim.x) {
    const auto z = direction.normals(static_cast<std::uint32_t>(pair));
    out[2 * pair] = static_cast<Real>(z.first);
    squared += z.first * z.first;
    if (2 * pair + 1 < row) {
      out[2 * pair + 1] = static_cast<Real>(z.second);
      squared += z.second * z.second;
    }
  }
  partial[threadIdx.x] = squared;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0 && row > 0) scale = sqrt(scale / partial[0]);
  __syncthreads();
  // In FP32 the normals were stored rounded to float before this rescaling (the CPU rounds
  // after it): one FP32 rounding apart, far inside the FP32 error the program reports.
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    if (j < row) {
      out[j] = static_cast<Real>(static_cast<double>(out[j]) * scale);
    } else if (j == row) {
      out[j] = static_cast<Real>(diagonal);
    } else {
      out[j] = Real(0);
    }
  }
}

template <class Real>
__global__ void diagonal_kernel(const Real* matrix, int dim, double* diagonal) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
    diagonal[i] = static_cast<double>(matrix[static_cast<std::size_t>(i) * dim + i]);
}

template <class Real>
struct CudaTypes;
template <>
struct CudaTypes<double> {
  static constexpr cudaDataType kType = CUDA_R_64F;
};
template <>
struct CudaTypes<float> {
  static constexpr cudaDataType kType = CUDA_R_32F;
};

cublasStatus_t syrk(cublasHandle_t handle, int n, const double* a, double* c) {
  const double one = 1.0, zero = 0.0;
  return cublasDsyrk(handle, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, n, &one, a, n, &zero, c, n);
}
cublasStatus_t syrk(cublasHandle_t handle, int n, const float* a, float* c) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSsyrk(handle, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, n, &one, a, n, &zero, c, n);
}

template <class Real>
class CudaLogdetEngine final : public LogdetEngine {
 public:
  CudaLogdetEngine(const LogdetConfig& config, int ordinal) : LogdetEngine(config), ordinal_(ordinal) {
    validate(config);
    check_cuda(cudaSetDevice(ordinal), "cudaSetDevice");
    const auto d = static_cast<std::size_t>(config.dim);
    const std::size_t matrix_bytes = d * d * sizeof(Real);
    std::size_t free_bytes = 0, total_bytes = 0;
    check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    LogdetConfig on_device = config;
    on_device.ranks_sharing_memory = 1;  // this rank's own device
    require_memory(on_device, 2 * matrix_bytes, free_bytes, "GPU memory");  // L and C; the POTRF workspace is small
    try {
      check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
      check_cublas(cublasCreate(&blas_), "cublasCreate");
      check_cublas(cublasSetStream(blas_, stream_), "cublasSetStream");
      check_cusolver(cusolverDnCreate(&solver_), "cusolverDnCreate");
      check_cusolver(cusolverDnSetStream(solver_, stream_), "cusolverDnSetStream");
      check_cusolver(cusolverDnCreateParams(&params_), "cusolverDnCreateParams");
      check_cuda(cudaMalloc(&factor_, matrix_bytes), "cudaMalloc(L)");
      check_cuda(cudaMalloc(&gram_, matrix_bytes), "cudaMalloc(C)");
      check_cuda(cudaMalloc(&log_factor_, d * sizeof(double)), "cudaMalloc(log L_ii)");
      check_cuda(cudaMalloc(&diagonal_, d * sizeof(double)), "cudaMalloc(diag)");
      check_cuda(cudaMalloc(&info_, sizeof(int)), "cudaMalloc(info)");
      check_cuda(cudaMallocHost(&host_, (2 * d + 1) * sizeof(double)), "cudaMallocHost");
      // The POTRF workspace, queried once for this size and kept.
      constexpr cudaDataType type = CudaTypes<Real>::kType;
      check_cusolver(cusolverDnXpotrf_bufferSize(solver_, params_, CUBLAS_FILL_MODE_LOWER, config.dim, type, gram_,
                                                 config.dim, type, &device_work_bytes_, &host_work_bytes_),
                     "cusolverDnXpotrf_bufferSize");
      check_cuda(cudaMalloc(&device_work_, device_work_bytes_ > 0 ? device_work_bytes_ : 1), "cudaMalloc(work)");
      host_work_.resize(host_work_bytes_ > 0 ? host_work_bytes_ : 1);
      check_cuda(cudaEventCreate(&start_), "cudaEventCreate");
      check_cuda(cudaEventCreate(&sampled_), "cudaEventCreate");
      check_cuda(cudaEventCreate(&done_), "cudaEventCreate");
    } catch (...) {
      release();
      throw;
    }
  }
  ~CudaLogdetEngine() override { release(); }
  CudaLogdetEngine(const CudaLogdetEngine&) = delete;
  CudaLogdetEngine& operator=(const CudaLogdetEngine&) = delete;

  LogdetSample compute(std::int64_t sample_index) override {
    const int d = config_.dim;
    constexpr cudaDataType type = CudaTypes<Real>::kType;
    check_cuda(cudaEventRecord(start_, stream_), "cudaEventRecord");
    onion_rows_kernel<Real><<<d, kThreadsPerRow, 0, stream_>>>(config_.seed, static_cast<std::uint64_t>(sample_index),
                                                                d, config_.eta, factor_, log_factor_);
    check_cuda(cudaGetLastError(), "onion_rows_kernel");
    check_cuda(cudaEventRecord(sampled_, stream_), "cudaEventRecord");
    // Row-major L is column-major L^T =: A, so C = L L^T = A^T A (SYRK with OP_T).
    check_cublas(syrk(blas_, d, factor_, gram_), "cublas syrk");
    check_cusolver(cusolverDnXpotrf(solver_, params_, CUBLAS_FILL_MODE_LOWER, d, type, gram_, d, type, device_work_,
                                    device_work_bytes_, host_work_.data(), host_work_bytes_, info_),
                   "cusolverDnXpotrf");
    diagonal_kernel<Real><<<(d + 255) / 256, 256, 0, stream_>>>(gram_, d, diagonal_);
    check_cuda(cudaGetLastError(), "diagonal_kernel");
    const auto bytes = static_cast<std::size_t>(d) * sizeof(double);
    check_cuda(cudaMemcpyAsync(host_, diagonal_, bytes, cudaMemcpyDeviceToHost, stream_), "copy diag");
    check_cuda(cudaMemcpyAsync(host_ + d, log_factor_, bytes, cudaMemcpyDeviceToHost, stream_), "copy log L_ii");
    int info = 0;
    check_cuda(cudaMemcpyAsync(&info, info_, sizeof(int), cudaMemcpyDeviceToHost, stream_), "copy info");
    check_cuda(cudaEventRecord(done_, stream_), "cudaEventRecord");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    if (info < 0) throw std::logic_error("cusolverDnXpotrf: argument " + std::to_string(-info) + " is invalid");

    LogdetSample result;
    result.index = sample_index;
    float sample_ms = 0.0f, determinant_ms = 0.0f;
    check_cuda(cudaEventElapsedTime(&sample_ms, start_, sampled_), "cudaEventElapsedTime");
    check_cuda(cudaEventElapsedTime(&determinant_ms, sampled_, done_), "cudaEventElapsedTime");
    result.sample_seconds = 1e-3 * sample_ms;
    result.determinant_seconds = 1e-3 * determinant_ms;
    double log_factor = 0.0, log_det = 0.0;
    for (int i = 0; i < d; ++i) log_factor += host_[d + i];
    result.log_det_factor = log_factor;
    if (info == 0) {
      for (int i = 0; i < d; ++i) log_det += std::log(host_[i]);
      log_det *= 2.0;
    }
    result.positive_definite = info == 0 && std::isfinite(log_det);
    result.log_det = result.positive_definite ? log_det : std::numeric_limits<double>::quiet_NaN();
    return result;
  }

  std::string describe() const override {
    return "cuda:" + std::to_string(ordinal_) + " (cuBLAS syrk + cuSOLVER potrf, " + short_name(config_.precision) + ")";
  }
  std::size_t buffer_bytes() const override {
    const auto d = static_cast<std::size_t>(config_.dim);
    return 2 * d * d * sizeof(Real) + device_work_bytes_;
  }

 private:
  void release() noexcept {
    if (start_) cudaEventDestroy(start_);
    if (sampled_) cudaEventDestroy(sampled_);
    if (done_) cudaEventDestroy(done_);
    if (device_work_) cudaFree(device_work_);
    if (host_) cudaFreeHost(host_);
    if (info_) cudaFree(info_);
    if (diagonal_) cudaFree(diagonal_);
    if (log_factor_) cudaFree(log_factor_);
    if (gram_) cudaFree(gram_);
    if (factor_) cudaFree(factor_);
    if (params_) cusolverDnDestroyParams(params_);
    if (solver_) cusolverDnDestroy(solver_);
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
    start_ = sampled_ = done_ = nullptr;
    device_work_ = nullptr;
    host_ = nullptr;
  }

  int ordinal_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  cusolverDnParams_t params_ = nullptr;
  Real* factor_ = nullptr;
  Real* gram_ = nullptr;
  double* log_factor_ = nullptr;
  double* diagonal_ = nullptr;
  int* info_ = nullptr;
  double* host_ = nullptr;
  void* device_work_ = nullptr;
  std::size_t device_work_bytes_ = 0, host_work_bytes_ = 0;
  std::vector<unsigned char> host_work_;
  cudaEvent_t start_ = nullptr, sampled_ = nullptr, done_ = nullptr;
};

}  // namespace

std::unique_ptr<LogdetEngine> make_cuda_logdet_engine(const LogdetConfig& config, int ordinal) {
  if (config.precision == Precision::float64) return std::make_unique<CudaLogdetEngine<double>>(config, ordinal);
  return std::make_unique<CudaLogdetEngine<float>>(config, ordinal);
}

}  // namespace slurmlab::linalg
