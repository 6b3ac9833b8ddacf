#pragma once
// The CUDA backend's per-process context and its error checks, for the files built only with
// CUDA (cuda/context.cpp, the layers' *_cuda.cpp, losses/losses_cuda.cpp, optim/optim_cuda.cpp,
// distributed/nccl_gradient_reducer.cpp). No CUDA header here (the handles are opaque), so
// those files include the CUDA headers they need themselves.
#include <cstddef>
#include <string>

#include "slurmlab/nn/cuda/device.hpp"

struct CUstream_st;
struct CUevent_st;
struct cublasContext;
struct cublasLtContext;
struct cudnnContext;

namespace slurmlab::nn::cuda {

class Context {
 public:
  // The process's context, created with default options on first use.
  static Context& get();
  static void configure(const CudaOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  CUstream_st* stream() const { return stream_; }
  cublasContext* cublas() const { return cublas_; }
  cublasLtContext* cublas_lt() const { return cublas_lt_; }
  cudnnContext* cudnn() const { return cudnn_; }
  const CudaOptions& options() const { return options_; }
  // The shared workspace, grown to at least `bytes` (<= the cap; throws std::runtime_error
  // naming the cap when asked for more). Valid until the next call that grows it; all users
  // are ordered on the one stream.
  void* workspace(std::size_t bytes);
  std::size_t workspace_cap() const { return options_.workspace_cap_bytes; }
  // Two doubles and two counters on the device for loss reductions, read back after a
  // synchronisation (the .item() of a loss).
  double* scalar_doubles() const { return scalars_; }
  unsigned long long* scalar_counters() const { return counters_; }
  CUevent_st* pinned_copies_done() const { return pinned_copies_done_; }
  void synchronize() const;
  std::string describe() const;

 private:
  explicit Context(const CudaOptions& options);
  CudaOptions options_;
  CUstream_st* stream_ = nullptr;
  cublasContext* cublas_ = nullptr;
  cublasLtContext* cublas_lt_ = nullptr;
  cudnnContext* cudnn_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  double* scalars_ = nullptr;
  unsigned long long* counters_ = nullptr;
  CUevent_st* pinned_copies_done_ = nullptr;  // recorded after each copy_from_pinned_async
  std::string device_name_;
  int major_ = 0, minor_ = 0;
};

// One double copied from the device once the work queued before it is done (the loss's
// .item(): a synchronisation).
double read_double(const double* device_value);

// Throws std::runtime_error with the call, file, line and the library's message.
void check_cuda(int status, const char* call, const char* file, int line);
void check_cublas(int status, const char* call, const char* file, int line);
void check_cudnn(int status, const char* call, const char* file, int line);
#define SLURMLAB_CUDA_CHECK(call) ::slurmlab::nn::cuda::check_cuda(static_cast<int>(call), #call, __FILE__, __LINE__)
#define SLURMLAB_CUBLAS_CHECK(call) ::slurmlab::nn::cuda::check_cublas(static_cast<int>(call), #call, __FILE__, __LINE__)
#define SLURMLAB_CUDNN_CHECK(call) ::slurmlab::nn::cuda::check_cudnn(static_cast<int>(call), #call, __FILE__, __LINE__)

}  // namespace slurmlab::nn::cuda
