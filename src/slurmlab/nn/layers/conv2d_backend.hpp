// Conv2d's optional CPU backend (oneDNN), beside the im2col reference in conv2d.cpp. CMake
// links conv2d_onednn.cpp when oneDNN is found (SLURMLAB_WITH_ONEDNN), else conv2d_noonednn.cpp,
// whose available() is false so conv2d.cpp never calls the others.
#pragma once

#include <cstdint>

namespace slurmlab::nn::conv_backend {

struct Dims {
  std::int64_t n, c, h, w, out, k, stride, pad, out_h, out_w;
};

// True when oneDNN is compiled in and SLURMLAB_CONV is not "im2col" (read once per process).
bool onednn_available();
// True when oneDNN runs bf16 kernels natively on this CPU (its effective ISA, which
// DNNL_MAX_CPU_ISA can lower, includes AVX512-BF16).
bool onednn_bf16_native();
// y[n, out, oh, ow] = conv(x, w) + b (b may be null). bf16: x and w rounded to bfloat16, the
// products accumulated in fp32 (cpu_precision.hpp).
void onednn_forward(const Dims& d, const float* x, const float* w, const float* b, float* y, bool bf16 = false);
// dx = conv^T(dy, w) (overwritten; dx null: not computed); dw += dW; db += dB (db may be null).
// bf16: x, w and dy rounded to bfloat16; dx, dW and dB computed in fp32 from them.
void onednn_backward(const Dims& d, const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                     bool bf16 = false);

}  // namespace slurmlab::nn::conv_backend
