// Built without CUDA: no CUDA paths for the layers (see layers_cuda.hpp).
#include <stdexcept>

#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {

Forward linear_forward(Linear&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor linear_backward(Linear&, const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward conv2d_forward(Conv2d&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor conv2d_backward(Conv2d&, const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward activation_forward(Activation, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor activation_backward(Activation, const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward dropout_forward(float, Generator&, const Tensor&, Mode) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor dropout_backward(const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor scaled(const Tensor&, float) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward pool_forward(PoolKind, std::int64_t, std::int64_t, std::int64_t, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor pool_backward(const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward adaptive_avg_pool_forward(std::int64_t, std::int64_t, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor adaptive_avg_pool_backward(const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Forward batch_norm_forward(BatchNorm&, float, float, const Tensor&, Mode) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor batch_norm_backward(BatchNorm&, const nn::Context&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}
Tensor add(const Tensor&, const Tensor&) {
  throw std::runtime_error(kNoCudaBackend);
}

}  // namespace slurmlab::nn::cuda
