// Built without CUDA: the device-resident data set is absent and says so.
#include <stdexcept>

#include "slurmlab/data/gpu_batches.hpp"

namespace slurmlab::data {

bool cuda_device_image_set_built() {
  return false;
}

std::unique_ptr<DeviceImageSet> make_cuda_device_image_set(const ImageDataset&, const ImageTransform&, int) {
  throw std::runtime_error(
      "this slurmlab was built without CUDA; reconfigure with nvcc available or load the data on "
      "the CPU");
}

}  // namespace slurmlab::data
