#pragma once
// Observers of a fit (Lightning's TensorBoardLogger, LearningRateMonitor and progress bar), as
// trainer callbacks. They watch; they never change what is trained.
//
// Contract
//   Ranks: every rank calls every hook (the trainer's contract); rank 0 alone writes and
//     prints, and nothing here communicates, so no rank ever waits for another. The values
//     written are the trainer's reduced metrics (the same on every rank), except the per-step
//     scalars, which are rank 0's part of the batch.
//   TensorBoardLogger: one event file in options.log_dir (default <root_dir>/tensorboard),
//     opened at fit start on rank 0 (a resumed fit adds a file beside the first; TensorBoard
//     reads them as one run). Tags:
//       hparams (session start) and every `text` entry at fit start;
//       "train/loss_step" and "train/<metric>_step" every log_every_n_steps training batches,
//         at the global step;
//       "<stage>/<metric>_epoch" for every reduced metric (train_loss -> "train/loss_epoch")
//         at every epoch end, at the epoch number;
//       "weights/<parameter>" at the end, and "gradients/<parameter>" (averaged over ranks and
//         micro-batches, clipped: what the optimizer uses) at the first optimizer step, of
//         every histogram_every_n_epochs-th epoch (0: never);
//       "final/<metric>" at the fit's end with the hparams session's end (success), or the
//         session's end as a failure when the fit throws.
//     Other callbacks (an application's images) write into the same file through writer(),
//     which is null off rank 0, outside a fit and under fast_dev_run.
//   LearningRateMonitor: the learning rate each epoch (at its start: the rate the epoch
//     begins with) or each optimizer step (the rate that step uses), kept in values() on every
//     rank and written as "train/lr" through a TensorBoardLogger when given one.
//   ProgressBar: rank 0's cli::Progress over the fit's training batches: a bar redrawn in place
//     on a terminal, one line per interval in a batch log (never a carriage return there),
//     with the epoch and the last epoch's reduced losses; a final line at the fit's end.
//   Threads: the trainer's thread (io::EventWriter flushes on its own thread).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/cli/progress.hpp"
#include "slurmlab/io/tensorboard.hpp"
#include "slurmlab/train/trainer.hpp"

namespace slurmlab::train {

struct TensorBoardLoggerOptions {
  std::filesystem::path log_dir = {};         // empty: <trainer root_dir>/tensorboard
  std::int64_t log_every_n_steps = 50;        // per-step scalars every N training batches (0: none)
  std::int64_t histogram_every_n_epochs = 0;  // weight and gradient histograms (0: none)
  std::map<std::string, io::HParamValue> hparams = {};
  std::vector<std::pair<std::string, std::string>> text = {};  // (tag, markdown) written at fit start
};

class TensorBoardLogger final : public Callback {
 public:
  explicit TensorBoardLogger(TensorBoardLoggerOptions options = {});
  void on_fit_start(Trainer& trainer) override;
  void on_train_batch_end(Trainer& trainer, const StepResult& result) override;
  void on_before_optimizer_step(Trainer& trainer) override;
  void on_train_epoch_end(Trainer& trainer) override;
  void on_fit_end(Trainer& trainer) override;
  void on_exception(Trainer& trainer, const std::exception& error) override;
  bool writes_files() const override { return true; }

  // The open event file (rank 0, during a fit), else null.
  io::EventWriter* writer() { return writer_.get(); }
  // "train_loss" -> "train/loss_epoch": the tag of a reduced metric at an epoch's end.
  static std::string epoch_tag(const std::string& metric);

 private:
  bool histograms_due(const Trainer& trainer) const;
  TensorBoardLoggerOptions options_;
  std::unique_ptr<io::EventWriter> writer_;
  std::int64_t gradients_logged_for_epoch_ = -1;
};

enum class LoggingInterval { epoch, step };

class LearningRateMonitor final : public Callback {
 public:
  explicit LearningRateMonitor(LoggingInterval interval = LoggingInterval::epoch,
                               std::shared_ptr<TensorBoardLogger> logger = nullptr)
      : interval_(interval), logger_(std::move(logger)) {}
  void on_train_epoch_start(Trainer& trainer) override;
  void on_before_optimizer_step(Trainer& trainer) override;
  // (epoch or global step, learning rate), in order.
  const std::vector<std::pair<std::int64_t, double>>& values() const { return values_; }

 private:
  void record(std::int64_t at, double rate);
  LoggingInterval interval_;
  std::shared_ptr<TensorBoardLogger> logger_;
  std::vector<std::pair<std::int64_t, double>> values_;
};

struct ProgressBarOptions {
  std::string label = "train";
  // Whether stdout is a terminal, the interval of batch-log lines, where to print (tests).
  std::optional<bool> terminal = std::nullopt;  // default: cli::Progress::default_terminal()
  std::chrono::milliseconds interval{10000};
  std::ostream* out = nullptr;      // default std::cout
  cli::Progress::Clock clock = {};  // default steady_clock (tests inject one)
};

class ProgressBar final : public Callback {
 public:
  explicit ProgressBar(ProgressBarOptions options = {}) : options_(std::move(options)) {}
  void on_fit_start(Trainer& trainer) override;
  void on_train_batch_end(Trainer& trainer, const StepResult& result) override;
  void on_train_epoch_end(Trainer& trainer) override;
  void on_fit_end(Trainer& trainer) override;

 private:
  std::string extra(const Trainer& trainer) const;
  ProgressBarOptions options_;
  std::unique_ptr<cli::Progress> progress_;
  std::string last_epoch_;  // "train_loss 0.4123  val_loss 0.5012" after an epoch's end
};

}  // namespace slurmlab::train
