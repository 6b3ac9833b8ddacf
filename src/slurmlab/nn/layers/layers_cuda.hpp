#pragma once
// The CUDA paths of the layers (layers.hpp's classes call them when the input is on
// Device::cuda), internal to slurmlab::nn. Each is defined in a file beside its layer's CPU
// file (Caffe's relu_layer.cpp / relu_layer.cu): linear_cuda.cpp (cuBLASLt/cuBLAS),
// conv2d_cuda.cpp, pooling_cuda.cpp and batchnorm_cuda.cpp (cuDNN 9), activations_cuda.cpp
// (activations and dropout) and containers_cuda.cpp (the residual sum) on the own kernels of
// cuda/kernels.cu. A build without CUDA links layers_nocuda.cpp instead, whose functions throw
// cuda::kNoCudaBackend. No CUDA header here, so the CPU files include it.
#include <cstdint>

#include "slurmlab/nn/layers/layers.hpp"

namespace slurmlab::nn::cuda {

Forward linear_forward(Linear& layer, const Tensor& input);
Tensor linear_backward(Linear& layer, const nn::Context& context, const Tensor& grad_output);
Forward conv2d_forward(Conv2d& layer, const Tensor& input);
Tensor conv2d_backward(Conv2d& layer, const nn::Context& context, const Tensor& grad_output);
Forward activation_forward(Activation kind, const Tensor& input);
Tensor activation_backward(Activation kind, const nn::Context& context, const Tensor& grad_output);
Forward dropout_forward(float p, Generator& generator, const Tensor& input, Mode mode);
Tensor dropout_backward(const nn::Context& context, const Tensor& grad_output);
// factor * x in a new tensor (Scale's forward and backward alike).
Tensor scaled(const Tensor& x, float factor);
enum class PoolKind { max, average };
Forward pool_forward(PoolKind kind, std::int64_t kernel, std::int64_t stride, std::int64_t padding, const Tensor& input);
Tensor pool_backward(const nn::Context& context, const Tensor& grad_output);
Forward adaptive_avg_pool_forward(std::int64_t out_h, std::int64_t out_w, const Tensor& input);
Tensor adaptive_avg_pool_backward(const nn::Context& context, const Tensor& grad_output);
Forward batch_norm_forward(BatchNorm& layer, float eps, float momentum, const Tensor& input, Mode mode);
Tensor batch_norm_backward(BatchNorm& layer, const nn::Context& context, const Tensor& grad_output);
// a + b for two CUDA tensors of one shape (Residual); b on another device is a usage error.
Tensor add(const Tensor& a, const Tensor& b);

}  // namespace slurmlab::nn::cuda
