#pragma once
// The trainer (Lightning's Trainer, Caffe's Solver::Step + callbacks): a small loop over a
// TrainableModule's batches; checkpoints, early stopping and loggers hook into it.
//
// Contract
//   Loop: fit() runs epochs of training batches; after every `accumulate_grad_batches`
//     batches (and at an epoch's end with fewer) it averages the accumulated gradients, has the
//     module reduce them across ranks, clips them, sets the learning rate from the schedule and
//     steps the optimizer. Validation runs every `check_val_every_n_epoch` epochs, then the
//     epoch-end callbacks see the reduced train_* and val_* metrics together.
//   Collective: with a communicator every rank calls fit/validate/test with equally sized
//     sources; metrics are reduced by name (metric_reduction.hpp), so every rank holds the
//     same metrics() and every callback decides the same thing (no rank waits for another
//     that decided otherwise). Files (checkpoints, logs) are written by rank 0 only, into
//     one directory.
//   Resume: fit(resume_from) restores weights, buffers, optimizer state, the learning rate and
//     step count, the module's random streams, the position in the data (epoch, batch), the
//     partial epoch's metric sums and every callback's state; the resumed run then equals an
//     uninterrupted one bit for bit on the CPU. Checkpoints are taken at step boundaries.
//   fast_dev_run N: N batches of train, val and test, one epoch, no callback that writes
//     files (checkpoints, loggers) runs at all.
//   val_check_interval N: validation after every N-th training batch of an epoch (Lightning's
//     integer val_check_interval), instead of once at the epoch's end; the epoch-end callbacks
//     see the epoch's last validation.
//   overfit_batches: the same first batches of the training source (epoch 0's order) every
//     epoch, and validation on those very batches (the validation source is not used), as
//     Lightning's overfit_batches: a model that cannot drive that loss down has a bug.
//   stop_on_nonfinite_loss: before every optimizer step all ranks agree (one small allreduce,
//     shared with the preemption check) whether a step since the last one returned a NaN or
//     infinite loss or metric; if so every rank throws the same std::runtime_error naming the
//     step, the metric and the first rank that saw it (no rank is left waiting, no NaN step).
//   Errors: impossible options are slurmlab::UsageError, thrown on every rank alike. An
//     exception in the loop goes to every callback's on_exception, then propagates.
//   Threads: one thread per rank drives a Trainer.
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/nn/optim/schedules.hpp"
#include "slurmlab/train/metric_reduction.hpp"
#include "slurmlab/train/module.hpp"

