// The rank -> GPU binding over a table of the ways real Slurm hands out GPUs.
#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/gpu_binding.hpp"
#include "slurmlab/cluster/slurm_environment.hpp"

using namespace slurmlab::cluster;
using slurmlab::UsageError;

namespace {

struct Case {
  const char* name;
  std::optional<const char*> cuda_visible_devices;
  int runtime_devices;
  int local_rank;
  int local_size;
  bool allow_sharing;
  // expectations
  bool uses_gpu;
  int device;  // -1: CPU
  std::optional<int> planned;
  const char* physical_id;
};

GpuBindingRequest request_for(const Case& c) {
  GpuBindingRequest r;
  if (c.cuda_visible_devices) r.cuda_visible_devices = parse_device_list(*c.cuda_visible_devices);
  r.runtime_device_count = c.runtime_devices;
  r.runtime_note = c.runtime_devices ? "" : "no usable NVIDIA GPU or driver";
  r.local_rank = c.local_rank;
  r.local_size = c.local_size;
  r.allow_sharing = c.allow_sharing;
  return r;
}

const Case kCases[] = {
    // srun --ntasks-per-node=4 --gpus-per-task=1 (gpu-bind per_task): each task sees one GPU.
    {"per-task binding, rank 3 of 4", "3", 1, 3, 4, false, true, 0, 0, "3"},
    // Same with cgroup-constrained devices: the mask is renumbered to 0.
    {"per-task binding, cgroup renumbered", "0", 1, 2, 4, false, true, 0, 0, "0"},
    // --gpus-per-node=4, 4 tasks per node: every task sees all four, local rank picks.
    {"all GPUs visible, local rank 2", "0,1,2,3", 4, 2, 4, false, true, 2, 2, "2"},
    // A site masks GPUs: the ordinal indexes the mask, the physical id is the mask entry.
    {"masked 4,5,6,7, local rank 1", "4,5,6,7", 4, 1, 4, false, true, 1, 1, "5"},
    {"UUID mask", "GPU-aaaa,GPU-bbbb", 2, 1, 2, false, true, 1, 1, "GPU-bbbb"},
    // No mask at all (a workstation under mpirun): runtime devices, local rank picks.
    {"no mask, 2 GPUs, local rank 1", std::nullopt, 2, 1, 2, false, true, 1, 1, "1"},
    // Fewer tasks than GPUs: fine, some GPUs idle.
    {"2 tasks on 4 GPUs", "0,1,2,3", 4, 1, 2, false, true, 1, 1, "1"},
    // Sharing on purpose: 4 tasks on 2 GPUs.
    {"shared, local rank 3", "0,1", 2, 3, 4, true, true, 1, 1, "1"},
    // The local Slurm: Slurm hands out fake GPUs, none answers: CPU, planned device kept.
    {"fake GPUs: planned only", "1", 0, 1, 2, false, false, -1, 0, "1"},
    {"fake GPUs, all visible", "0,1", 0, 1, 2, false, false, -1, 1, "1"},
    // No GPU anywhere.
    {"no GPU", std::nullopt, 0, 0, 1, false, false, -1, std::nullopt, ""},
    {"NoDevFiles", "NoDevFiles", 0, 0, 1, false, false, -1, std::nullopt, ""},
};

}  // namespace

TEST(GpuBinding, TableOfSlurmLayouts) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto binding = bind_gpu(request_for(c));
    EXPECT_EQ(binding.uses_gpu, c.uses_gpu);
    EXPECT_EQ(binding.device, c.device);
    EXPECT_EQ(binding.planned_device, c.planned);
    EXPECT_EQ(binding.physical_id, c.physical_id);
    EXPECT_FALSE(binding.reason.empty());
  }
}

TEST(GpuBinding, MoreTasksThanGpusIsAnErrorWithHint) {
  Case c{"4 tasks, 2 GPUs", "0,1", 2, 3, 4, false, true, 0, 0, ""};
  try {
    bind_gpu(request_for(c));
    FAIL() << "accepted 4 tasks on 2 GPUs";
  } catch (const UsageError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("4 tasks"), std::string::npos) << message;
    EXPECT_NE(message.find("HINT"), std::string::npos) << message;
    EXPECT_NE(message.find("--share-gpus"), std::string::npos) << message;
  }
}

TEST(GpuBinding, DevicePreferences) {
  Case gpu{"", "0", 1, 0, 1, false, true, 0, 0, "0"};
  auto r = request_for(gpu);
  r.preference = DevicePreference::cpu;
  EXPECT_FALSE(bind_gpu(r).uses_gpu);

  Case none{"", std::nullopt, 0, 0, 1, false, false, -1, std::nullopt, ""};
  r = request_for(none);
  r.preference = DevicePreference::cuda;
  EXPECT_THROW(bind_gpu(r), UsageError);

  Case fake{"", "0", 0, 0, 1, false, false, -1, 0, "0"};
  r = request_for(fake);
  r.preference = DevicePreference::cuda;
  EXPECT_THROW(bind_gpu(r), UsageError);  // Slurm gave a GPU, but none answers

  EXPECT_EQ(parse_device_preference("cuda"), DevicePreference::cuda);
  EXPECT_THROW(parse_device_preference("gpu"), UsageError);
}

TEST(GpuBinding, Describe) {
  Case fake{"", "1", 0, 0, 1, false, false, -1, 0, "1"};
  EXPECT_EQ(bind_gpu(request_for(fake)).describe(), "cpu (planned cuda:0, none answered)");
  Case real{"", "0,1", 2, 1, 2, false, true, 1, 1, "1"};
  EXPECT_EQ(bind_gpu(request_for(real)).describe(), "cuda:1");
}
