#pragma once
// Checks of a job's layout with hints, in the spirit of PyTorch Lightning's Slurm
// checks: each finding is one sentence plus a HINT that says what to change.
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/cluster/slurm_environment.hpp"

namespace slurmlab::cluster {

enum class Severity { note, warning, error };

struct Diagnostic {
  Severity severity = Severity::note;
  std::string code;     // stable identifier, e.g. "ntasks-per-node-missing"
  std::string message;  // one sentence
  std::string hint;     // what to change
  std::string text() const;  // "warning: <message> HINT: <hint>"
};

// One task's view of Slurm against the MPI world it runs in (rank, size).
std::vector<Diagnostic> check_task_environment(const SlurmEnvironment& slurm, int world_rank, int world_size);

// What each task reports about its placement, gathered on rank 0.
struct TaskPlacement {
  int rank = 0;
  std::string node;
  std::optional<int> gpus_on_node;  // SLURM_GPUS_ON_NODE as the task saw it
  std::string gpu_identity;         // UUID when a GPU answered, else the mask entry; empty on CPU
  bool sharing_allowed = false;
  // Why the task computes on the CPU; nullopt: it computes on its GPU.
  std::optional<std::string> cpu_reason;
};

// Checks across tasks: more tasks on a node than GPUs allocated there, two tasks of one node
// bound to the same GPU (errors), and some tasks on GPUs while others compute on the CPU (the
// warning "mixed-devices"; an error for programs that train across ranks, check_job_layout's
// strict). `share_option`: the program has --share-gpus, and the hints offer it.
std::vector<Diagnostic> check_placement(const std::vector<TaskPlacement>& tasks, bool share_option = true);

// Drops repeats (same code and message), keeping the first; tasks report the same
// job-level finding once each.
std::vector<Diagnostic> unique_diagnostics(std::vector<Diagnostic> diagnostics);

const char* to_string(Severity severity);

}  // namespace slurmlab::cluster
