#pragma once
// What the layers' CUDA files (*_cuda.cpp beside each layer) share: the context's handles and
// switches, the cuDNN tensor descriptor, the 32-bit range check of the library calls and the
// bf16 operand copies. Internal; included only by files built with CUDA.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "slurmlab/nn/cuda/context.hpp"
#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn::cuda {

inline cudaStream_t stream() { return Context::get().stream(); }
inline cudnnHandle_t dnn() { return Context::get().cudnn(); }
inline bool tf32_on() { return Context::get().options().tf32 == Tf32::on; }
inline bool bf16_on() { return Context::get().options().precision == Precision::bf16; }

inline void require_cuda(const Tensor& tensor, const std::string& layer) {
  if (tensor.device() != Device::cuda) {
    throw std::invalid_argument(layer + ": a tensor is on " + to_string(tensor.device()) +
                                " while the input is on cuda; move the model with nn::to_device(model, Device::cuda)");
  }
}

inline int as_int(std::int64_t value, const char* what) {
  if (value > 0x7fffffff) throw std::invalid_argument(std::string(what) + " exceeds the 32-bit range of cuDNN/cuBLAS");
  return static_cast<int>(value);
}

// RAII wrapper for a cuDNN tensor descriptor (the others live beside their one user).
struct TensorDescriptor {
  cudnnTensorDescriptor_t handle = nullptr;
  TensorDescriptor(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                   cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(handle, CUDNN_TENSOR_NCHW, type, as_int(n, "batch"),
                                                    as_int(c, "channels"), as_int(h, "height"), as_int(w, "width")));
  }
  TensorDescriptor() { SLURMLAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle)); }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(handle); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

// A bfloat16 copy of a float32 tensor, in storage from the caching allocator.
inline Tensor to_bf16(const Tensor& x) {
  Tensor half({(x.numel() + 1) / 2}, Device::cuda);
  cuda_kernels::float_to_bf16(x.device_data(), reinterpret_cast<std::uint16_t*>(half.device_data()), x.numel(),
                              stream());
  return half;
}

}  // namespace slurmlab::nn::cuda
