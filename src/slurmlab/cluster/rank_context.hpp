#pragma once
// Everything a rank needs to know about where it runs: MPI rank, its node and local
// rank there, Slurm's view, and its GPU. Programs read these from here, never from
// their own getenv calls.
#include <optional>
#include <string>

#include "slurmlab/cluster/diagnostics.hpp"
#include "slurmlab/cluster/environment.hpp"
#include "slurmlab/cluster/gpu_binding.hpp"
#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/cluster/slurm_environment.hpp"
#include "slurmlab/io/output_pattern.hpp"

namespace slurmlab::cluster {

// Local ranks from node names: rank r's local rank is the number of lower ranks on the
// same node, and nodes are numbered in order of first appearance. Works under srun,
// mpirun and alone, and on the local Slurm where every "node" shares one host.
struct NodeLayout {
  int local_rank = 0;
  int local_size = 1;
  int node_index = 0;
  int node_count = 1;
};
NodeLayout layout_from_node_names(const std::vector<std::string>& node_of_rank, int rank);

struct RankContext {
  int rank = 0;
  int size = 1;
  NodeLayout layout;
  std::string node_name;  // SLURMD_NODENAME, else the host name
  std::string host_name;  // gethostname
  SlurmEnvironment slurm;
  GpuRuntimeStatus gpu_runtime;
  GpuBinding gpu;
  std::optional<GpuDeviceInfo> gpu_info;    // when a GPU answered
  std::optional<Diagnostic> binding_error;  // set only with BindingErrors::report

  enum class BindingErrors {
    fail,    // programs that compute: every rank ends with the message (exit 2)
    report,  // env-dump: record it and continue on the CPU so the probe can report it
  };

  // Collective. Reads Slurm's view, lays out the node, binds and selects the GPU.
  static RankContext establish(const MpiSession& session, const Environment& env, DevicePreference preference,
                               bool allow_sharing, BindingErrors on_binding_error = BindingErrors::fail);

  io::PatternContext pattern_context() const;
  // One line for this rank's log: "rank 3 of 8, node n2 (1 of 2 there), host vm, pid 4242,
  // CPUs 0-3, device cuda:1 (NVIDIA H200)", plus the Slurm job and step when there is one.
  std::string describe() const;
};

// Collective: every rank's check_task_environment plus check_placement over all ranks
// (gathered), unique and most severe first, the same list on every rank. For programs that
// train across ranks, `strict` also makes an error of a job that asked Slurm for more tasks
// than run in the MPI world outside srun (`sbatch` without `srun`: Lightning #19817 hangs
// there; here it is refused with the fix).
std::vector<Diagnostic> check_job_layout(const MpiSession& session, const RankContext& context, bool sharing_allowed,
                                         bool strict);

// Collective: throws UsageError (one sentence, its HINT, every rank alike) when check_job_layout
// finds an error; returns the warnings and notes for the log.
std::vector<Diagnostic> require_sound_job_layout(const MpiSession& session, const RankContext& context,
                                                 bool sharing_allowed);

}  // namespace slurmlab::cluster
