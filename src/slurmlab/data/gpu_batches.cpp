// The parts of the device-resident data set that are plain code (every build, CPU-tested).
#include "slurmlab/data/gpu_batches.hpp"

#include <string>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::data {

bool device_set_fits(std::int64_t set_bytes, std::int64_t free_device_bytes) {
  return set_bytes >= 0 && set_bytes <= free_device_bytes / 2;
}

std::int64_t device_set_bytes(const ImageDataset& dataset) {
  const auto shape = dataset.fixed_shape();
  if (!shape) {
    throw UsageError("the images of " + dataset.describe() +
                     " differ in size, so the set cannot be held on the GPU as one array; load it on the CPU "
                     "(without --data-on-gpu) with --resize.");
  }
  return dataset.size() * (shape->bytes() + static_cast<std::int64_t>(sizeof(std::int64_t)));
}

}  // namespace slurmlab::data
