#pragma once
// Compute precision of Conv2d and Linear on the CPU (the CUDA backend's is in CudaOptions).
//
// float32 (the default): everything in fp32. bf16: autocast-style mixed precision, as on the
// GPU: the operands of the convolutions and of Linear's matrix products are rounded to
// bfloat16, the products accumulate in fp32, and their outputs and gradients are fp32. Master
// weights, gradients, optimizer state, losses, batch norm and activations stay fp32. It runs on
// oneDNN's bf16 kernels, which need a CPU with AVX512-BF16 (AMD Zen 4 and later, Intel Cooper
// Lake, Sapphire Rapids with AMX and later): about twice fp32's multiply-add rate there.
// Linear layers with one input or one output feature (vector products, not matrix products)
// stay fp32.
#include <string>

#include "slurmlab/core/precision.hpp"

namespace slurmlab::nn {

// True when this build has oneDNN for both layers and the CPU runs its bf16 kernels natively;
// otherwise false with `reason` set to a sentence that says why and what to do.
bool cpu_bf16_available(std::string* reason = nullptr);
// Sets the precision for the process (call before training, from one thread). Throws
// UsageError with cpu_bf16_available's reason for bf16 where it is not available, and for
// float64.
void set_cpu_precision(Precision precision);
Precision cpu_precision();

}  // namespace slurmlab::nn
