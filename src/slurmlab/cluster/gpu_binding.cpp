#include "slurmlab/cluster/gpu_binding.hpp"

#include "slurmlab/core/errors.hpp"

namespace slurmlab::cluster {
namespace {

std::string mask_text(const std::optional<std::vector<std::string>>& mask) {
  if (!mask) return "unset";
  std::string text;
  for (const auto& entry : *mask) text += (text.empty() ? "" : ",") + entry;
  return "'" + text + "'";
}

}  // namespace

GpuBinding bind_gpu(const GpuBindingRequest& request) {
  GpuBinding binding;
  const bool answered = request.runtime_device_count > 0;
  const int from_mask = request.cuda_visible_devices ? static_cast<int>(request.cuda_visible_devices->size()) : 0;
  binding.visible_count = answered ? request.runtime_device_count : from_mask;

  if (request.preference == DevicePreference::cpu) {
    binding.reason = "--device cpu was given.";
    return binding;
  }
  if (binding.visible_count == 0) {
    if (request.preference == DevicePreference::cuda)
      throw UsageError("--device cuda was given but this task sees no GPU (CUDA_VISIBLE_DEVICES " +
                       mask_text(request.cuda_visible_devices) + (request.runtime_note.empty() ? "" : "; " + request.runtime_note) +
                       "). HINT: request GPUs with --gpus-per-task=1, or use --device auto.");
    binding.reason = "no GPU is visible to this task (CUDA_VISIBLE_DEVICES " + mask_text(request.cuda_visible_devices) +
                     (request.runtime_note.empty() ? "" : "; " + request.runtime_note) + "), so it runs on the CPU.";
    return binding;
  }

  int ordinal = 0;
  if (binding.visible_count == 1) {
    ordinal = 0;
    binding.reason = request.local_size > 1
                         ? "this task sees exactly one GPU (per-task binding or a one-GPU node), so it takes device 0."
                         : "this task sees one GPU and takes it.";
  } else if (request.local_size <= binding.visible_count) {
    ordinal = request.local_rank;
    binding.reason = "this task sees " + std::to_string(binding.visible_count) + " GPUs shared by " +
                     std::to_string(request.local_size) + " task(s) on its node, so local rank " +
                     std::to_string(request.local_rank) + " takes device " + std::to_string(ordinal) + ".";
  } else if (request.allow_sharing) {
    ordinal = request.local_rank % binding.visible_count;
    binding.shared = true;
    binding.reason = std::to_string(request.local_size) + " tasks share " + std::to_string(binding.visible_count) +
                     " GPUs on this node (sharing was asked for), so local rank " + std::to_string(request.local_rank) +
                     " takes device " + std::to_string(ordinal) + ".";
  } else {
    throw UsageError(std::to_string(request.local_size) + " tasks run on this node but each sees only " +
                     std::to_string(binding.visible_count) + " GPUs (CUDA_VISIBLE_DEVICES " +
                     mask_text(request.cuda_visible_devices) +
                     "). HINT: use --ntasks-per-node=" + std::to_string(binding.visible_count) +
                     " (one task per GPU) or --gpus-per-task=1, or pass --share-gpus to put several tasks on one GPU.");
  }

  binding.planned_device = ordinal;
  const auto& mask = request.cuda_visible_devices;
  binding.physical_id = mask && ordinal < static_cast<int>(mask->size()) ? (*mask)[static_cast<std::size_t>(ordinal)]
                                                                        : std::to_string(ordinal);
  if (answered) {
    binding.uses_gpu = true;
    binding.device = ordinal;
    return binding;
  }
  if (request.preference == DevicePreference::cuda)
    throw UsageError("--device cuda was given but no GPU answered (CUDA_VISIBLE_DEVICES " +
                     mask_text(request.cuda_visible_devices) + "; " + request.runtime_note +
                     "). HINT: check the driver with nvidia-smi on the node, or use --device auto.");
  binding.reason += " No GPU answered (" + request.runtime_note + "), so it runs on the CPU.";
  return binding;
}

std::string GpuBinding::describe() const {
  if (uses_gpu) return "cuda:" + std::to_string(device) + (shared ? " (shared)" : "");
  if (planned_device) return "cpu (planned cuda:" + std::to_string(*planned_device) + ", none answered)";
  return "cpu";
}

DevicePreference parse_device_preference(const std::string& text) {
  if (text == "auto") return DevicePreference::automatic;
  if (text == "cpu") return DevicePreference::cpu;
  if (text == "cuda") return DevicePreference::cuda;
  throw UsageError("--device '" + text + "' is not a device; use auto, cpu or cuda.");
}

const char* to_string(DevicePreference preference) {
  switch (preference) {
    case DevicePreference::automatic: return "auto";
    case DevicePreference::cpu: return "cpu";
    case DevicePreference::cuda: return "cuda";
  }
  return "auto";
}

}  // namespace slurmlab::cluster
