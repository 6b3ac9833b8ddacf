#include "slurmlab/cluster/slurm_environment.hpp"

#include <charconv>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/hostlist.hpp"

namespace slurmlab::cluster {
namespace {

[[noreturn]] void malformed(const std::string& variable, const std::string& value, const std::string& expected) {
  throw UsageError(variable + "='" + value + "' is not " + expected +
                   "; the environment was altered after Slurm set it: unset it or fix the job script.");
}

int parse_int(const std::string& value, const std::string& variable) {
  int result = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (value.empty() || error != std::errc{} || end != value.data() + value.size())
    malformed(variable, value, "a whole number");
  return result;
}

std::optional<int> optional_int(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (auto value = env.get(name)) return parse_int(*value, name);
  return std::nullopt;
}

std::optional<std::string> optional_string(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (auto value = env.get(name)) return value;
  return std::nullopt;
}

}  // namespace

std::vector<int> parse_tasks_per_node(const std::string& value, const std::string& variable) {
  std::vector<int> counts;
  std::size_t start = 0;
  while (start < value.size()) {
    auto comma = value.find(',', start);
    std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int repeat = 1;
    if (auto paren = item.find("(x"); paren != std::string::npos) {
      if (item.back() != ')') malformed(variable, value, "a task count list like 2(x3),1");
      repeat = parse_int(item.substr(paren + 2, item.size() - paren - 3), variable);
      item = item.substr(0, paren);
    }
    int count = parse_int(item, variable);
    counts.insert(counts.end(), static_cast<std::size_t>(repeat), count);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (counts.empty()) malformed(variable, value, "a task count list like 2(x3),1");
  return counts;
}

std::vector<std::string> parse_device_list(const std::string& value) {
  std::vector<std::string> devices;
  if (value.empty() || value == "NoDevFiles") return devices;
  std::size_t start = 0;
  while (true) {
    auto comma = value.find(',', start);
    auto item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) devices.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return devices;
}

SlurmEnvironment SlurmEnvironment::from(const Environment& env) {
  SlurmEnvironment s;
  s.job_id = optional_string(env, {"SLURM_JOB_ID", "SLURM_JOBID"});
  s.in_job = s.job_id.has_value();
  s.step_id = optional_string(env, {"SLURM_STEP_ID", "SLURM_STEPID"});
  s.job_name = optional_string(env, {"SLURM_JOB_NAME"});
  s.array_job_id = optional_string(env, {"SLURM_ARRAY_JOB_ID"});
  s.array_task_id = optional_string(env, {"SLURM_ARRAY_TASK_ID"});
  s.user = optional_string(env, {"SLURM_JOB_USER", "USER", "LOGNAME"});
  s.partition = optional_string(env, {"SLURM_JOB_PARTITION"});
  s.node_name = optional_string(env, {"SLURMD_NODENAME"});
  s.submit_dir = optional_string(env, {"SLURM_SUBMIT_DIR"});

  s.procid = optional_int(env, {"SLURM_PROCID"});
  s.localid = optional_int(env, {"SLURM_LOCALID"});
  s.nodeid = optional_int(env, {"SLURM_NODEID"});
  s.ntasks = optional_int(env, {"SLURM_NTASKS", "SLURM_NPROCS"});
  s.nnodes = optional_int(env, {"SLURM_NNODES", "SLURM_JOB_NUM_NODES"});
  s.ntasks_per_node = optional_int(env, {"SLURM_NTASKS_PER_NODE"});
  s.cpus_per_task = optional_int(env, {"SLURM_CPUS_PER_TASK"});
  for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    if (auto value = env.get(name)) {
      s.tasks_per_node = parse_tasks_per_node(*value, name);
      break;
    }
  }

  s.nodelist = optional_string(env, {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"});
  if (s.nodelist) s.nodes = expand_hostlist(*s.nodelist);

  if (auto cvd = env.get("CUDA_VISIBLE_DEVICES")) s.cuda_visible_devices = parse_device_list(*cvd);
  s.step_gpus = optional_string(env, {"SLURM_STEP_GPUS"});
  s.job_gpus = optional_string(env, {"SLURM_JOB_GPUS"});
  s.gpus_on_node = optional_int(env, {"SLURM_GPUS_ON_NODE"});
  s.gpus_per_task = optional_string(env, {"SLURM_GPUS_PER_TASK"});
  s.gpus_per_node = optional_string(env, {"SLURM_GPUS_PER_NODE"});
  s.gpus = optional_string(env, {"SLURM_GPUS"});

  // sbatch marks the batch script with ENVIRONMENT=BATCH and srun steps inside inherit it.
  if (s.in_job) s.job_kind = env.get("ENVIRONMENT") == std::optional<std::string>("BATCH") ? JobKind::batch : JobKind::interactive;
  // The batch script itself has no step id of its own in its environment (or "batch");
  // tasks started by srun carry a numeric step id and a rank.
  // Open MPI 4 (ORTE) and 5 (PRRTE) mark the processes their mpirun starts; srun's direct
  // launch through PMIx does not.
  s.launched_by_mpirun = env.has("OMPI_MCA_orte_hnp_uri") || env.has("PRTE_LAUNCHED");
  s.launched_by_srun = s.in_job && s.step_id && s.procid && !s.launched_by_mpirun && *s.step_id != "batch" &&
                       *s.step_id != "extern";
  return s;
}

std::optional<int> SlurmEnvironment::tasks_on_this_node() const {
  if (!nodeid || *nodeid < 0 || static_cast<std::size_t>(*nodeid) >= tasks_per_node.size()) return std::nullopt;
  return tasks_per_node[static_cast<std::size_t>(*nodeid)];
}

bool SlurmEnvironment::gpus_requested() const {
  return gpus_on_node.value_or(0) > 0 || gpus_per_task || gpus_per_node || gpus || job_gpus || step_gpus;
}

const char* to_string(JobKind kind) {
  switch (kind) {
    case JobKind::none: return "none";
    case JobKind::batch: return "batch";
    case JobKind::interactive: return "interactive";
  }
  return "unknown";
}

}  // namespace slurmlab::cluster
