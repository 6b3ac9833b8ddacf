#include "run_observer.hpp"

#include <sstream>
#include <utility>
#include <vector>

#include "slurmlab/nn/serialize/checkpoint.hpp"

namespace slurmlab::fit {

namespace {

std::shared_ptr<const Results> copy_curves(const Results& results) {
  auto curves = std::make_shared<Results>();
  curves->lcdm = results.lcdm;
  curves->lcdm_grid = results.lcdm_grid;
  curves->eds_grid = results.eds_grid;
  return curves;
}

cli::Progress::Options progress_options(const std::string& name) {
  cli::Progress::Options options;
  options.label = name;
  options.unit = "epoch";
  return options;
}

}  // namespace

RunObserver::RunObserver(const ObserverSetup& setup, std::string name, std::int64_t hidden, std::size_t features,
                         const Results& results)
    : setup_(setup),
      name_(std::move(name)),
      features_(features),
      events_(setup.output_dir / "tensorboard" / name_),
      curves_(copy_curves(results)),
      progress_(setup.plan.epochs, progress_options(name_)) {
  // The hparams dashboard compares runs by these; the final metrics follow as scalars.
  const auto& names = setup.dataset.feature_names;
  std::vector<std::string> used(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(features));
  std::string feature_list;
  for (const auto& f : used) feature_list += (feature_list.empty() ? "" : ",") + f;
  const auto& plan = setup.plan;
  events_.hparams({{"hidden", static_cast<double>(hidden)},
                   {"lr", plan.lr},
                   {"features", feature_list},
                   {"log_z", plan.log_z},
                   {"activation", nn::to_string(plan.activation)},
                   {"batch_size", static_cast<double>(plan.batch_size)},
                   {"seed", static_cast<double>(setup.seed)},
                   {"weighted", plan.weighted}});
}

EpochHooks RunObserver::hooks() {
  EpochHooks hooks;
  hooks.after_epoch = [this](const TrainingRun& run, std::int64_t epoch, const Predictor& current) {
    after_epoch(run, epoch, current);
  };
  hooks.finished = [this](const TrainingRun& run) { finished(run); };
  hooks.save = [this](nn::Layer& net, nn::Adam& optimizer, std::int64_t epoch, const std::string& which) {
    save(net, optimizer, epoch, which);
  };
  return hooks;
}

void RunObserver::after_epoch(const TrainingRun& run, std::int64_t epoch, const Predictor& current) {
  {
    std::lock_guard guard(events_lock_);
    events_.scalar("loss/train", epoch, run.train_loss.back());
    events_.scalar("loss/validation", epoch, run.val_loss.back());
  }
  const auto& plan = setup_.plan;
  const bool last = epoch + 1 == plan.epochs;
  if (plan.image_every > 0 && ((epoch + 1) % plan.image_every == 0 || last) && !run.grid_z.empty()) {
    post_prediction_image(run, epoch, current);
  }
  std::ostringstream extra;
  extra.precision(4);
  extra << "train " << run.train_loss.back() << "  val " << run.val_loss.back() << "  best epoch " << run.best_epoch;
  progress_.update(epoch + 1, extra.str());
}

void RunObserver::post_prediction_image(const TrainingRun& run, std::int64_t epoch, const Predictor& current) {
  // The worker gets its own copy of what the figure draws (the grid and the current
  // prediction, a few kB, not the loss history): training goes on meanwhile.
  auto now = std::make_shared<TrainingRun>();
  now->hidden = run.hidden;
  now->grid_z = run.grid_z;
  now->grid_prediction = current.on_grid(run.grid_z, static_cast<std::size_t>(setup_.dataset.grid_feature), features_);
  setup_.renderer.post([this, now, epoch] {
    const auto png =
        hubble_figure(setup_.dataset, *now, *curves_,
                      name_ + ", epoch " + std::to_string(epoch) + (setup_.source.synthetic ? " [SYNTHETIC DATA]" : ""))
            .png();
    std::lock_guard guard(events_lock_);
    events_.image("prediction", epoch, png);
  });
}

void RunObserver::finished(const TrainingRun& run) {
  const std::string outcome =
      "best epoch " + std::to_string(run.best_epoch) + (run.stopped_early ? ", stopped early" : "");
  progress_.finish(outcome);
  std::ostringstream line;
  line.precision(4);
  line << "run " << name_ << ": " << run.epochs_run << " epochs, " << outcome << ", validation RMS " << run.val_rms;
  setup_.log.line(line.str());
}

void RunObserver::save(nn::Layer& net, nn::Adam& optimizer, std::int64_t epoch, const std::string& which) {
  nn::TrainingPosition position;
  position.epoch = epoch;
  position.step = optimizer.steps_taken();
  nn::save_checkpoint(setup_.output_dir / "checkpoints" / name_ / (which + ".h5"), net, &optimizer, position);
}

void RunObserver::close(const TrainingRun& run, bool drawing_failed) {
  // The render worker has stopped: no lock needed.
  const auto step = run.epochs_run - 1;
  events_.scalar("hparams/best_val_loss", step, run.best_val_loss);
  events_.scalar("hparams/best_epoch", step, static_cast<double>(run.best_epoch));
  events_.scalar("hparams/val_rms", step, run.val_rms);
  events_.end_session(drawing_failed ? io::SessionStatus::failure : io::SessionStatus::success);
  events_.close();
}

}  // namespace slurmlab::fit
