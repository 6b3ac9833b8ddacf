// logdet-histogram: log-determinants of LKJ(eta) correlation matrices, d x d, sampled by
// the onion method and really factored (C = L L^T by SYRK, then POTRF), on the rank's GPU
// (cuBLAS + cuSOLVER) or its CPU (OpenBLAS). Samples are split across ranks by index and
// sample k depends only on (seed, k), so the histogram does not depend on the split.
// Rank 0 gathers every log det and writes metrics.h5, histogram.png and summary.txt.
#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "logdet_report.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/cli/options.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/cli/progress.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<std::int64_t>() {
  return MPI_INT64_T;
}

// Concatenates every rank's column on rank 0, in rank order (empty elsewhere).
template <class T>
std::vector<T> gather_column(const cluster::MpiSession& session, const std::vector<T>& mine) {
  int count = static_cast<int>(mine.size());
  std::vector<int> counts(session.is_root() ? session.size() : 0), offsets(counts.size());
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, session.comm());
  std::vector<T> all;
  if (session.is_root()) {
    int total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      offsets[r] = total;
      total += counts[r];
    }
    all.resize(static_cast<std::size_t>(total));
  }
  MPI_Gatherv(mine.data(), count, mpi_type<T>(), all.data(), counts.data(), offsets.data(), mpi_type<T>(), 0,
              session.comm());
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  return cluster::run_mpi_program(argc, argv, "logdet-histogram", [](cluster::MpiSession& session, int count,
                                                                       char** args) {
    logdet::ProgramOptions options;
    cli::OptionParser parser(
        "logdet-histogram",
        "Histogram of log det C for C ~ LKJ(eta) (d x d correlation matrices), checked against the exact theory.\n"
        "Each rank computes its share of the samples on its GPU (cuBLAS + cuSOLVER) or CPU (OpenBLAS).\n"
        "Run it as srun logdet-histogram (see jobs/logdet-histogram.sbatch).",
        "logdet-%j");
    parser.add("dim", options.dim, "matrix dimension d (>= 2)")
        .add("eta", options.eta, "LKJ concentration eta (> 0; 1 = uniform over correlation matrices)")
        .add("samples", options.samples, "number of matrices, split across the ranks by sample index")
        .add("bins", options.bins, "histogram bins: auto (Freedman-Diaconis, at most 1000) or a count")
        .add("range", options.range, "histogram range: auto (the data's) or LO,HI")
        .add_flag("fp32", options.fp32, "single precision SYRK + POTRF (error vs FP64 reported)")
        .add("threads", options.threads, "OpenBLAS threads per rank on the CPU path (0: OpenBLAS's default)");

    logdet::RunPlan plan{};
    cli::parse_on_all_ranks(session, parser, count, args, [&] { plan = logdet::check_options(options); });
    const cli::Console console(session.is_root());

    const auto env = cluster::Environment::from_process();
    const auto preference = cluster::parse_device_preference(parser.common().device);
    const auto context = cluster::RankContext::establish(session, env, preference, /*allow_sharing=*/false);

    auto program = cli::ProgramRun::start(session, parser.common(), context);
    const auto& output_dir = program.output_dir();
    auto& log = program.log();

    linalg::LogdetConfig config;
    config.dim = plan.dim;
    config.eta = plan.eta;
    config.seed = parser.common().seed;
    config.precision = plan.precision;
    config.cpu_threads = plan.threads;
    // CPU ranks of a node share its memory; each GPU rank has its own device.
    config.ranks_sharing_memory = context.gpu.uses_gpu ? 1 : context.layout.local_size;
    std::unique_ptr<linalg::LogdetEngine> engine;
    session.run_collectively([&] {
      engine = context.gpu.uses_gpu ? linalg::make_cuda_logdet_engine(config, context.gpu.device)
                                    : linalg::make_cpu_logdet_engine(config);
    });

    const auto block = logdet::sample_block(plan.samples, session.rank(), session.size());
    const auto mine = block.end - block.first;
    log.line("engine " + engine->describe() + ", " + std::to_string(engine->buffer_bytes() >> 10) +
             " KiB of matrix buffers; samples " + std::to_string(block.first) + ".." + std::to_string(block.end - 1) +
             " of " + std::to_string(plan.samples));
    console.line("logdet-histogram: " + std::to_string(plan.samples) + " samples of dimension " +
                 std::to_string(plan.dim) + " on " + std::to_string(session.size()) + " rank(s); rank 0: " +
                 engine->describe() + ", samples " + std::to_string(block.first) + ".." +
                 std::to_string(block.end - 1));

    logdet::RunResults local;
    // Rank 0 speaks for the job: a bar on a terminal, one line per 10 s in a batch log.
    cli::Progress::Options report;
    report.label = "rank 0";
    report.unit = "matrix";
    report.enabled = session.is_root();
    cli::Progress progress(mine, report);
    session.barrier();
    const double loop_start = MPI_Wtime();
    double last_logged = loop_start;
    for (std::int64_t k = block.first; k < block.end; ++k) {
      const auto r = engine->compute(k);
      local.index.push_back(r.index);
      local.log_det.push_back(r.log_det);
      local.log_det_factor.push_back(r.log_det_factor);
      local.positive_definite.push_back(r.positive_definite ? 1 : 0);
      local.rank.push_back(session.rank());
      local.sample_seconds.push_back(r.sample_seconds);
      local.determinant_seconds.push_back(r.determinant_seconds);
      char last[48];  // no allocation per sample: progress prints only once per interval
      std::snprintf(last, sizeof last, "last log det %.6g", r.log_det);
      progress.advance(1, last);
      // The rank log: every sample that takes a second or more (d = 5000 on a CPU), else a
      // line per 10 s, and always the last one.
      const double now = MPI_Wtime();
      if (r.sample_seconds + r.determinant_seconds >= 1.0 || now - last_logged >= 10.0 || k + 1 == block.end) {
        last_logged = now;
        std::ostringstream line;
        line.precision(6);
        line << "sample " << k << ": log det " << r.log_det << " (sampler " << r.log_det_factor << ")"
             << (r.positive_definite ? "" : ", not positive definite") << ", sample " << r.sample_seconds
             << " s, determinant " << r.determinant_seconds << " s; " << (k - block.first + 1) << "/" << mine
             << " done";
        log.line(line.str());
      }
    }
    progress.finish();
    const double my_seconds = MPI_Wtime() - loop_start;
    {
      std::ostringstream line;
      line.precision(4);
      line << "done: " << mine << " samples in " << my_seconds << " s ("
           << (my_seconds > 0 ? static_cast<double>(mine) / my_seconds : 0.0) << " matrices/s)";
      log.line(line.str());
    }

    logdet::RunResults all;
    MPI_Reduce(&my_seconds, &all.wall_seconds, 1, MPI_DOUBLE, MPI_MAX, 0, session.comm());
    all.index = gather_column(session, local.index);
    all.log_det = gather_column(session, local.log_det);
    all.log_det_factor = gather_column(session, local.log_det_factor);
    all.positive_definite = gather_column(session, local.positive_definite);
    all.rank = gather_column(session, local.rank);
    all.sample_seconds = gather_column(session, local.sample_seconds);
    all.determinant_seconds = gather_column(session, local.determinant_seconds);
    // The binding's own words when a planned GPU did not answer ("cpu (planned cuda:0, none answered)").
    const auto devices = session.gather(context.node_name + " " + engine->describe() +
                                        (!context.gpu.uses_gpu && context.gpu.planned_device
                                             ? "; GPU binding: " + context.gpu.describe()
                                             : std::string()));
    all.rank_devices = devices;
    all.buffer_bytes_per_rank = engine->buffer_bytes();

    session.run_collectively([&] {
      if (!session.is_root()) return;
      const auto analysis = logdet::analyze(plan, all);
      const auto summary = logdet::format_summary(plan, all, analysis);
      console.line(summary);
      io::write_file_atomically(output_dir / "summary.txt", summary);
      logdet::write_metrics((output_dir / "metrics.h5").string(), program.attributes(), plan, all, analysis);
      logdet::write_histogram_png((output_dir / "histogram.png").string(), plan, analysis);
      console.line("Results: " + fs::absolute(output_dir).string() +
                   " (metrics.h5, histogram.png, summary.txt, one log per rank: " + parser.common().log_pattern + ")");
      log.line("wrote metrics.h5, histogram.png and summary.txt");
    });
    return 0;
  });
}
