// fit-regression: a one-hidden-layer network regresses a Pantheon+SH0ES column (m_b_corr by
// default) on redshift and other columns, with every epoch's train and validation loss, the
// epoch where overfitting starts, a width sweep, the validation gain of each added feature,
// and a flat LambdaCDM fit beside it (Omega_m, and Einstein-de Sitter rejected at N sigma).
//
// The network has tens of parameters: it trains on the CPU of rank 0 (FusedMlp, one pass per
// epoch); a GPU would only add kernel-launch latency. Other ranks (if any) wait; run it with
// one task (jobs/fit-regression.sbatch).
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fit_training.hpp"
#include "render_queue.hpp"
#include "run_observer.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/cli/options.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/io/atomic_file.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {

constexpr const char* kSummary =
    "A two-layer network (standardised inputs, one hidden layer) fits a Pantheon+SH0ES column against redshift\n"
    "and other columns, shows when it starts to overfit, and a flat LambdaCDM fit beside it.\n"
    "Without data/Pantheon+SH0ES.dat (tools/fetch-data) or --table it fits a synthetic table and says so.\n"
    "The network is tiny: it trains on the CPU of rank 0; run it with one task (jobs/fit-regression.sbatch).";

void add_program_options(cli::OptionParser& parser, fit::ProgramOptions& options) {
  parser
      .add("table", options.table, "Pantheon+SH0ES.dat-format table (default: data/Pantheon+SH0ES.dat, else synthetic)")
      .add("target", options.target, "column to predict")
      .add("features", options.features, "input columns, comma list (e.g. zCMB,x1,c,HOST_LOGMASS,HOST_ANGSEP,VPEC)")
      .add("error-column", options.error_column, "the target's error column (none: no errors, no LambdaCDM fit)")
      .add_flag("weighted", options.weighted, "weight the MSE by 1/error^2")
      .add_flag("log-z", options.log_z, "log10 of redshift features (names starting with z) before standardising")
      .add("hidden", options.hidden, "hidden width, or a comma list for a sweep (e.g. 4,32,512)")
      .add("activation", options.activation, "tanh or relu")
      .add("epochs", options.epochs, "epochs (full passes over the training rows)")
      .add("lr", options.lr, "Adam learning rate")
      .add("batch-size", options.batch_size, "rows per step; 0 = full batch")
      .add("val-fraction", options.val_fraction, "fraction of rows for validation")
      .add("test-fraction", options.test_fraction, "fraction of rows for the test set")
      .add("holdout-z", options.holdout_z, "LO,HI: hold out rows with redshift in [LO, HI] (extrapolation), or none")
      .add("patience", options.patience, "early stopping: epochs without improvement (0 = off)")
      .add("min-delta", options.min_delta, "early stopping: smallest validation-loss decrease that counts")
      .add("image-every", options.image_every, "TensorBoard prediction image every N epochs (0: no images)")
      .add("checkpoint-every", options.checkpoint_every,
           "checkpoints best.h5 and last.h5 every N epochs (0: only at the end; always at the end)")
      .add("lcdm-z-min", options.z_min_lcdm, "the LambdaCDM fit uses zHD above this (Pantheon+: 0.01)")
      .add("threads", options.threads,
           "threads per training step, 1 or 2 (0: SLURM_CPUS_PER_TASK, else 1; only cores you own help)");
}

// The runs in the order run_fits trains them, which is the order it asks for their hooks:
// the sweep, then the feature runs but the last (that one is the sweep's first run again).
std::vector<const fit::TrainingRun*> runs_in_training_order(const fit::Results& results, std::size_t all_features) {
  std::vector<const fit::TrainingRun*> runs;
  for (const auto& run : results.sweep) runs.push_back(&run);
  for (const auto& run : results.feature_runs)
    if (run.features != all_features) runs.push_back(&run);
  return runs;
}

