// fit-regression: a one-hidden-layer network regresses a Pantheon+SH0ES column (m_b_corr by
// default) on redshift and other columns, with every epoch's train and validation loss, the
// epoch where overfitting starts, a width sweep, the validation gain of each added feature,
// and a flat LambdaCDM fit beside it (Omega_m, and Einstein-de Sitter rejected at N sigma).
//
// The network has tens of parameters: it trains on the CPU of rank 0 (FusedMlp, one pass per
// epoch); a GPU would only add kernel-launch latency. Other ranks (if any) wait; run it with
// one task (jobs/fit-regression.sbatch).
#include <mpi.h>

#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>

#include "fit_training.hpp"
#include "render_queue.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/cli/options.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/cli/progress.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/tensorboard.hpp"
#include "slurmlab/nn/serialize/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

int main(int argc, char** argv) {
  return cluster::run_mpi_program(
      argc, argv, "fit-regression", [](cluster::MpiSession& session, int count, char** args) {
        fit::ProgramOptions options;
        cli::OptionParser parser(
            "fit-regression",
            "A two-layer network (standardised inputs, one hidden layer) fits a Pantheon+SH0ES column against "
            "redshift\n"
            "and other columns, shows when it starts to overfit, and a flat LambdaCDM fit beside it.\n"
            "Without data/Pantheon+SH0ES.dat (tools/fetch-data) or --table it fits a synthetic table and says so.\n"
            "The network is tiny: it trains on the CPU of rank 0; run it with one task (jobs/fit-regression.sbatch).",
            "fit-regression-%j");
        parser
            .add("table", options.table,
                 "Pantheon+SH0ES.dat-format table (default: data/Pantheon+SH0ES.dat, else synthetic)")
            .add("target", options.target, "column to predict")
            .add("features", options.features,
                 "input columns, comma list (e.g. zCMB,x1,c,HOST_LOGMASS,HOST_ANGSEP,VPEC)")
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
            .add("holdout-z", options.holdout_z,
                 "LO,HI: hold out rows with redshift in [LO, HI] (extrapolation), or none")
            .add("patience", options.patience, "early stopping: epochs without improvement (0 = off)")
            .add("min-delta", options.min_delta, "early stopping: smallest validation-loss decrease that counts")
            .add("image-every", options.image_every,
                 "TensorBoard prediction image and checkpoints every N epochs (0: no images, checkpoints only at "
                 "the end)")
            .add("lcdm-z-min", options.z_min_lcdm, "the LambdaCDM fit uses zHD above this (Pantheon+: 0.01)")
            .add("threads", options.threads,
                 "threads per training step, 1 or 2 (0: SLURM_CPUS_PER_TASK, else 1; only cores you own help)");

        const auto env = cluster::Environment::from_process();
        fit::RunPlan plan{};
        cli::parse_on_all_ranks(session, parser, count, args, [&] {
          plan = fit::check_options(options, cluster::SlurmEnvironment::from(env).cpus_per_task);
        });
        const cli::Console console(session.is_root());

        // CPU on purpose: the whole network fits in a few cache lines.
        const auto context =
            cluster::RankContext::establish(session, env, cluster::DevicePreference::Cpu, /*allow_sharing=*/true);
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
        const auto& output_dir = program.output_dir();
        auto& log = program.log();
        if (!session.is_root()) log.line("the network trains on rank 0 alone; this rank waits for it");

        session.run_collectively([&] {
          if (!session.is_root()) return;
          const auto seed = parser.common().seed;
          const auto source = fit::resolve_table(plan, output_dir);
          if (source.synthetic) console.line("*** " + source.note + " ***");
          const auto table = data::WhitespaceTable::read(source.path);
          const auto dataset = fit::load_dataset(table, plan, seed);
          console.line("fit-regression: " + std::to_string(dataset.rows) + " rows from " + source.path.string() + ", " +
                       std::to_string(plan.hidden.size()) + " width(s), up to " + std::to_string(plan.epochs) +
                       " epochs each; " + context.node_name + " CPU");
          log.line(std::to_string(dataset.rows) + " rows from " + source.path.string() +
                   (source.synthetic ? " (synthetic)" : "") + ", " + std::to_string(plan.threads) + " thread(s)");

          // One event file per run; the training thread writes scalars, the render worker the
          // prediction images, so each writer has a lock (held for a record, never a drawing).
          struct RunEvents {
            io::EventWriter writer;
            std::mutex lock;
            explicit RunEvents(const fs::path& dir) : writer(dir) {}
          };
          std::vector<std::unique_ptr<RunEvents>> writers;
          std::vector<std::unique_ptr<cli::Progress>> bars;
          // Figures are drawn off the training thread (the job's second core). Up to 32 wait
          // (a few kB each), so a fast run does not stall on a slower renderer.
          fit::RenderQueue renderer(32);
          auto hooks_for = [&](const std::string& name, std::int64_t hidden, std::size_t features,
                               const fit::Results& partial) {
            writers.push_back(std::make_unique<RunEvents>(output_dir / "tensorboard" / name));
            auto* events = writers.back().get();
            // The hparams dashboard compares runs by these; the final metrics follow as scalars.
            std::vector<std::string> used(dataset.feature_names.begin(),
                                          dataset.feature_names.begin() + static_cast<std::ptrdiff_t>(features));
            std::string feature_list;
            for (const auto& f : used) feature_list += (feature_list.empty() ? "" : ",") + f;
            events->writer.hparams({{"hidden", static_cast<double>(hidden)},
                                    {"lr", plan.lr},
                                    {"features", feature_list},
                                    {"log_z", plan.log_z},
                                    {"activation", nn::to_string(plan.activation)},
                                    {"batch_size", static_cast<double>(plan.batch_size)},
                                    {"seed", static_cast<double>(parser.common().seed)},
                                    {"weighted", plan.weighted}});
            // The curves the Hubble diagram draws beside the network, copied: jobs may outlive
            // run_fits' partial results.
            auto curves = std::make_shared<fit::Results>();
            curves->lcdm = partial.lcdm;
            curves->lcdm_grid = partial.lcdm_grid;
            curves->eds_grid = partial.eds_grid;
            cli::Progress::Options progress_options;
            progress_options.label = name;
            progress_options.unit = "epoch";
            progress_options.enabled = session.is_root();
            bars.push_back(std::make_unique<cli::Progress>(plan.epochs, progress_options));
            auto* bar = bars.back().get();
            fit::EpochHooks hooks;
            hooks.after_epoch = [&, events, bar, name, features, curves](
                                    const fit::TrainingRun& run, std::int64_t epoch, const fit::Predictor& current) {
              {
                std::lock_guard guard(events->lock);
                events->writer.scalar("loss/train", epoch, run.train_loss.back());
                events->writer.scalar("loss/validation", epoch, run.val_loss.back());
              }
              const bool last = epoch + 1 == plan.epochs;
              if (plan.image_every > 0 && ((epoch + 1) % plan.image_every == 0 || last) && !run.grid_z.empty()) {
                // The worker gets its own copy of what the figure draws (the grid and the current
                // prediction, a few kB, not the loss history): training goes on meanwhile.
                auto now = std::make_shared<fit::TrainingRun>();
                now->hidden = run.hidden;
                now->grid_z = run.grid_z;
                now->grid_prediction =
                    current.on_grid(run.grid_z, static_cast<std::size_t>(dataset.grid_feature), features);
                renderer.post([&, events, now, curves, name, epoch] {
                  const auto png = fit::hubble_figure(dataset, *now, *curves,
                                                      name + ", epoch " + std::to_string(epoch) +
                                                          (source.synthetic ? " [SYNTHETIC DATA]" : ""))
                                       .png();
                  std::lock_guard guard(events->lock);
                  events->writer.image("prediction", epoch, png);
                });
              }
              std::ostringstream extra;
              extra.precision(4);
              extra << "train " << run.train_loss.back() << "  val " << run.val_loss.back() << "  best epoch "
                    << run.best_epoch;
              bar->update(epoch + 1, extra.str());
            };
            hooks.finished = [bar, &log, name](const fit::TrainingRun& run) {
              const std::string outcome =
                  "best epoch " + std::to_string(run.best_epoch) + (run.stopped_early ? ", stopped early" : "");
              bar->finish(outcome);
              std::ostringstream line;
              line.precision(4);
              line << "run " << name << ": " << run.epochs_run << " epochs, " << outcome << ", validation RMS "
                   << run.val_rms;
              log.line(line.str());
            };
            hooks.save = [&, name](nn::Layer& net, nn::Adam& optimizer, std::int64_t epoch, const std::string& which) {
              nn::TrainingPosition position;
              position.epoch = epoch;
              position.step = optimizer.steps_taken();
              nn::save_checkpoint(output_dir / "checkpoints" / name / (which + ".h5"), net, &optimizer, position);
            };
            return hooks;
          };

          const auto results = fit::run_fits(plan, dataset, source, seed, hooks_for);
          // What was computed is written first (summary, metrics), then what is drawn, so a
          // failing figure never costs the numbers.
          const auto summary = fit::format_summary(plan, dataset, results);
          console.line(summary);
          io::write_file_atomically(output_dir / "summary.txt", summary);
          fit::write_metrics(output_dir / "metrics.h5", program.attributes(), plan, dataset, results);
          std::exception_ptr drawing_failed;
          try {
            renderer.finish();
          } catch (...) {
            drawing_failed = std::current_exception();
          }
          // Each run's final metrics beside its hparams, then the session end.
          std::vector<const fit::TrainingRun*> runs;
          for (const auto& run : results.sweep) runs.push_back(&run);
          for (const auto& run : results.feature_runs)
            if (run.features != dataset.feature_names.size()) runs.push_back(&run);
          for (std::size_t i = 0; i < writers.size() && i < runs.size(); ++i) {
            auto& writer = writers[i]->writer;
            const auto step = runs[i]->epochs_run - 1;
            writer.scalar("hparams/best_val_loss", step, runs[i]->best_val_loss);
            writer.scalar("hparams/best_epoch", step, static_cast<double>(runs[i]->best_epoch));
            writer.scalar("hparams/val_rms", step, runs[i]->val_rms);
            writer.end_session(drawing_failed ? io::SessionStatus::failure : io::SessionStatus::success);
            writer.close();
          }
          fit::write_figures(output_dir, plan, dataset, results);
          if (drawing_failed) std::rethrow_exception(drawing_failed);  // a TensorBoard image failed
          console.line(
              "Results: " + fs::absolute(output_dir).string() +
              " (metrics.h5, summary.txt, loss_curves.png, hubble.png, residuals.png, tensorboard/, checkpoints/, " +
              parser.common().log_pattern + ")");
          log.line("wrote summary.txt, metrics.h5, the figures, tensorboard/ and checkpoints/");
        });
        return 0;
      });
}
