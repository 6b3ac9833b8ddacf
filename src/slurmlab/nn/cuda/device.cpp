// Device-agnostic parts of nn/device.hpp, and the answers of a build without CUDA.
#include "slurmlab/nn/cuda/device.hpp"

#include <stdexcept>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::nn {

std::string to_string(Precision precision) { return precision == Precision::bf16 ? "bf16" : "float32"; }

Precision parse_precision(const std::string& text) {
  if (text == "fp32" || text == "float32") return Precision::float32;
  if (text == "bf16" || text == "bfloat16") return Precision::bf16;
  throw UsageError("unknown precision '" + text + "'; use fp32 or bf16");
}

void to_device(Layer& layer, Device device) {
  layer.visit_parameters("", [device](const std::string&, Parameter& p) {
    p.value = p.value.to(device);
    p.grad = p.grad.to(device);
  });
  layer.visit_buffers("", [device](const std::string&, Tensor& buffer) { buffer = buffer.to(device); });
}

#if !defined(SLURMLAB_HAVE_CUDA)
namespace {
constexpr const char* kNoCuda = "this build of slurmlab has no CUDA backend (configured without nvcc; see README)";
}
bool cuda_usable(std::string* reason) {
  if (reason) *reason = kNoCuda;
  return false;
}
void configure_cuda(const CudaOptions&) { throw std::runtime_error(kNoCuda); }
CudaOptions cuda_options() { return {}; }
std::string describe_cuda() { return kNoCuda; }
void synchronize(Device device) {
  if (device == Device::cuda) throw std::runtime_error(kNoCuda);
}
std::size_t cuda_peak_bytes() { return 0; }
void reset_cuda_peak_bytes() {}
std::size_t cuda_bf16_convolution_fallbacks() { return 0; }
#endif

}  // namespace slurmlab::nn
