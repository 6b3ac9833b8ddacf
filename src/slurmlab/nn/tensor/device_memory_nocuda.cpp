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
void copy_from_pinned_async(void*, const void*, std::size_t) {
  throw std::runtime_error(kNoCudaBackend);
}
void wait_for_pinned_copies() {}  // no copy can have been queued

}  // namespace slurmlab::nn::cuda
