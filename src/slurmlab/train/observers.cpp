#include "slurmlab/train/observers.hpp"

#include <algorithm>
#include <cstdio>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::train {
namespace {

std::vector<nn::NamedParameter> parameters_of(Trainer& trainer) {
  return trainer.module() ? nn::parameters_of(trainer.module()->network()) : std::vector<nn::NamedParameter>{};
}

}  // namespace

TensorBoardLogger::TensorBoardLogger(TensorBoardLoggerOptions options) : options_(std::move(options)) {
  if (options_.log_every_n_steps < 0) throw UsageError("log_every_n_steps must be 0 (none) or a number of batches");
  if (options_.histogram_every_n_epochs < 0) {
    throw UsageError("histogram_every_n_epochs must be 0 (none) or a number of epochs");
  }
}

std::string TensorBoardLogger::epoch_tag(const std::string& metric) {
  const auto underscore = metric.find('_');
  if (underscore == std::string::npos) return metric + "_epoch";
  return metric.substr(0, underscore) + "/" + metric.substr(underscore + 1) + "_epoch";
}

bool TensorBoardLogger::histograms_due(const Trainer& trainer) const {
  return options_.histogram_every_n_epochs > 0 && trainer.current_epoch() % options_.histogram_every_n_epochs == 0;
}

void TensorBoardLogger::on_fit_start(Trainer& trainer) {
  gradients_logged_for_epoch_ = -1;
  if (!trainer.is_root()) return;
  writer_ = std::make_unique<io::EventWriter>(options_.log_dir.empty() ? trainer.options().root_dir / "tensorboard"
                                                                       : options_.log_dir);
  writer_->hparams(options_.hparams);
  for (const auto& [tag, markdown] : options_.text) writer_->text(tag, trainer.global_step(), markdown);
  writer_->flush();
}

void TensorBoardLogger::on_train_batch_end(Trainer& trainer, const StepResult& result) {
  if (!writer_ || options_.log_every_n_steps == 0 || result.samples == 0) return;
  if (trainer.train_batches_run() % options_.log_every_n_steps != 0) return;
  // A logging step waits for its values (on a GPU; the others stay unread).
  const StepResult values = result.resolved();
  const auto samples = static_cast<double>(values.samples);
  writer_->scalar("train/loss_step", trainer.global_step(), values.loss_sum / samples);
  for (const auto& [name, sum] : values.sums)
    writer_->scalar("train/" + name + "_step", trainer.global_step(), sum / samples);
}

void TensorBoardLogger::on_before_optimizer_step(Trainer& trainer) {
  // The epoch's first optimizer step only; every rank tracks it alike (no rank writes elsewhere).
  if (!histograms_due(trainer) || gradients_logged_for_epoch_ == trainer.current_epoch()) return;
  gradients_logged_for_epoch_ = trainer.current_epoch();
  if (!writer_) return;
  for (const auto& p : parameters_of(trainer)) {
    writer_->histogram("gradients/" + p.name, trainer.current_epoch(), p.parameter->grad.to(nn::Device::cpu).span());
  }
}

void TensorBoardLogger::on_train_epoch_end(Trainer& trainer) {
  if (!writer_) return;
  const auto epoch = trainer.current_epoch();
  for (const auto& [name, value] : trainer.metrics()) writer_->scalar(epoch_tag(name), epoch, value);
  if (histograms_due(trainer)) {
    for (const auto& p : parameters_of(trainer)) {
      writer_->histogram("weights/" + p.name, epoch, p.parameter->value.to(nn::Device::cpu).span());
    }
  }
  writer_->flush();
}

void TensorBoardLogger::on_fit_end(Trainer& trainer) {
  if (!writer_) return;
  for (const auto& [name, value] : trainer.metrics()) writer_->scalar("final/" + name, trainer.current_epoch(), value);
  writer_->end_session(io::SessionStatus::success);
  writer_->close();
  writer_.reset();
}

void TensorBoardLogger::on_exception(Trainer&, const std::exception&) {
  if (!writer_) return;
  writer_->end_session(io::SessionStatus::failure);
  writer_->close();
  writer_.reset();
}

void LearningRateMonitor::record(std::int64_t at, double rate) {
  values_.emplace_back(at, rate);
  if (logger_ && logger_->writer()) logger_->writer()->scalar("train/lr", at, rate);
}

void LearningRateMonitor::on_train_epoch_start(Trainer& trainer) {
  if (interval_ == LoggingInterval::epoch) record(trainer.current_epoch(), trainer.learning_rate());
}

void LearningRateMonitor::on_before_optimizer_step(Trainer& trainer) {
  if (interval_ == LoggingInterval::step) record(trainer.global_step(), trainer.learning_rate());
}

void ProgressBar::on_fit_start(Trainer& trainer) {
  last_epoch_.clear();
  const auto per_epoch = trainer.train_batches_per_epoch();
  const auto& o = trainer.options();
  std::int64_t total = per_epoch * o.max_epochs;
  if (o.max_steps >= 0) total = std::min(total, o.max_steps * o.accumulate_grad_batches);
  cli::Progress::Options p;
  p.label = options_.label;
  p.unit = "batch";
  p.enabled = trainer.is_root();
  if (options_.terminal) p.terminal = *options_.terminal;
  p.interval = options_.interval;
  p.out = options_.out;
  if (options_.clock) p.clock = options_.clock;
  progress_ = std::make_unique<cli::Progress>(total, p);
}

std::string ProgressBar::extra(const Trainer& trainer) const {
  std::string text =
      "epoch " + std::to_string(trainer.current_epoch() + 1) + "/" + std::to_string(trainer.options().max_epochs);
  return last_epoch_.empty() ? text : text + "  " + last_epoch_;
}

void ProgressBar::on_train_batch_end(Trainer& trainer, const StepResult&) {
  if (!progress_) return;
  // Counted from the position, so a resumed fit continues where the bar stood.
  progress_->update(trainer.current_epoch() * trainer.train_batches_per_epoch() + trainer.batch_in_epoch() + 1,
                    extra(trainer));
}

void ProgressBar::on_train_epoch_end(Trainer& trainer) {
  last_epoch_.clear();
  for (const char* name : {"train_loss", "val_loss"}) {
    if (const auto found = trainer.metrics().find(name); found != trainer.metrics().end()) {
      char value[64];
      std::snprintf(value, sizeof value, "%s %.4g", name, found->second);
      last_epoch_ += (last_epoch_.empty() ? "" : "  ") + std::string(value);
    }
  }
}

void ProgressBar::on_fit_end(Trainer& trainer) {
  if (!progress_) return;
  progress_->finish(extra(trainer));
  progress_.reset();
}

}  // namespace slurmlab::train
