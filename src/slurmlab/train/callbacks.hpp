#pragma once
// The built-in callbacks: ModelCheckpoint, EarlyStopping, Hdf5MetricsLogger (Lightning's
// meanings). Each decides on every rank from the trainer's reduced metrics, so all ranks agree;
// files are written by rank 0 alone.
//
// Contract
//   Monitored metrics: a monitor such as "val_loss" is read at each epoch end; an epoch
//     without validation (check_val_every_n_epoch) is skipped for "val_*" monitors. A monitor
//     absent from the metrics otherwise is a slurmlab::UsageError listing the metrics there
//     are (the same on every rank).
//   Files: checkpoints go through Trainer::save_checkpoint (nn's checksummed HDF5, written to a
//     temporary name and renamed, trainer state beside it), on rank 0.
//   Threads: the trainer's thread.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slurmlab/io/metrics_writer.hpp"
#include "slurmlab/train/trainer.hpp"

namespace slurmlab::train {

enum class MonitorMode { min, max };

// Fills `{epoch}`, `{step}` and `{metric}` / `{metric:.4f}` (printf conversions f, e, g) from
// the trainer's state: "epoch={epoch}-val_loss={val_loss:.4f}" -> "epoch=3-val_loss=0.1234".
// An unknown name is a UsageError naming it.
std::string format_checkpoint_name(const std::string& filename_template, std::int64_t epoch, std::int64_t step,
                                   const Metrics& metrics);

struct ModelCheckpointOptions {
  std::filesystem::path dirpath = {};  // empty: trainer.checkpoint_dir()
  std::string monitor = {};            // empty: no top-k, only `last`
  MonitorMode mode = MonitorMode::min;
  std::int64_t save_top_k = 1;  // -1: every epoch; 0: none
  bool save_last = true;        // last.h5 at every epoch end and at fit end
  std::string filename = "epoch={epoch}-step={step}";
};

class ModelCheckpoint final : public Callback {
 public:
  explicit ModelCheckpoint(ModelCheckpointOptions options);
  void on_fit_start(Trainer& trainer) override;
  void on_train_epoch_end(Trainer& trainer) override;
  void on_fit_end(Trainer& trainer) override;
  bool writes_files() const override { return true; }
  std::string state_key() const override { return "ModelCheckpoint"; }
  std::string save_state() const override;
  void load_state(const std::string& state) override;

  // The kept top-k checkpoints and their scores, best first.
  std::vector<std::pair<double, std::filesystem::path>> top_k() const;
  const std::filesystem::path& best_model_path() const { return best_path_; }
  std::optional<double> best_model_score() const { return best_score_; }
  const std::filesystem::path& last_model_path() const { return last_path_; }

 private:
  bool better(double a, double b) const { return options_.mode == MonitorMode::min ? a < b : a > b; }
  std::filesystem::path directory(const Trainer& trainer) const;
  // Whether `path` is in this run's checkpoint directory (the only files it may delete).
  bool is_own(const Trainer& trainer, const std::filesystem::path& path) const;
  ModelCheckpointOptions options_;
  std::vector<std::pair<double, std::filesystem::path>> kept_;  // unordered
  std::filesystem::path best_path_, last_path_;
  std::int64_t last_saved_at_step_ = -1;  // `last` already holds this step: fit end skips it
  std::optional<double> best_score_;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  MonitorMode mode = MonitorMode::min;
  std::int64_t patience = 3;  // epochs with a monitored value, without improvement
  double min_delta = 0.0;     // an improvement must beat the best by more than this
};

// Stops when the monitored value has not improved by more than min_delta for `patience`
// checks in a row (Lightning's EarlyStopping; fit-regression's --patience/--min-delta).
class EarlyStopping final : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options);
  void on_train_epoch_end(Trainer& trainer) override;
  std::string state_key() const override { return "EarlyStopping"; }
  std::string save_state() const override;
  void load_state(const std::string& state) override;
  double best_score() const { return best_; }
  std::int64_t wait_count() const { return wait_; }
  std::optional<std::int64_t> stopped_epoch() const { return stopped_epoch_; }

 private:
  EarlyStoppingOptions options_;
  double best_;
  std::int64_t wait_ = 0;
  std::optional<std::int64_t> stopped_epoch_;
};

// Per-epoch series in metrics.h5 (io::MetricsWriter), rank 0: `epoch`, `lr` and every
// train_* metric each epoch; `val_epoch` and every val_* metric each validated epoch; at the
// fit's end the profile: `profile/<phase>` (seconds, rank 0) and `profile/optimizer_steps`.
// Wall times per epoch, rank 0's, from the trainer's clock (not reduced, never in the
// trainer's metrics, so runs stay comparable value for value):
//   `time/train_seconds`  Trainer::epoch_train_seconds(): the training alone, what a
//                         CPU-vs-GPU or core-count comparison wants (validation not counted);
//   `time/epoch_seconds`  from the epoch's start to this logger's epoch-end hook
//                         (validation and the callbacks placed before it included);
//   `time/epoch`          the epoch index of each value (so a plot finds its x axis).
// A resumed epoch counts from the resume. `describe_run`, when given, is called once on the
// freshly opened writer (rank 0) to add the program's root attributes (model, device, ...).
// The file is created at fit start (a resumed fit starts a new one).
class Hdf5MetricsLogger final : public Callback {
 public:
  using DescribeRun = std::function<void(io::MetricsWriter&)>;
  explicit Hdf5MetricsLogger(std::filesystem::path path, DescribeRun describe_run = {})
      : path_(std::move(path)), describe_run_(std::move(describe_run)) {}
  void on_fit_start(Trainer& trainer) override;
  void on_train_epoch_end(Trainer& trainer) override;
  void on_fit_end(Trainer& trainer) override;
  void on_exception(Trainer& trainer, const std::exception& error) override;
  bool writes_files() const override { return true; }

 private:
  std::filesystem::path path_;
  DescribeRun describe_run_;
  std::unique_ptr<io::MetricsWriter> writer_;
};

}  // namespace slurmlab::train
