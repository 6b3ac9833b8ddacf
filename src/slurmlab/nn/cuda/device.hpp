#pragma once
// Where slurmlab::nn computes: the CUDA backend's switches, available in every build (a build
// without CUDA links device_nocuda.cpp, which answers that it has none, with the reason, and
// throws when asked to use it; with CUDA they are defined in context.cpp).
//
// One CUDA context per process (one GPU per MPI rank, chosen by cluster::RankContext's
// binding): a stream that every kernel and library call of the backend is ordered on, one
// cuBLAS, cuBLASLt and cuDNN handle, and one shared workspace that grows on demand up to a
// cap (convolution algorithms needing more are not chosen). Tensor storage comes from the
// CUDA CachingAllocator, which reuses freed blocks; because all work is ordered on the one
// stream, a block freed by one kernel's tensor and handed to the next is safe without events
// (the stream-ordered reuse PyTorch's allocator does per stream).
#include <cstddef>
#include <string>

#include "slurmlab/core/precision.hpp"

#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn {

// TF32: Ampere and Hopper tensor cores multiply float32 operands rounded to a 10-bit mantissa.
// off keeps products exact float32 (cuBLAS CUBLAS_DEFAULT_MATH with CUBLAS_COMPUTE_32F, which
// never rounds to TF32; cuDNN FMA-math algorithms only); on lets both libraries use TF32 tensor
// cores (CUBLAS_TF32_TENSOR_OP_MATH and CUBLAS_COMPUTE_32F_FAST_TF32, cuDNN CUDNN_DEFAULT_MATH).
// PyTorch's defaults differ between matmul (off) and cuDNN convolutions (on); here one switch
// sets both, it is explicit in every program's options, and describe_cuda() prints it.
enum class Tf32 { off, on };

// Compute precision of Linear and Conv2d on CUDA. float32: everything in fp32 (TF32 per the
// switch above). bf16: autocast-style mixed precision: the inputs and weights of the products
// are rounded to bfloat16 on the fly and products accumulate in fp32. Linear writes fp32
// outputs and gradients; Conv2d's cuDNN bf16 engines write bf16 (its output, input gradient and
// weight gradient are rounded to bfloat16, as under PyTorch's autocast, then widened to fp32
// and, for the weight gradient, added to the fp32 one). Master weights, accumulated gradients,
// optimizer state, losses, batch norm and activations stay fp32.
// bf16 has float32's exponent range, so no loss scaling is needed (unlike fp16). A
// convolution shape for which cuDNN offers no bf16 engine runs in float32/TF32 instead.
// nn computes in Precision::float32 or Precision::bf16 (core/precision.hpp); configure_cuda
// refuses float64.
// "fp32"|"float32"|"bf16"|"bfloat16", else UsageError naming the text and the two choices.
Precision parse_precision(const std::string& text);

struct CudaOptions {
  int device = 0;                               // CUDA runtime ordinal (RankContext's binding)
  std::size_t workspace_cap_bytes = 256u << 20; // cuDNN/cuBLASLt workspace ceiling
  Tf32 tf32 = Tf32::off;
  Precision precision = Precision::float32;
};

// True when this build has CUDA and a GPU answers; otherwise false with `reason` filled.
bool cuda_usable(std::string* reason = nullptr);
// Creates (or re-creates, after synchronising) the process's CUDA context. Throws
// std::runtime_error naming the problem when this build has no CUDA or the device fails.
void configure_cuda(const CudaOptions& options);
// The context's options (a default context is created on first CUDA use).
CudaOptions cuda_options();
// "cuda:0 NVIDIA H200 (sm_90), TF32 off, precision float32, workspace cap 256 MiB"
std::string describe_cuda();
// Waits for all queued work on `device` (no-op for the CPU).
void synchronize(Device device);
// nn's CUDA stream (a cudaStream_t), on which every nn kernel, copy and library call of the
// process is queued: other libraries queue work that nn's tensors depend on here, and need
// no synchronisation. Creates the default context on first use; throws without CUDA.
void* cuda_stream();
// Peak bytes of device memory handed out by the CUDA allocator since the last reset (tensor
// storage and the workspace), and its reset.
std::size_t cuda_peak_bytes();
void reset_cuda_peak_bytes();
// Convolution shapes that asked for Precision::bf16 but run in float32/TF32 because cuDNN
// offered no bf16 engine for them (0 without CUDA). Defined beside the convolution
// (layers/conv2d_cuda.cpp).
std::size_t cuda_bf16_convolution_fallbacks();

}  // namespace slurmlab::nn
