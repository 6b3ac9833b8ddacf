#pragma once
// Rank -> GPU binding that is right for every way Slurm hands out GPUs:
//  - one task sees one GPU (--gpus-per-task=1, --gpu-bind=per_task:1): device 0;
//  - a task sees all GPUs of its node (--gpus-per-node=N, --gpus=N): its local rank
//    among the node's tasks picks one;
//  - CUDA_VISIBLE_DEVICES masks are respected (the ordinal is an index into the mask);
//  - more tasks on a node than GPUs each sees: an error, unless sharing was asked for.
// The global rank never enters: `rank % gpus_per_node` is wrong whenever nodes hold
// different numbers of tasks or Slurm binds per task.
#include <optional>
#include <string>
#include <vector>

namespace slurmlab::cluster {

enum class DevicePreference { automatic, cpu, cuda };  // --device auto|cpu|cuda

struct GpuBindingRequest {
  // The mask as this process sees it (nullopt: unset, every device visible).
  std::optional<std::vector<std::string>> cuda_visible_devices;
  int runtime_device_count = 0;  // devices the CUDA runtime answers with; 0 if none or CPU build
  std::string runtime_note;      // why the runtime found none (for the reason text)
  int local_rank = 0;            // this task's rank among the tasks on its node
  int local_size = 1;            // tasks on this node
  DevicePreference preference = DevicePreference::automatic;
  bool allow_sharing = false;    // several tasks on one GPU on purpose (--share-gpus)
};

struct GpuBinding {
  bool uses_gpu = false;               // compute runs on `device`
  int device = -1;                     // CUDA runtime ordinal when uses_gpu
  std::optional<int> planned_device;   // the ordinal Slurm's view assigns, even if no GPU answers
  std::string physical_id;             // the mask entry (index or UUID) behind planned_device
  int visible_count = 0;               // GPUs this task can see (runtime, else the mask)
  bool shared = false;                 // more tasks than visible GPUs, sharing allowed
  std::string reason;                  // one sentence: why this device
  std::string describe() const;        // "cuda:0", "cpu", "cpu (planned cuda:1, none answered)"
};

// Decides the binding. Throws UsageError (one sentence with a HINT) when the layout
// cannot work: more tasks than visible GPUs without sharing, or --device cuda without a GPU.
GpuBinding bind_gpu(const GpuBindingRequest& request);

DevicePreference parse_device_preference(const std::string& text);  // auto|cpu|cuda, else UsageError
const char* to_string(DevicePreference preference);

}  // namespace slurmlab::cluster
