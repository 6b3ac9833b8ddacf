// Residual's sum on CUDA (an own kernel); Sequential and Residual themselves are device-free
// (containers.cpp). Built only with CUDA.
#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn::cuda {

Tensor add(const Tensor& a, const Tensor& b) {
  require_cuda(b, "Residual");
  Tensor sum(a.shape(), Device::cuda);
  cuda_kernels::add(a.device_data(), b.device_data(), sum.device_data(), a.numel(), stream());
  return sum;
}

}  // namespace slurmlab::nn::cuda
