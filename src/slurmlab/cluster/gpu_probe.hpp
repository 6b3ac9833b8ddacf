#pragma once
// What the CUDA runtime says about this process's GPUs. Implemented by gpu_probe.cu
// when CUDA is built, by gpu_probe_cpu.cpp (no devices, says why) otherwise.
#include <cstddef>
#include <optional>
#include <string>

namespace slurmlab::cluster {

struct GpuRuntimeStatus {
  bool built_with_cuda = false;
  int device_count = 0;  // devices the runtime answers with (after CUDA_VISIBLE_DEVICES)
  std::string note;      // why there are none, e.g. "no CUDA-capable device is detected"
};

struct GpuDeviceInfo {
  int ordinal = -1;
  std::string name;
  std::string uuid;        // "GPU-xxxxxxxx-..." as nvidia-smi prints it
  std::string pci_bus_id;  // "0000:3b:00.0"
  std::size_t total_memory_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
};

GpuRuntimeStatus probe_gpu_runtime();
std::optional<GpuDeviceInfo> describe_gpu(int ordinal);
// Makes `ordinal` the current device of the calling thread; throws std::runtime_error on failure.
void select_gpu(int ordinal);

}  // namespace slurmlab::cluster
