#include "slurmlab/cluster/rank_context.hpp"

#include <unistd.h>

#include <algorithm>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/cpu_affinity.hpp"

namespace slurmlab::cluster {

NodeLayout layout_from_node_names(const std::vector<std::string>& node_of_rank, int rank) {
  NodeLayout layout{0, 0, 0, 0};
  std::vector<std::string> nodes_seen;
  const auto& mine = node_of_rank.at(static_cast<std::size_t>(rank));
  for (std::size_t r = 0; r < node_of_rank.size(); ++r) {
    const auto& node = node_of_rank[r];
    if (std::find(nodes_seen.begin(), nodes_seen.end(), node) == nodes_seen.end()) nodes_seen.push_back(node);
    if (node == mine) {
      if (static_cast<int>(r) < rank) ++layout.local_rank;
      ++layout.local_size;
    }
  }
  layout.node_index = static_cast<int>(std::find(nodes_seen.begin(), nodes_seen.end(), mine) - nodes_seen.begin());
  layout.node_count = static_cast<int>(nodes_seen.size());
  return layout;
}

RankContext RankContext::establish(const MpiSession& session, const Environment& env, DevicePreference preference,
                                   bool allow_sharing, BindingErrors on_binding_error) {
  RankContext context;
  context.rank = session.rank();
  context.size = session.size();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  context.host_name = host;

  session.run_collectively([&] { context.slurm = SlurmEnvironment::from(env); });
  context.node_name = context.slurm.node_name.value_or(context.host_name);
  context.layout = layout_from_node_names(session.allgather(context.node_name), context.rank);
  context.gpu_runtime = probe_gpu_runtime();

  GpuBindingRequest request;
  request.cuda_visible_devices = context.slurm.cuda_visible_devices;
  request.runtime_device_count = context.gpu_runtime.device_count;
  request.runtime_note = context.gpu_runtime.note;
  request.local_rank = context.layout.local_rank;
  request.local_size = context.layout.local_size;
  request.preference = preference;
  request.allow_sharing = allow_sharing;

  session.run_collectively([&] {
    try {
      context.gpu = bind_gpu(request);
    } catch (const UsageError& e) {
      if (on_binding_error == BindingErrors::fail) throw;
      context.binding_error = Diagnostic{Severity::error, "gpu-binding", e.what(), ""};
      context.gpu = GpuBinding{};
      context.gpu.reason = "the GPU binding failed (see the diagnostics), so this task runs on the CPU.";
    }
    if (context.gpu.uses_gpu) {
      select_gpu(context.gpu.device);
      context.gpu_info = describe_gpu(context.gpu.device);
    }
  });
  return context;
}

std::vector<Diagnostic> check_job_layout(const MpiSession& session, const RankContext& context, bool sharing_allowed,
                                         bool strict) {
  auto found = check_task_environment(context.slurm, context.rank, context.size);
  if (strict) {
    for (auto& d : found) {
      if (d.code == "not-launched-by-srun" && context.slurm.ntasks && *context.slurm.ntasks > context.size) {
        d.severity = Severity::error;
        d.message = "Slurm job " + context.slurm.job_id.value_or("?") + " asked for " +
                    std::to_string(*context.slurm.ntasks) + " tasks but only " + std::to_string(context.size) +
                    " process(es) run, outside srun, so the other tasks would never join training.";
      }
    }
  }
  if (context.binding_error) found.push_back(*context.binding_error);
  // Placement over all ranks: node, GPUs Slurm gave the node, and the GPU each rank uses.
  const std::string identity =
      context.gpu_info ? context.gpu_info->uuid : context.gpu.planned_device ? context.gpu.physical_id : "";
  std::string cpu_reason = context.gpu.uses_gpu ? "" : context.gpu.reason.empty() ? "no GPU" : context.gpu.reason;
  std::replace(cpu_reason.begin(), cpu_reason.end(), '\t', ' ');
  const std::string mine = context.node_name + '\t' +
                           (context.slurm.gpus_on_node ? std::to_string(*context.slurm.gpus_on_node) : "") + '\t' +
                           identity + '\t' + (context.gpu.uses_gpu ? "gpu" : "cpu:" + cpu_reason);
  std::vector<TaskPlacement> placements;
  const auto all = session.allgather(mine);
  for (std::size_t r = 0; r < all.size(); ++r) {
    const auto first = all[r].find('\t'), second = all[r].find('\t', first + 1), third = all[r].find('\t', second + 1);
    TaskPlacement t;
    t.rank = static_cast<int>(r);
    t.node = all[r].substr(0, first);
    const auto gpus = all[r].substr(first + 1, second - first - 1);
    if (!gpus.empty()) t.gpus_on_node = std::stoi(gpus);
    t.gpu_identity = all[r].substr(second + 1, third - second - 1);
    const auto device = all[r].substr(third + 1);
    if (device.rfind("cpu:", 0) == 0) t.cpu_reason = device.substr(4);
    t.sharing_allowed = sharing_allowed;
    placements.push_back(std::move(t));
  }
  auto placement = check_placement(placements, /*share_option=*/!strict);
  for (auto& d : placement) {
    if (strict && d.code == "mixed-devices") {
      // Data-parallel training: the GPU ranks would reduce with NCCL, the CPU ranks with MPI.
      d.severity = Severity::error;
      d.message += " Training across ranks needs every rank on the same kind of device.";
    }
  }
  found.insert(found.end(), placement.begin(), placement.end());
  // Every rank's own findings, so that all ranks hold (and act on) the same list.
  std::string text;
  for (const auto& d : found) {
    text += std::to_string(static_cast<int>(d.severity)) + '\x1f' + d.code + '\x1f' + d.message + '\x1f' + d.hint + '\x1e';
  }
  std::vector<Diagnostic> every;
  for (const auto& rank_text : session.allgather(text)) {
    std::size_t begin = 0;
    while (begin < rank_text.size()) {
      const auto end = rank_text.find('\x1e', begin);
      const auto record = rank_text.substr(begin, end - begin);
      begin = end + 1;
      std::vector<std::string> fields;
      std::size_t from = 0;
      for (auto at = record.find('\x1f'); at != std::string::npos; at = record.find('\x1f', from)) {
        fields.push_back(record.substr(from, at - from));
        from = at + 1;
      }
      fields.push_back(record.substr(from));
      every.push_back({static_cast<Severity>(std::stoi(fields.at(0))), fields.at(1), fields.at(2), fields.at(3)});
    }
  }
  auto unique = unique_diagnostics(std::move(every));
  std::stable_sort(unique.begin(), unique.end(), [](const auto& a, const auto& b) { return a.severity > b.severity; });
  return unique;
}

std::vector<Diagnostic> require_sound_job_layout(const MpiSession& session, const RankContext& context,
                                                 bool sharing_allowed) {
  auto found = check_job_layout(session, context, sharing_allowed, /*strict=*/true);
  if (!found.empty() && found.front().severity == Severity::error) {
    const auto& d = found.front();
    throw UsageError(d.message + (d.hint.empty() ? "" : " HINT: " + d.hint));
  }
  return found;
}

std::string RankContext::describe() const {
  std::string text = "rank " + std::to_string(rank) + " of " + std::to_string(size) + ", node " + node_name + " (" +
                     std::to_string(layout.local_rank + 1) + " of " + std::to_string(layout.local_size) +
                     " there), host " + host_name + ", pid " + std::to_string(::getpid()) + ", CPUs " +
                     format_cpu_ranges(allowed_cpus()) + ", device " + gpu.describe();
  if (gpu_info) text += " (" + gpu_info->name + ")";
  if (slurm.job_id) {
    text += ", Slurm job " + *slurm.job_id;
    if (slurm.step_id) text += " step " + *slurm.step_id;
  }
  return text;
}

io::PatternContext RankContext::pattern_context() const {
  io::PatternContext p;
  if (slurm.job_id) p.job_id = *slurm.job_id;
  p.step_id = slurm.step_id;
  p.job_name = slurm.job_name.value_or("");
  p.user = slurm.user.value_or("");
  p.node_name = node_name;
  p.array_job_id = slurm.array_job_id;
  p.array_task_id = slurm.array_task_id;
  p.task_id = rank;
  p.node_id = layout.node_index;
  return p;
}

}  // namespace slurmlab::cluster
