// CUDA backend: the per-process context (stream, cuBLAS/cuBLASLt/cuDNN handles, workspace,
// TF32 policy; context.hpp), the CUDA answers of device.hpp, and the device CachingAllocator,
// fill and copies that tensor/device_memory.hpp declares. Host code on the CUDA runtime and
// library C APIs (C++20, built only with CUDA; device_nocuda.cpp and
// tensor/device_memory_nocuda.cpp stand in without it).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/nn/cuda/context.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/cuda/planning.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {

void check_cuda(int status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  // Reported here: not left as the thread's last error for the next launch check to blame on
  // an unrelated kernel (a sticky error stays, as it must).
  (void)cudaGetLastError();
  const auto error = static_cast<cudaError_t>(status);
  throw std::runtime_error(std::string("CUDA error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                           cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")");
}
void check_cublas(int status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string("cuBLAS error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                           cublasGetStatusName(static_cast<cublasStatus_t>(status)) + " (" +
                           cublasGetStatusString(static_cast<cublasStatus_t>(status)) + ")");
}
void check_cudnn(int status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw std::runtime_error(std::string("cuDNN error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
                           cudnnGetErrorString(static_cast<cudnnStatus_t>(status)) +
                           (detail[0] ? std::string(" (") + detail + ")" : std::string()));
}

namespace {

std::size_t peak_bytes = 0;
std::size_t workspace_in_use = 0;

class DeviceCachingAllocator final : public CachingAllocator {
 public:
  Device device() const override { return Device::cuda; }

 protected:
  // Stream-ordered reuse: every kernel that used a cached block was queued on the context's
  // one stream before any kernel of its next owner, so blocks are handed out at once.
  void* obtain(std::size_t capacity) override {
    Context::get();  // the device is selected before the first cudaMalloc
    void* block = nullptr;
    cudaError_t status = cudaMalloc(&block, capacity);
    if (status == cudaErrorMemoryAllocation) {
      // Give the cache back to the driver and try once more (PyTorch does the same).
      cudaGetLastError();
      release_cached();
      status = cudaMalloc(&block, capacity);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      std::size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      throw OutOfMemory("out of GPU memory: a tensor of " + format_bytes(capacity) + " could not be allocated, with " +
                        format_bytes(statistics().bytes_in_use - capacity) + " already held by tensors (" +
                        format_bytes(free_bytes) + " free of the GPU's " + format_bytes(total_bytes) + ")");
    }
    check_cuda(status, "cudaMalloc", __FILE__, __LINE__);
    return block;
  }
  void return_to_system(void* block) override { cudaFree(block); }
  void before_release() override { Context::get().synchronize(); }
  void on_bytes_in_use(std::size_t bytes) override { peak_bytes = std::max(peak_bytes, bytes + workspace_in_use); }
};

std::unique_ptr<Context>& context_slot() {
  static std::unique_ptr<Context> slot;
  return slot;
}

std::string mebibytes(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

CachingAllocator& allocator() {
  static auto* instance = new DeviceCachingAllocator();  // never destroyed, as the host one
  return *instance;
}

Context& Context::get() {
  auto& slot = context_slot();
  if (!slot) slot.reset(new Context(CudaOptions{}));
  return *slot;
}

void Context::configure(const CudaOptions& options) {
  if (options.precision == Precision::float64)
    throw UsageError("nn computes in fp32 or bf16 on CUDA, not fp64; choose --precision fp32 or bf16");
  auto& slot = context_slot();
  if (slot) {
    slot->synchronize();
    // Cached blocks live on the old device: hand them back rather than give them to tensors
    // of the new one (a kernel there cannot address them).
    if (slot->options().device != options.device) allocator().release_cached();
  }
  slot.reset();
  slot.reset(new Context(options));
}

Context::Context(const CudaOptions& options) : options_(options) {
  std::string reason;
  if (!cuda_usable(&reason)) throw std::runtime_error("cannot use CUDA: " + reason);
  SLURMLAB_CUDA_CHECK(cudaSetDevice(options.device));
  cudaDeviceProp properties{};
  SLURMLAB_CUDA_CHECK(cudaGetDeviceProperties(&properties, options.device));
  device_name_ = properties.name;
  major_ = properties.major;
  minor_ = properties.minor;
  cudaStream_t stream = nullptr;
  SLURMLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
  cublasHandle_t blas = nullptr;
  SLURMLAB_CUBLAS_CHECK(cublasCreate(&blas));
  cublas_ = blas;
  SLURMLAB_CUBLAS_CHECK(cublasSetStream(blas, stream));
  // TF32 off: CUBLAS_DEFAULT_MATH computes float32 products in float32 (no tensor-core
  // down-conversion); on: CUBLAS_TF32_TENSOR_OP_MATH.
  SLURMLAB_CUBLAS_CHECK(
      cublasSetMathMode(blas, options.tf32 == Tf32::on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  cublasLtHandle_t lt = nullptr;
  SLURMLAB_CUBLAS_CHECK(cublasLtCreate(&lt));
  cublas_lt_ = lt;
  cudnnHandle_t dnn = nullptr;
  SLURMLAB_CUDNN_CHECK(cudnnCreate(&dnn));
  cudnn_ = dnn;
  SLURMLAB_CUDNN_CHECK(cudnnSetStream(dnn, stream));
  SLURMLAB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&scalars_), 2 * sizeof(double)));
  SLURMLAB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&counters_), 2 * sizeof(unsigned long long)));
  cudaEvent_t copies = nullptr;
  SLURMLAB_CUDA_CHECK(cudaEventCreateWithFlags(&copies, cudaEventDisableTiming));
  pinned_copies_done_ = copies;
  // cuBLAS gets the shared workspace too (32 MiB, NVIDIA's advice for Hopper, within the cap).
  workspace(std::min<std::size_t>(options.workspace_cap_bytes, std::size_t{32} << 20));
}

Context::~Context() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (workspace_) cudaFree(workspace_);
  workspace_in_use = 0;
  if (scalars_) cudaFree(scalars_);
  if (counters_) cudaFree(counters_);
  if (pinned_copies_done_) cudaEventDestroy(pinned_copies_done_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_lt_) cublasLtDestroy(cublas_lt_);
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

void* Context::workspace(std::size_t bytes) {
  const auto action = cuda_planning::workspace_action(bytes, workspace_bytes_, options_.workspace_cap_bytes);
  if (action == cuda_planning::WorkspaceAction::keep) return workspace_;
  if (action == cuda_planning::WorkspaceAction::over_cap) {
    throw std::runtime_error("CUDA workspace of " + mebibytes(bytes) + " requested, above the cap of " +
                             mebibytes(options_.workspace_cap_bytes) + "; raise the workspace cap");
  }
  SLURMLAB_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old block may still be in use
  if (workspace_) {
    // cuBLAS must not keep the freed block (the allocator may hand it to a tensor) should the
    // larger one fail below.
    SLURMLAB_CUBLAS_CHECK(cublasSetWorkspace(cublas_, nullptr, 0));
    SLURMLAB_CUDA_CHECK(cudaFree(workspace_));
  }
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  if (cudaMalloc(&workspace_, bytes) != cudaSuccess) {
    // As the tensor allocator does: give the cached free blocks back and try once more.
    (void)cudaGetLastError();
    workspace_ = nullptr;
    allocator().release_cached();
    SLURMLAB_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
  }
  workspace_bytes_ = bytes;
  workspace_in_use = bytes;
  peak_bytes = std::max(peak_bytes, allocator().statistics().bytes_in_use + workspace_in_use);
  SLURMLAB_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));
  return workspace_;
}

