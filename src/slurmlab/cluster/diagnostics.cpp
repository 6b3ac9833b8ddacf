#include "slurmlab/cluster/diagnostics.hpp"

#include <algorithm>
#include <map>

namespace slurmlab::cluster {
namespace {

std::string join_ints(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string text;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) text += i + 1 == ranks.size() ? " and " : ", ";
    text += std::to_string(ranks[i]);
  }
  return text;
}

}  // namespace

std::string Diagnostic::text() const {
  return std::string(to_string(severity)) + ": " + message + (hint.empty() ? "" : " HINT: " + hint);
}

std::vector<Diagnostic> check_task_environment(const SlurmEnvironment& slurm, int world_rank, int world_size) {
  std::vector<Diagnostic> found;
  if (!slurm.in_job) return found;
  const std::string job = "job " + slurm.job_id.value_or("?");

  if (!slurm.launched_by_srun) {
    found.push_back({Severity::warning, "not-launched-by-srun",
                     slurm.launched_by_mpirun || world_size > 1
                         ? "The program runs inside Slurm " + job + " but was started by " +
                               (slurm.launched_by_mpirun ? "mpirun" : "another launcher") +
                               ", not by srun, so Slurm's task placement and GPU binding do not apply."
                                    : "The program runs inside Slurm " + job +
                                          " but not as an srun step, so it is one task on the first node whatever "
                                          "the job asked for.",
                     "start it with `srun <program>` in the job script (srun uses the job's --nodes, "
                     "--ntasks-per-node and --gpus-per-task)."});
  } else if (slurm.ntasks && *slurm.ntasks != world_size) {
    found.push_back({Severity::error, "mpi-world-mismatch",
                     "Slurm started " + std::to_string(*slurm.ntasks) + " tasks but the MPI world has " +
                         std::to_string(world_size) + " rank(s), so the tasks did not join one MPI job.",
                     "launch with `srun --mpi=pmix` (Debian's Open MPI direct-launches only through PMIx; see "
                     "`srun --mpi=list`)."});
  } else if (slurm.procid && *slurm.procid != world_rank) {
    found.push_back({Severity::warning, "rank-mismatch",
                     "SLURM_PROCID=" + std::to_string(*slurm.procid) + " differs from MPI rank " +
                         std::to_string(world_rank) + ", so per-rank file names and logs disagree.",
                     "let srun start the program directly rather than through a wrapper that re-launches it."});
  }

  const bool multi_node = slurm.nnodes.value_or(1) > 1;
  if (multi_node && slurm.gpus_requested() && !slurm.ntasks_per_node) {
    std::string layout = slurm.tasks_per_node.empty() ? "" : " (tasks per node now: " + join_ints(slurm.tasks_per_node) + ")";
    found.push_back({Severity::warning, "ntasks-per-node-missing",
                     "This " + std::to_string(*slurm.nnodes) + "-node GPU " + job +
                         " was given --ntasks without --ntasks-per-node, so SLURM_NTASKS_PER_NODE is unset and "
                         "Slurm may place tasks unevenly across nodes" + layout + ".",
                     "ask for --nodes=" + std::to_string(*slurm.nnodes) +
                         " --ntasks-per-node=<GPUs per node> instead of --ntasks=" +
                         std::to_string(slurm.ntasks.value_or(0)) + "."});
  }
  if (!slurm.tasks_per_node.empty() &&
      std::adjacent_find(slurm.tasks_per_node.begin(), slurm.tasks_per_node.end(), std::not_equal_to<>()) !=
          slurm.tasks_per_node.end()) {
    found.push_back({Severity::note, "uneven-tasks-per-node",
                     "Tasks are spread unevenly over the nodes (" + join_ints(slurm.tasks_per_node) +
                         "), so nodes do different amounts of work.",
                     "use --ntasks-per-node so every node runs the same number of tasks."});
  }
  return found;
}

std::vector<Diagnostic> check_placement(const std::vector<TaskPlacement>& tasks, bool share_option) {
  const std::string share = share_option ? ", or pass --share-gpus if sharing is intended." : ".";
  std::vector<Diagnostic> found;
  std::map<std::string, std::vector<const TaskPlacement*>> by_node;
  for (const auto& t : tasks) by_node[t.node].push_back(&t);

  for (const auto& [node, members] : by_node) {
    bool sharing = std::any_of(members.begin(), members.end(), [](auto* t) { return t->sharing_allowed; });
    std::optional<int> gpus;
    for (auto* t : members)
      if (t->gpus_on_node) gpus = std::max(gpus.value_or(0), *t->gpus_on_node);
    const int count = static_cast<int>(members.size());
    if (gpus && *gpus > 0 && count > *gpus && !sharing) {
      found.push_back({Severity::error, "tasks-exceed-gpus",
                       "Node " + node + " runs " + std::to_string(count) + " tasks but Slurm allocated only " +
                           std::to_string(*gpus) + " GPU(s) there (SLURM_GPUS_ON_NODE=" + std::to_string(*gpus) + ").",
                       "use --ntasks-per-node=" + std::to_string(*gpus) +
                           " (one task per GPU) or ask for more GPUs per node" + share});
    }
    std::map<std::string, std::vector<int>> by_gpu;
    for (auto* t : members)
      if (!t->gpu_identity.empty()) by_gpu[t->gpu_identity].push_back(t->rank);
    for (auto& [gpu, ranks] : by_gpu) {
      if (ranks.size() < 2 || sharing) continue;
      std::sort(ranks.begin(), ranks.end());
      found.push_back({Severity::error, "gpu-shared",
                       "Ranks " + rank_list(ranks) + " on node " + node + " are bound to the same GPU (" + gpu + ").",
                       "use --gpus-per-task=1 or --gpu-bind=per_task:1 so each task gets its own GPU" + share});
    }
  }
  std::vector<int> on_gpu, on_cpu;
  for (const auto& t : tasks) (t.cpu_reason ? on_cpu : on_gpu).push_back(t.rank);
  if (!on_gpu.empty() && !on_cpu.empty()) {
    std::sort(on_gpu.begin(), on_gpu.end());
    std::sort(on_cpu.begin(), on_cpu.end());
    const auto first_cpu = std::find_if(tasks.begin(), tasks.end(), [&](const auto& t) { return t.rank == on_cpu.front(); });
    found.push_back({Severity::warning, "mixed-devices",
                     std::string(on_gpu.size() == 1 ? "Rank " : "Ranks ") + rank_list(on_gpu) + " compute on GPUs but " +
                         (on_cpu.size() == 1 ? "rank " : "ranks ") + rank_list(on_cpu) + " on the CPU (rank " +
                         std::to_string(on_cpu.front()) + ": " + *first_cpu->cpu_reason + ").",
                     "give every task a GPU (--gpus-per-task=1, on GPU nodes only), or pass --device cpu so that all "
                     "ranks compute alike"});
  }
  return found;
}

std::vector<Diagnostic> unique_diagnostics(std::vector<Diagnostic> diagnostics) {
  std::vector<Diagnostic> unique;
  for (auto& d : diagnostics) {
    bool seen = std::any_of(unique.begin(), unique.end(),
                            [&](const Diagnostic& u) { return u.code == d.code && u.message == d.message; });
    if (!seen) unique.push_back(std::move(d));
  }
  return unique;
}

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::note: return "note";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "note";
}

}  // namespace slurmlab::cluster
