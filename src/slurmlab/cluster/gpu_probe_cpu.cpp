// The CPU build's GPU probe: no runtime, so no devices, and the note says why.
#include "slurmlab/cluster/gpu_probe.hpp"

#include <stdexcept>

namespace slurmlab::cluster {

GpuRuntimeStatus probe_gpu_runtime() {
  return {false, 0, "built without CUDA (configure with the default preset on a machine with nvcc)"};
}

std::optional<GpuDeviceInfo> describe_gpu(int) { return std::nullopt; }

void select_gpu(int ordinal) {
  throw std::runtime_error("cannot select GPU " + std::to_string(ordinal) + ": this build has no CUDA support");
}

}  // namespace slurmlab::cluster
