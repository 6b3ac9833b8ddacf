#include "slurmlab/cli/program_run.hpp"

#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/metrics_writer.hpp"
#include "slurmlab/io/output_pattern.hpp"

namespace slurmlab::cli {

void write_run_attributes(io::MetricsWriter& writer, const RunAttributes& run) {
  writer.set_attribute("", "program", run.program);
  writer.set_attribute("", "job_id", run.job_id);
  writer.set_attribute("", "seed", static_cast<std::int64_t>(run.seed));
  writer.set_attribute("", "world_size", static_cast<std::int64_t>(run.world_size));
}

ProgramRun ProgramRun::start(const cluster::MpiSession& session, const CommonOptions& options,
                             const cluster::RankContext& context) {
  ProgramRun run;
  run.attributes_ = {session.program(), context.slurm.job_id.value_or(""), options.seed, session.size()};
  session.run_collectively([&] {
    // Rank 0's expansion for everyone: a pattern with %t or %N would otherwise scatter the
    // job's files over one directory per rank.
    run.output_dir_ = session.broadcast(io::expand_output_pattern(options.output_dir, context.pattern_context()));
    // Every rank, not rank 0 alone: where --output-dir is on a node-local disk, each node
    // needs its own (on a shared one this is a no-op after the first).
    io::make_output_directory(run.output_dir_);
    run.log_ = io::RankLog::open(run.output_dir_, options.log_pattern, context.pattern_context(), session.size());
    run.log_.line(session.program() + ": " + context.describe());
  });
  return run;
}

}  // namespace slurmlab::cli
