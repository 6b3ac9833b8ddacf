#pragma once
// The CUDA backend's entry points, called by the device-agnostic layer, loss and optimizer
// code when a tensor is on Device::cuda. Internal to slurmlab::nn; compiled only with
// SLURMLAB_HAVE_CUDA. No CUDA header here (the handles are opaque), so C++20 code that never
// touches CUDA types can include it.
//
// Files: cuda_context.cpp (context, allocator, tensor copies), layers_cuda.cpp (cuBLAS(Lt)
// and cuDNN layers), losses_optim_cuda.cpp (losses, fused optimizer steps), cuda_kernels.cu
// (the own kernels), nccl_gradient_reducer.cpp (data parallel).
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"

struct CUstream_st;
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
  std::string device_name_;
  int major_ = 0, minor_ = 0;
};

// Throws std::runtime_error with the call, file, line and the library's message.
void check_cuda(int status, const char* call, const char* file, int line);
void check_cublas(int status, const char* call, const char* file, int line);
void check_cudnn(int status, const char* call, const char* file, int line);
#define SLURMLAB_CUDA_CHECK(call) ::slurmlab::nn::cuda::check_cuda(static_cast<int>(call), #call, __FILE__, __LINE__)
#define SLURMLAB_CUBLAS_CHECK(call) ::slurmlab::nn::cuda::check_cublas(static_cast<int>(call), #call, __FILE__, __LINE__)
#define SLURMLAB_CUDNN_CHECK(call) ::slurmlab::nn::cuda::check_cudnn(static_cast<int>(call), #call, __FILE__, __LINE__)

// Tensor support (tensor.cpp dispatches here).
CachingAllocator& allocator();
void fill(Tensor& tensor, float value);
// Copies bytes between any two devices (host <-> device synchronises the stream).
void copy(void* destination, Device destination_device, const void* source, Device source_device, std::size_t bytes);

// Layers (layers.hpp's classes dispatch here when the input is on CUDA).
Forward linear_forward(Linear& layer, const Tensor& input);
Tensor linear_backward(Linear& layer, const nn::Context& context, const Tensor& grad_output);
Forward conv2d_forward(Conv2d& layer, const Tensor& input);
// Convolution shapes that asked for bf16 and run in float32/TF32 (cuDNN had no bf16 engine).
std::size_t bf16_convolution_fallbacks();
Tensor conv2d_backward(Conv2d& layer, const nn::Context& context, const Tensor& grad_output);
Forward activation_forward(Activation kind, const Tensor& input);
Tensor activation_backward(Activation kind, const nn::Context& context, const Tensor& grad_output);
Forward dropout_forward(float p, Generator& generator, const Tensor& input, Mode mode);
Tensor dropout_backward(const nn::Context& context, const Tensor& grad_output);
enum class PoolKind { max, average };
Forward pool_forward(PoolKind kind, std::int64_t kernel, std::int64_t stride, std::int64_t padding, const Tensor& input);
Tensor pool_backward(const nn::Context& context, const Tensor& grad_output);
Forward adaptive_avg_pool_forward(std::int64_t out_h, std::int64_t out_w, const Tensor& input);
Tensor adaptive_avg_pool_backward(const nn::Context& context, const Tensor& grad_output);
Forward batch_norm_forward(BatchNorm& layer, float eps, float momentum, const Tensor& input, Mode mode);
Tensor batch_norm_backward(BatchNorm& layer, const nn::Context& context, const Tensor& grad_output);
Tensor add(const Tensor& a, const Tensor& b);

// Losses.
LossResult mse_loss(const Tensor& prediction, const Tensor& target, std::span<const float> sample_weights);
LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels);
std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels);

// Optimizers: one fused launch over all parameters. `state` keeps the device pointer tables
// between steps (rebuilt only when a tensor's storage changes).
void sgd_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& momentum, const SgdOptions& options,
              double learning_rate, std::int64_t steps_taken, std::shared_ptr<void>& state);
void adam_step(const std::vector<NamedParameter>& parameters, std::vector<Tensor>& exp_avg,
               std::vector<Tensor>& exp_avg_sq, const AdamOptions& options, double learning_rate,
               std::int64_t steps_taken, std::shared_ptr<void>& state);
double clip_gradient_norm(const std::vector<NamedParameter>& parameters, double max_norm);

}  // namespace slurmlab::nn::cuda