// Runs every queued drawing; a failure is kept for later, so that it never costs what was
// computed (written before) nor the other figures (written after).
std::exception_ptr finish_drawing(fit::RenderQueue& renderer) {
  try {
    renderer.finish();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

// Rank 0's work: read the table, train every run with its observer, then write what was
// computed (summary, metrics) before what is drawn, so a failing figure never costs the numbers.
void fit_and_report(const fit::RunPlan& plan, std::uint64_t seed, const std::string& log_pattern,
                    const cluster::RankContext& context, cli::ProgramRun& program, const cli::Console& console) {
  const auto& output_dir = program.output_dir();
  auto& log = program.log();
  const auto source = fit::resolve_table(plan, output_dir);
  if (source.synthetic) console.line("*** " + source.note + " ***");
  const auto table = data::WhitespaceTable::read(source.path);
  const auto dataset = fit::load_dataset(table, plan, seed);
  console.line("fit-regression: " + std::to_string(dataset.rows) + " rows from " + source.path.string() + ", " +
               std::to_string(plan.hidden.size()) + " width(s), up to " + std::to_string(plan.epochs) +
               " epochs each; " + context.node_name + " CPU");
  log.line(std::to_string(dataset.rows) + " rows from " + source.path.string() +
           (source.synthetic ? " (synthetic)" : "") + ", " + std::to_string(plan.threads) + " thread(s)");

  // Declared before the renderer, whose jobs write to them: the worker stops first.
  std::vector<std::unique_ptr<fit::RunObserver>> observers;
  // Figures are drawn off the training thread (the job's second core). Up to 32 wait (a few
  // kB each), so a fast run does not stall on a slower renderer.
  fit::RenderQueue renderer(32);
  const fit::ObserverSetup setup{plan, dataset, source, output_dir, seed, renderer, log};
  const auto results = fit::run_fits(
      plan, dataset, source, seed,
      [&](const std::string& name, std::int64_t hidden, std::size_t features, const fit::Results& partial) {
        observers.push_back(std::make_unique<fit::RunObserver>(setup, name, hidden, features, partial));
        return observers.back()->hooks();
      });

  const auto summary = fit::format_summary(plan, dataset, results);
  console.line(summary);
  io::write_file_atomically(output_dir / "summary.txt", summary);
  fit::write_metrics(output_dir / "metrics.h5", program.attributes(), plan, dataset, results);
  const auto drawing_failed = finish_drawing(renderer);
  const auto runs = runs_in_training_order(results, dataset.feature_names.size());
  for (std::size_t i = 0; i < observers.size() && i < runs.size(); ++i)
    observers[i]->close(*runs[i], drawing_failed != nullptr);
  fit::write_figures(output_dir, plan, dataset, results);
  if (drawing_failed) std::rethrow_exception(drawing_failed);  // a TensorBoard image failed
  console.line("Results: " + fs::absolute(output_dir).string() +
               " (metrics.h5, summary.txt, loss_curves.png, hubble.png, residuals.png, tensorboard/, checkpoints/, " +
               log_pattern + ")");
  log.line("wrote summary.txt, metrics.h5, the figures, tensorboard/ and checkpoints/");
}

int fit_regression(cluster::MpiSession& session, int argc, char** argv) {
  fit::ProgramOptions options;
  cli::OptionParser parser("fit-regression", kSummary, "fit-regression-%j");
  add_program_options(parser, options);
  const auto env = cluster::Environment::from_process();
  fit::RunPlan plan{};
  cli::parse_on_all_ranks(session, parser, argc, argv, [&] {
    plan = fit::check_options(options, cluster::SlurmEnvironment::from(env).cpus_per_task);
  });
  const cli::Console console(session.is_root());

  // CPU on purpose: the whole network fits in a few cache lines.
  const auto context =
      cluster::RankContext::establish(session, env, cluster::DevicePreference::cpu, /*allow_sharing=*/true);
  if (parser.common().device == "cuda") {
    console.line(
        "fit-regression: --device cuda ignored: this network has tens of parameters and trains faster on "
        "the CPU than a GPU could launch its kernels.");
  }
  if (session.size() > 1) {
    console.line("fit-regression: " + std::to_string(session.size()) +
                 " ranks, but the network trains on rank 0 alone; the others wait (use --ntasks=1).");
  }

  auto program = cli::ProgramRun::start(session, parser.common(), context);
  if (!session.is_root()) program.log().line("the network trains on rank 0 alone; this rank waits for it");
  session.run_collectively([&] {
    if (session.is_root())
      fit_and_report(plan, parser.common().seed, parser.common().log_pattern, context, program, console);
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cluster::run_mpi_program(argc, argv, "fit-regression", fit_regression);
}
