// The CUDA build's GPU probe, on the runtime API.
#include <cuda_runtime.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "slurmlab/cluster/gpu_probe.hpp"

namespace slurmlab::cluster {
namespace {

std::string format_uuid(const cudaUUID_t& uuid) {
  // nvidia-smi's layout: GPU-8-4-4-4-12 hex digits.
  static constexpr int groups[] = {4, 2, 2, 2, 6};
  std::string text = "GPU";
  int byte = 0;
  for (int group : groups) {
    text += '-';
    for (int i = 0; i < group; ++i, ++byte) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(uuid.bytes[byte]));
      text += hex;
    }
  }
  return text;
}

}  // namespace

GpuRuntimeStatus probe_gpu_runtime() {
  GpuRuntimeStatus status;
  status.built_with_cuda = true;
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    status.note = error == cudaErrorInsufficientDriver || error == cudaErrorNoDevice
                      ? std::string("no usable NVIDIA GPU or driver (") + cudaGetErrorString(error) + ")"
                      : std::string("CUDA runtime error: ") + cudaGetErrorString(error);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return status;
  }
  status.device_count = count;
  if (count == 0) status.note = "the CUDA runtime found no device";
  return status;
}

std::optional<GpuDeviceInfo> describe_gpu(int ordinal) {
  cudaDeviceProp props{};
  if (cudaGetDeviceProperties(&props, ordinal) != cudaSuccess) {
    cudaGetLastError();
    return std::nullopt;
  }
  GpuDeviceInfo info;
  info.ordinal = ordinal;
  info.name = props.name;
  info.uuid = format_uuid(props.uuid);
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, ordinal) == cudaSuccess) info.pci_bus_id = bus;
  info.total_memory_bytes = props.totalGlobalMem;
  info.compute_capability_major = props.major;
  info.compute_capability_minor = props.minor;
  return info;
}

void select_gpu(int ordinal) {
  cudaError_t error = cudaSetDevice(ordinal);
  if (error != cudaSuccess)
    throw std::runtime_error("cannot select GPU " + std::to_string(ordinal) + ": " + cudaGetErrorString(error));
}

}  // namespace slurmlab::cluster
