// The device-agnostic parts of device.hpp (the CUDA answers: context.cpp; without CUDA:
// device_nocuda.cpp).
#include "slurmlab/nn/cuda/device.hpp"

#include "slurmlab/core/errors.hpp"

namespace slurmlab::nn {

std::string to_string(Precision precision) { return precision == Precision::bf16 ? "bf16" : "float32"; }

Precision parse_precision(const std::string& text) {
  if (text == "fp32" || text == "float32") return Precision::float32;
  if (text == "bf16" || text == "bfloat16") return Precision::bf16;
  throw UsageError("unknown precision '" + text + "'; use fp32 or bf16");
}

}  // namespace slurmlab::nn
