// env-dump: the cluster probe. Every rank writes its whole environment to its own file
// and reports node, CPU affinity and GPU; rank 0 prints the Slurm job summary, a
// rank-ordered table and the diagnostics of a misconfigured job, and writes the same
// to env-dump.json and metrics.h5.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "report.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/cli/options.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/output_pattern.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

int main(int argc, char** argv) {
  return cluster::run_mpi_program(argc, argv, "env-dump", [](cluster::MpiSession& session, int count, char** args) {
    std::string env_file_pattern = "env-%j-%t.txt";
    bool share_gpus = false;
    bool strict = false;
    cli::OptionParser parser("env-dump",
                             "Reports every rank's Slurm environment, node, CPU affinity and GPU, and diagnoses "
                             "misconfigured jobs.\nRun it as srun env-dump (see jobs/env-dump.sbatch).",
                             "env-dump-%j");
    parser.add("env-file-pattern", env_file_pattern,
               "per-rank environment file, srun-style pattern (%j job, %t rank, %N node, %3t -> 007)")
        .add_flag("share-gpus", share_gpus, "allow several tasks on one GPU (otherwise reported as an error)")
        .add_flag("strict", strict, "exit with status 1 when a diagnostic of level error is found");

    cli::parse_on_all_ranks(session, parser, count, args);
    const cli::Console console(session.is_root());

    const auto env = cluster::Environment::from_process();
    const auto preference = cluster::parse_device_preference(parser.common().device);
    const auto context = cluster::RankContext::establish(session, env, preference, share_gpus,
                                                         cluster::RankContext::BindingErrors::report);

    auto program = cli::ProgramRun::start(session, parser.common(), context);
    const auto& output_dir = program.output_dir();
    auto& log = program.log();
    std::string env_file;  // this rank's environment, in the job's output dir
    session.run_collectively([&] {
      env_file = io::per_rank_file_name("--env-file-pattern", env_file_pattern, context.pattern_context(),
                                        session.size(), "env-%j-%t.txt");
      io::write_file_atomically(output_dir / env_file, env_dump::environment_file_text(env));
      log.line("wrote " + std::to_string(env.variables().size()) + " environment variables to " + env_file);
    });

    const auto mine = env_dump::make_rank_report(context, env, (output_dir / env_file).string(), share_gpus);
    const auto gathered = session.gather(nlohmann::json(mine).dump());

    int status = 0;
    session.run_collectively([&] {
      if (!session.is_root()) return;
      std::vector<env_dump::RankReport> reports;
      for (const auto& text : gathered) reports.push_back(nlohmann::json::parse(text).get<env_dump::RankReport>());
      const auto diagnostics = env_dump::collect_diagnostics(reports);

      std::string summary = env_dump::format_job_summary(context.slurm, context.size, context.layout.node_count,
                                                         context.gpu_runtime) +
                            "\n" + env_dump::format_rank_table(reports) + "\n" +
                            env_dump::format_diagnostics(diagnostics);
      console.line(summary);
      io::write_file_atomically(output_dir / "summary.txt", summary);
      io::write_file_atomically(output_dir / "env-dump.json",
                                env_dump::make_json_report(context.slurm, context.size, reports, diagnostics).dump(2) + "\n");
      env_dump::write_hdf5_report((output_dir / "metrics.h5").string(), program.attributes(), context.slurm, reports,
                                  diagnostics);
      console.line("Results: " + fs::absolute(output_dir).string() + " (" + std::to_string(reports.size()) +
                   " env files, summary.txt, env-dump.json, metrics.h5)");
      bool any_error = std::any_of(diagnostics.begin(), diagnostics.end(),
                                   [](const auto& d) { return d.severity == cluster::Severity::error; });
      if (strict && any_error) status = 1;
      log.line("wrote summary.txt, env-dump.json and metrics.h5 for " + std::to_string(reports.size()) + " ranks, " +
               std::to_string(diagnostics.size()) + " diagnostic(s)");
    });
    MPI_Bcast(&status, 1, MPI_INT, 0, session.comm());
    return status;
  });
}
