#pragma once
// env-dump's report: what each rank says about itself, and how rank 0 turns the
// gathered reports into the table, the job summary and the diagnostics.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/cluster/diagnostics.hpp"
#include "slurmlab/cluster/environment.hpp"
#include "slurmlab/cluster/rank_context.hpp"

namespace slurmlab::cluster {
// JSON for diagnostics, beside their type's namespace so nlohmann finds them by ADL.
void to_json(nlohmann::json& j, const Diagnostic& d);
void from_json(const nlohmann::json& j, Diagnostic& d);
}  // namespace slurmlab::cluster

namespace slurmlab::env_dump {

struct RankReport {
  int rank = 0;
  std::string node;  // SLURMD_NODENAME, else host name
  int node_index = 0;
  int local_rank = 0;
  std::optional<int> slurm_procid;
  std::optional<int> slurm_localid;
  std::optional<int> slurm_nodeid;
  std::string host;
  long pid = 0;
  std::string cpu_affinity;  // "0-3,8"
  int current_cpu = -1;
  std::optional<std::string> cuda_visible_devices;  // raw value; nullopt when unset
  std::string device;                               // binding.describe()
  std::string binding_reason;
  std::string gpu_identity;  // UUID if a GPU answered, else the mask entry; empty on CPU
  std::optional<int> gpus_on_node;
  bool sharing_allowed = false;
  std::string gpu_name, gpu_uuid, gpu_pci_bus;
  std::int64_t gpu_memory_bytes = 0;
  std::string env_file;
  std::vector<cluster::Diagnostic> diagnostics;  // this task's own findings
};

void to_json(nlohmann::json& j, const RankReport& r);
void from_json(const nlohmann::json& j, RankReport& r);

RankReport make_rank_report(const cluster::RankContext& context, const cluster::Environment& env,
                            const std::string& env_file, bool sharing_allowed);

// Every variable as NAME=value, sorted by name, one per line (newlines in values are
// written as \n so each variable stays on one line).
std::string environment_file_text(const cluster::Environment& env);

// Task findings of every rank plus the cross-rank placement checks, without repeats.
std::vector<cluster::Diagnostic> collect_diagnostics(const std::vector<RankReport>& reports);

// One sentence on SLURM_NTASKS_PER_NODE: its value, or why it is absent.
std::string ntasks_per_node_explanation(const cluster::SlurmEnvironment& slurm);

// The Slurm job as rank 0 sees it, a few aligned lines.
std::string format_job_summary(const cluster::SlurmEnvironment& slurm, int world_size, int node_count,
                               const cluster::GpuRuntimeStatus& runtime);

// The rank-ordered table (nccl-tests style); GPU columns appear when any GPU answered.
std::string format_rank_table(const std::vector<RankReport>& reports);

std::string format_diagnostics(const std::vector<cluster::Diagnostic>& diagnostics);

nlohmann::json make_json_report(const cluster::SlurmEnvironment& slurm, int world_size,
                                const std::vector<RankReport>& reports,
                                const std::vector<cluster::Diagnostic>& diagnostics);

// metrics.h5: the table as one column per field under /ranks, the diagnostics under
// /diagnostics, and the run (cli::write_run_attributes) and the Slurm job as attributes of
// the root.
void write_hdf5_report(const std::string& path, const cli::RunAttributes& attributes,
                       const cluster::SlurmEnvironment& slurm, const std::vector<RankReport>& reports,
                       const std::vector<cluster::Diagnostic>& diagnostics);

}  // namespace slurmlab::env_dump
