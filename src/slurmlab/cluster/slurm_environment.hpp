#pragma once
// A typed view of what Slurm tells a task through its environment. Every value that
// Slurm may leave unset is optional: absence is reported, never guessed.
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/cluster/environment.hpp"

namespace slurmlab::cluster {

enum class JobKind {
  none,         // not inside a Slurm job
  batch,        // sbatch (ENVIRONMENT=BATCH, inherited by srun steps inside the script)
  interactive,  // salloc shell or a stand-alone srun
};

struct SlurmEnvironment {
  bool in_job = false;  // SLURM_JOB_ID is set
  JobKind job_kind = JobKind::none;
  bool launched_by_srun = false;  // this process is a task of an srun step (SLURM_STEP_ID + SLURM_PROCID)
  // Started by mpirun/mpiexec (whose daemons srun starts inside an allocation, so the
  // ranks inherit the daemons' SLURM_STEP_ID and a per-node SLURM_PROCID).
  bool launched_by_mpirun = false;

  std::optional<std::string> job_id;         // SLURM_JOB_ID
  std::optional<std::string> step_id;        // SLURM_STEP_ID (or SLURM_STEPID)
  std::optional<std::string> job_name;       // SLURM_JOB_NAME
  std::optional<std::string> array_job_id;   // SLURM_ARRAY_JOB_ID
  std::optional<std::string> array_task_id;  // SLURM_ARRAY_TASK_ID
  std::optional<std::string> user;           // SLURM_JOB_USER, else USER
  std::optional<std::string> partition;      // SLURM_JOB_PARTITION
  std::optional<std::string> node_name;      // SLURMD_NODENAME
  std::optional<std::string> submit_dir;     // SLURM_SUBMIT_DIR

  std::optional<int> procid;           // SLURM_PROCID: the task's rank in the step
  std::optional<int> localid;          // SLURM_LOCALID: the task's rank on its node
  std::optional<int> nodeid;           // SLURM_NODEID: the node's index in the step
  std::optional<int> ntasks;           // SLURM_NTASKS (or SLURM_NPROCS)
  std::optional<int> nnodes;           // SLURM_NNODES (or SLURM_JOB_NUM_NODES)
  std::optional<int> ntasks_per_node;  // SLURM_NTASKS_PER_NODE: only set when --ntasks-per-node was given
  std::optional<int> cpus_per_task;    // SLURM_CPUS_PER_TASK: only set when --cpus-per-task was given
  std::vector<int> tasks_per_node;     // SLURM_STEP_TASKS_PER_NODE or SLURM_TASKS_PER_NODE, "2(x3),1" expanded

  std::optional<std::string> nodelist;  // SLURM_STEP_NODELIST, else SLURM_JOB_NODELIST (the expression)
  std::vector<std::string> nodes;       // nodelist expanded

  // GPUs. cuda_visible_devices is nullopt when unset and an empty list when set to ""
  // or to Slurm's "NoDevFiles".
  std::optional<std::vector<std::string>> cuda_visible_devices;
  std::optional<std::string> step_gpus;      // SLURM_STEP_GPUS: physical indices of the step on this node
  std::optional<std::string> job_gpus;       // SLURM_JOB_GPUS: physical indices of the job on this node
  std::optional<int> gpus_on_node;           // SLURM_GPUS_ON_NODE
  std::optional<std::string> gpus_per_task;  // SLURM_GPUS_PER_TASK
  std::optional<std::string> gpus_per_node;  // SLURM_GPUS_PER_NODE
  std::optional<std::string> gpus;           // SLURM_GPUS

  // Reads the view from an environment. Throws UsageError naming the variable when a
  // value Slurm always writes as a number or hostlist is malformed.
  static SlurmEnvironment from(const Environment& env);

  // Number of tasks of this step on this node (tasks_per_node at nodeid), when known.
  std::optional<int> tasks_on_this_node() const;
  // The job asked Slurm for GPUs (any GPU request variable or a GPU list is present).
  bool gpus_requested() const;
};

// "2(x3),1" -> {2,2,2,1}. Throws UsageError naming `variable` on bad syntax.
std::vector<int> parse_tasks_per_node(const std::string& value, const std::string& variable);

// CUDA_VISIBLE_DEVICES as a list; "NoDevFiles" (Slurm: GRES configured, none allocated) -> empty.
std::vector<std::string> parse_device_list(const std::string& value);

const char* to_string(JobKind kind);

}  // namespace slurmlab::cluster