namespace slurmlab::train {

class Trainer;

// Lightning's limit_*_batches: a count (whole number) or a fraction of the epoch in (0, 1].
struct BatchLimit {
  double value = 1.0;
  bool is_fraction = true;
  static BatchLimit all() { return {1.0, true}; }
  static BatchLimit count(std::int64_t batches) { return {static_cast<double>(batches), false}; }
  static BatchLimit fraction(double part) { return {part, true}; }
  // Batches to run out of `available`; UsageError when a fraction leaves none.
  std::int64_t resolve(std::int64_t available, const std::string& what) const;
};

enum class ScheduleInterval { epoch, step };

struct TrainerOptions {
  std::int64_t max_epochs = 1;
  std::int64_t max_steps = -1;  // optimizer steps; -1: no limit
  std::int64_t check_val_every_n_epoch = 1;
  std::int64_t val_check_interval = 0;  // >0: validate every N training batches within an epoch
  BatchLimit limit_train_batches = BatchLimit::all();
  BatchLimit limit_val_batches = BatchLimit::all();
  BatchLimit limit_test_batches = BatchLimit::all();
  BatchLimit limit_predict_batches = BatchLimit::all();
  // Lightning's overfit_batches: 0 (off), a batch count or a fraction of the training batches.
  BatchLimit overfit_batches = BatchLimit::count(0);
  bool stop_on_nonfinite_loss = false;
  std::int64_t fast_dev_run = 0;  // 0: off
  std::int64_t accumulate_grad_batches = 1;
  std::optional<double> gradient_clip_norm = std::nullopt;   // global L2 norm (nn::clip_gradient_norm)
  std::optional<double> gradient_clip_value = std::nullopt;  // each gradient element into [-v, v]
  // The learning rate at epoch e (interval epoch) or optimizer step s (interval step);
  // borrowed, may be null (the optimizer's rate stays as it is).
  const nn::LearningRateSchedule* schedule = nullptr;
  ScheduleInterval schedule_interval = ScheduleInterval::epoch;
  std::filesystem::path root_dir = ".";   // checkpoints/ goes below it
  MPI_Comm communicator = MPI_COMM_NULL;  // MPI_COMM_NULL: one process
  // Slurm preemption (preemption.hpp): on SIGUSR1 or SIGTERM, at the next step boundary, rank 0
  // writes checkpoints/last.h5 and fit returns (preempted_by() says which); SIGUSR1 also
  // requeues the job, SIGTERM only when requeue_on_sigterm.
  bool handle_preemption = false;
  bool requeue_on_sigterm = false;
  std::string scontrol = "scontrol";
};

// Lightning's simple profiler: wall seconds per phase, summed over the run.
struct Profile {
  double data_wait = 0.0;         // waiting for the next batch
  double forward_backward = 0.0;  // training steps
  double reduce = 0.0;            // gradient averaging across ranks
  double optimizer = 0.0;         // accumulation scaling, clipping, the step, zeroing
  double evaluation = 0.0;        // validation and test steps
  double callbacks = 0.0;
  // Waiting for a GPU to finish queued training steps (their pending losses, the epoch's end):
  // on a GPU the training phases above count the time to queue work, this the time it took
  // beyond that (evaluation counts its own waiting).
  double device_wait = 0.0;
  std::int64_t optimizer_steps = 0;
  std::string describe() const;  // one line per phase, for the summary
};

// Hooks into the loop. Every rank calls every hook; a callback that writes files does so on
// rank 0 (trainer.is_root()) and decides on all ranks from the same reduced metrics.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_fit_start(Trainer&) {}
  virtual void on_fit_end(Trainer&) {}
  virtual void on_train_epoch_start(Trainer&) {}
  // After the epoch's training and (when due) validation: trainer.metrics() holds both.
  virtual void on_train_epoch_end(Trainer&) {}
  virtual void on_train_batch_end(Trainer&, const StepResult&) {}
  // After the gradients are averaged over the micro-batches and ranks and clipped, before the
  // optimizer uses them (Lightning's on_before_optimizer_step): global gradients, and
  // trainer.learning_rate() is the rate this step uses.
  virtual void on_before_optimizer_step(Trainer&) {}
  virtual void on_validation_end(Trainer&) {}
  virtual void on_exception(Trainer&, const std::exception&) {}
  // Callbacks that write files do not run under fast_dev_run.
  virtual bool writes_files() const { return false; }
  // Checkpointed state: a stable key ("" = stateless) and the state as text.
  virtual std::string state_key() const { return {}; }
  virtual std::string save_state() const { return {}; }
  virtual void load_state(const std::string& /*state*/) {}
};