void Context::synchronize() const { SLURMLAB_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

double read_double(const double* device_value) {
  double value = 0.0;
  SLURMLAB_CUDA_CHECK(
      cudaMemcpyAsync(&value, device_value, sizeof value, cudaMemcpyDeviceToHost, Context::get().stream()));
  Context::get().synchronize();
  return value;
}

std::string Context::describe() const {
  return "cuda:" + std::to_string(options_.device) + " " + device_name_ + " (sm_" + std::to_string(major_) +
         std::to_string(minor_) + "), TF32 " + (options_.tf32 == Tf32::on ? "on" : "off") + ", precision " +
         to_string(options_.precision) + ", workspace cap " + mebibytes(options_.workspace_cap_bytes) + ", cuDNN " +
         std::to_string(cudnnGetVersion());
}

void fill(Tensor& tensor, float value) {
  auto& context = Context::get();
  cuda_kernels::fill(tensor.device_data(), tensor.numel(), value, context.stream());
}

void copy(void* destination, Device destination_device, const void* source, Device source_device, std::size_t bytes) {
  if (bytes == 0) return;
  auto& context = Context::get();
  SLURMLAB_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, context.stream()));
  // A host buffer must be complete (device -> host) or reusable (host -> device) on return.
  if (destination_device == Device::cpu || source_device == Device::cpu) context.synchronize();
}

void copy_from_pinned_async(void* device_destination, const void* pinned_source, std::size_t bytes) {
  if (bytes == 0) return;
  auto& context = Context::get();
  SLURMLAB_CUDA_CHECK(
      cudaMemcpyAsync(device_destination, pinned_source, bytes, cudaMemcpyHostToDevice, context.stream()));
  SLURMLAB_CUDA_CHECK(cudaEventRecord(context.pinned_copies_done(), context.stream()));
}

void wait_for_pinned_copies() {
  // An event never recorded counts as complete: nothing to wait for before the first copy.
  SLURMLAB_CUDA_CHECK(cudaEventSynchronize(Context::get().pinned_copies_done()));
}

}  // namespace slurmlab::nn::cuda

namespace slurmlab::nn {

bool cuda_usable(std::string* reason) {
  const auto status = cluster::probe_gpu_runtime();
  if (status.device_count > 0) return true;
  if (reason) *reason = status.note.empty() ? "no CUDA device answered" : status.note;
  return false;
}

void configure_cuda(const CudaOptions& options) { cuda::Context::configure(options); }
CudaOptions cuda_options() { return cuda::Context::get().options(); }
std::string describe_cuda() { return cuda::Context::get().describe(); }
void synchronize(Device device) {
  if (device == Device::cuda) cuda::Context::get().synchronize();
}
void* cuda_stream() { return cuda::Context::get().stream(); }
std::size_t cuda_peak_bytes() { return cuda::peak_bytes; }
void reset_cuda_peak_bytes() {
  cuda::peak_bytes = cuda::allocator().statistics().bytes_in_use + cuda::workspace_in_use;
}

}  // namespace slurmlab::nn
