// Built without CUDA: device.hpp's answers say so, and asking to use CUDA throws.
#include <stdexcept>

#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn {

using cuda::kNoCudaBackend;

bool cuda_usable(std::string* reason) {
  if (reason) *reason = kNoCudaBackend;
  return false;
}
void configure_cuda(const CudaOptions&) {
  throw std::runtime_error(kNoCudaBackend);
}
CudaOptions cuda_options() {
  return {};
}
std::string describe_cuda() {
  return kNoCudaBackend;
}
void synchronize(Device device) {
  if (device == Device::cuda) throw std::runtime_error(kNoCudaBackend);
}
void* cuda_stream() {
  throw std::runtime_error(kNoCudaBackend);
}
std::size_t cuda_peak_bytes() {
  return 0;
}
void reset_cuda_peak_bytes() {}
std::size_t cuda_bf16_convolution_fallbacks() {
  return 0;
}

}  // namespace slurmlab::nn