class Trainer {
 public:
  explicit Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks = {});

  // Trains; `validation` may be null. resume_from: a checkpoint path, "last" (root_dir/
  // checkpoints/last.h5 when it exists, else a fresh start, as Lightning's ckpt_path="last"),
  // or empty.
  void fit(TrainableModule& module, BatchSource& train, BatchSource* validation = nullptr,
           const std::string& resume_from = {});
  // One pass over the (limited) source: "val_*" / "test_*" metrics, reduced over ranks.
  Metrics validate(TrainableModule& module, BatchSource& validation);
  Metrics test(TrainableModule& module, BatchSource& test);
  // The module's predict_step over the (limit_predict_batches) batches of `source`: this rank's
  // predictions, one tensor per batch, padding rows left out (Lightning's trainer.predict).
  std::vector<nn::Tensor> predict(TrainableModule& module, BatchSource& source);

  // Collective (every rank calls it): rank 0 writes a resumable checkpoint of the current state
  // (path.h5 plus path.h5.trainer.json beside it, both atomically, the sidecar first), with
  // every rank's partial epoch sums gathered into the sidecar; the other ranks write nothing.
  // Returns on every rank once both files are complete; if rank 0 fails to write them, every
  // rank throws rank 0's reason (std::runtime_error).
  void save_checkpoint(const std::filesystem::path& path);

  // During fit: the metrics reduced at the last epoch end / evaluation (train_*, val_*, test_*).
  const Metrics& metrics() const { return metrics_; }
  std::int64_t current_epoch() const { return current_epoch_; }
  std::int64_t global_step() const { return position_.step; }
  bool validated_this_epoch() const { return validated_this_epoch_; }
  // The epoch's training alone, for rates and timing tables (valid in on_train_epoch_end):
  // wall seconds from its first batch to its last optimizer step (data, steps, optimizer and
  // per-batch callbacks; validation, mid-epoch or at the end, not counted), and the batches in
  // them (fewer than an epoch's after a mid-epoch resume). Rank-local, not reduced.
  double epoch_train_seconds() const { return epoch_train_seconds_; }
  std::int64_t epoch_train_batches() const { return epoch_train_batches_; }
  // Wall seconds since this epoch's on_train_epoch_start hooks ran (validation included).
  double seconds_since_epoch_start() const;
  void request_stop() { should_stop_ = true; }
  bool should_stop() const { return should_stop_; }
  bool is_root() const { return rank_ == 0; }
  int rank() const { return rank_; }
  const TrainerOptions& options() const { return options_; }
  const Profile& profile() const { return profile_; }
  double learning_rate() const;
  // The module being fitted (null outside fit).
  TrainableModule* module() const { return module_; }
  std::filesystem::path checkpoint_dir() const { return options_.root_dir / "checkpoints"; }
  // Batches actually run so far in this fit (train only), for tests and summaries.
  std::int64_t train_batches_run() const { return train_batches_run_; }
  // During fit: training batches per epoch after the limits, and the index within the epoch
  // of the batch just trained (for progress reports).
  std::int64_t train_batches_per_epoch() const { return train_batches_per_epoch_; }
  std::int64_t batch_in_epoch() const { return batch_in_epoch_; }
  // After a fit that preemption ended: SIGUSR1 or SIGTERM (0 otherwise), and what became of the
  // requeue, in one sentence (rank 0; empty elsewhere).
  int preempted_by() const { return preempted_by_; }
  const std::string& requeue_message() const { return requeue_message_; }

 private:
  Metrics evaluate(TrainableModule& module, BatchSource& source, std::int64_t batches, const std::string& stage);
  void optimizer_step(TrainableModule& module, std::int64_t micro_batches);
  void resume(TrainableModule& module, const std::string& resume_from);
  // Collective at a step boundary: a non-finite step result on any rank (thrown on every
  // rank) and a pending preemption signal on any rank (returned: SIGUSR1, SIGTERM or 0).
  int agree_at_step_boundary(bool signals, const std::string& nonfinite);
  void checkpoint_for_preemption(int signal);
  void validate_during_fit(TrainableModule& module, BatchSource& validation, std::int64_t batches);
  const std::vector<Callback*>& active_callbacks() const;
  template <typename Hook>
  void call_back(Hook&& hook);

  TrainerOptions options_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::vector<Callback*> active_callbacks_;  // those that run (fast_dev_run skips file writers)
  int rank_ = 0;
  TrainableModule* module_ = nullptr;  // during fit
  nn::TrainingPosition position_;      // where a resumed run continues: epoch, steps, batches done
  std::int64_t current_epoch_ = 0;     // the epoch being trained, or that just ended
  MetricAccumulator epoch_sums_;
  Metrics metrics_;
  bool validated_this_epoch_ = false;
  std::chrono::steady_clock::time_point epoch_start_{};
  double epoch_train_seconds_ = 0.0;
  std::int64_t epoch_train_batches_ = 0;
  Metrics epoch_val_metrics_;  // the epoch's last validation
  bool should_stop_ = false;
  std::int64_t train_batches_run_ = 0;
  std::int64_t train_batches_per_epoch_ = 0;
  std::int64_t batch_in_epoch_ = 0;
  Profile profile_;
  int preempted_by_ = 0;
  std::string requeue_message_;
};

}  // namespace slurmlab::train
