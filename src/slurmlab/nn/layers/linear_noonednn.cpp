// Built without oneDNN: Linear's products all go to OpenBLAS (linear.cpp).
#include <stdexcept>

#include "slurmlab/nn/layers/linear_backend.hpp"

namespace slurmlab::nn::linear_backend {

bool onednn_available() { return false; }
void gemm(bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t, const float*, std::int64_t, float,
          float*, std::int64_t) {
  throw std::logic_error("Linear: built without oneDNN (SLURMLAB_WITH_ONEDNN=OFF)");
}

void gemm_bf16(bool, bool, std::int64_t, std::int64_t, std::int64_t, const std::uint16_t*, std::int64_t,
               const std::uint16_t*, std::int64_t, float, float*, std::int64_t) {
  throw std::logic_error("Linear: built without oneDNN (SLURMLAB_WITH_ONEDNN=OFF)");
}

}  // namespace slurmlab::nn::linear_backend
