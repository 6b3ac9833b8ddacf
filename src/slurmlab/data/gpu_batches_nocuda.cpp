// Built without CUDA: the device-resident data set is absent and says so.
#include <stdexcept>

#include "slurmlab/data/gpu_batches.hpp"

namespace slurmlab::data {

bool cuda_device_image_set_built() {
  return false;
}

void PinnedFree::operator()(float*) const noexcept {}  // nothing is ever allocated

PinnedFloats allocate_pinned_floats(std::size_t) {
  throw std::runtime_error(
      "pinned (page-locked) batch memory needs CUDA, and this slurmlab was built without it; load batches into "
      "ordinary memory");
}

std::unique_ptr<DeviceImageSet> make_cuda_device_image_set(const ImageDataset&, const ImageTransform&, int) {
  throw std::runtime_error(
      "this slurmlab was built without CUDA; reconfigure with nvcc available or load the data on "
      "the CPU");
}

}  // namespace slurmlab::data
