#pragma once
// ProgramRun: what every program does between parsing its options and its own work (the
// idea of nccl-tests' common.cu): rank 0 expands --output-dir's srun-style patterns and
// every rank uses that one directory; each rank makes sure it exists and opens its own log
// (--log-pattern), whose first line says where the rank runs. Also the metrics.h5 root
// attributes every program writes, so a reader of any metrics.h5 finds which program, job
// and seed made it under the same names.
#include <cstdint>
#include <filesystem>
#include <string>

#include "slurmlab/cli/options.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/io/rank_log.hpp"

namespace slurmlab::io {
class MetricsWriter;
}

namespace slurmlab::cli {

// The root attributes common to every program's metrics.h5.
struct RunAttributes {
  std::string program;  // "env-dump", ...
  std::string job_id;   // SLURM_JOB_ID, "" outside Slurm
  std::uint64_t seed = 0;
  int world_size = 1;  // MPI ranks
};
// Writes `program`, `job_id` (strings), `seed` and `world_size` (int64) on the file's root.
void write_run_attributes(io::MetricsWriter& writer, const RunAttributes& run);

class ProgramRun {
 public:
  // Collective: a bad --output-dir or --log-pattern on any rank ends every rank with one
  // message (UsageError: exit status 2). The log's first line is
  // "<program>: <context.describe()>".
  static ProgramRun start(const cluster::MpiSession& session, const CommonOptions& options,
                          const cluster::RankContext& context);

  // The expanded --output-dir, the same on every rank.
  const std::filesystem::path& output_dir() const { return output_dir_; }
  // This rank's own log (line() never throws, so programs may write from anywhere).
  io::RankLog& log() { return log_; }
  const RunAttributes& attributes() const { return attributes_; }

 private:
  std::filesystem::path output_dir_;
  io::RankLog log_;
  RunAttributes attributes_;
};

}  // namespace slurmlab::cli
