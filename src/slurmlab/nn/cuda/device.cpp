// The device-agnostic parts of device.hpp (the CUDA answers: context.cpp; without CUDA:
// device_nocuda.cpp).
#include "slurmlab/nn/cuda/device.hpp"

#include "slurmlab/core/errors.hpp"

namespace slurmlab::nn {

Precision parse_precision(const std::string& text) {
  return slurmlab::parse_precision(text, {Precision::float32, Precision::bf16});
}

}  // namespace slurmlab::nn
