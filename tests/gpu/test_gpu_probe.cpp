// Label gpu: the probe and binding against a real CUDA runtime. Skipped, with the
// runtime's own reason, when no GPU answers (CI, the CPU build, the local Slurm).
#include <gtest/gtest.h>

#include "slurmlab/cluster/gpu_binding.hpp"
#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/cluster/slurm_environment.hpp"

using namespace slurmlab::cluster;


TEST(GpuProbe, DescribesEveryVisibleDevice) {
  auto status = probe_gpu_runtime();
  if (status.device_count == 0) GTEST_SKIP() << "no GPU answers: " << status.note;
  for (int d = 0; d < status.device_count; ++d) {
    auto info = describe_gpu(d);
    ASSERT_TRUE(info.has_value()) << "device " << d;
    EXPECT_EQ(info->ordinal, d);
    EXPECT_FALSE(info->name.empty());
    EXPECT_EQ(info->uuid.rfind("GPU-", 0), 0u) << info->uuid;
    EXPECT_EQ(info->uuid.size(), 40u) << info->uuid;  // GPU- + 32 hex digits + 4 dashes
    EXPECT_EQ(info->pci_bus_id.size(), 12u) << info->pci_bus_id;  // 0000:3b:00.0
    EXPECT_GT(info->total_memory_bytes, std::size_t{1} << 30);
    EXPECT_GE(info->compute_capability_major, 7);
  }
  EXPECT_FALSE(describe_gpu(status.device_count).has_value());
}

TEST(GpuProbe, BindingSelectsTheRuntimeDevice) {
  auto status = probe_gpu_runtime();
  if (status.device_count == 0) GTEST_SKIP() << "no GPU answers: " << status.note;
  GpuBindingRequest request;
  request.runtime_device_count = status.device_count;
  request.local_rank = status.device_count - 1;
  request.local_size = status.device_count;
  request.preference = DevicePreference::cuda;
  auto binding = bind_gpu(request);
  ASSERT_TRUE(binding.uses_gpu);
  EXPECT_EQ(binding.device, status.device_count - 1);
  EXPECT_NO_THROW(select_gpu(binding.device));
  EXPECT_THROW(select_gpu(status.device_count + 7), std::runtime_error);
}

TEST(GpuProbe, WithoutAGpuTheNoteSaysWhy) {
  auto status = probe_gpu_runtime();
  if (status.device_count > 0) GTEST_SKIP() << "a GPU answers; this checks the no-GPU message";
  EXPECT_FALSE(status.note.empty());
  EXPECT_THROW(select_gpu(0), std::runtime_error);
}
