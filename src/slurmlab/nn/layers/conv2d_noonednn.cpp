// Built without oneDNN: Conv2d always takes the im2col path (conv2d.cpp).
#include <stdexcept>

#include "slurmlab/nn/layers/conv2d_backend.hpp"

namespace slurmlab::nn::conv_backend {

bool onednn_available() { return false; }
bool onednn_bf16_native() { return false; }
void onednn_forward(const Dims&, const float*, const float*, const float*, float*, bool) {
  throw std::logic_error("Conv2d: built without oneDNN (SLURMLAB_WITH_ONEDNN=OFF)");
}
void onednn_backward(const Dims&, const float*, const float*, const float*, float*, float*, float*, bool) {
  throw std::logic_error("Conv2d: built without oneDNN (SLURMLAB_WITH_ONEDNN=OFF)");
}

}  // namespace slurmlab::nn::conv_backend
