// Built without CUDA: no device memory (see device_memory.hpp).
#include <stdexcept>

#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {

CachingAllocator& allocator() {
  throw std::runtime_error(kNoCudaBackend);
}
void fill(Tensor&, float) {
  throw std::runtime_error(kNoCudaBackend);
}
void copy(void*, Device, const void*, Device, std::size_t) {
  throw std::runtime_error(kNoCudaBackend);
}

}  // namespace slurmlab::nn::cuda
