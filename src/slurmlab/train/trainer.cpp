#include "slurmlab/train/trainer.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/train/preemption.hpp"

namespace slurmlab::train {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the seconds since construction to `total` when it goes out of scope.
class PhaseTimer {
 public:
  explicit PhaseTimer(double& total) : total_(total), start_(Clock::now()) {}
  ~PhaseTimer() { total_ += std::chrono::duration<double>(Clock::now() - start_).count(); }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  double& total_;
  Clock::time_point start_;
};

// Every rank's `text`, in rank order, on rank 0 (empty elsewhere); just `text` on one process.
std::vector<std::string> gather_on_root(MPI_Comm communicator, const std::string& text) {
  if (communicator == MPI_COMM_NULL) return {text};
  int size = 1, rank = 0;
  MPI_Comm_size(communicator, &size);
  MPI_Comm_rank(communicator, &rank);
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  if (MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, communicator) != MPI_SUCCESS) {
    throw std::runtime_error("MPI_Gather of the epoch sums failed");
  }
  std::string all;
  if (rank == 0) {
    for (int r = 1; r < size; ++r)
      offsets[static_cast<std::size_t>(r)] =
          offsets[static_cast<std::size_t>(r - 1)] + lengths[static_cast<std::size_t>(r - 1)];
    all.resize(static_cast<std::size_t>(offsets.back() + lengths.back()));
  }
  if (MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0,
                  communicator) != MPI_SUCCESS) {
    throw std::runtime_error("MPI_Gatherv of the epoch sums failed");
  }
  std::vector<std::string> out;
  if (rank == 0) {
    for (int r = 0; r < size; ++r) {
      out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                               static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
    }
  }
  return out;
}

std::filesystem::path sidecar_of(const std::filesystem::path& checkpoint) {
  return checkpoint.string() + ".trainer.json";
}

}  // namespace

std::int64_t BatchLimit::resolve(std::int64_t available, const std::string& what) const {
  if (is_fraction) {
    if (!(value >= 0.0 && value <= 1.0)) {
      throw UsageError(what + " fraction must be in [0, 1], not " + std::to_string(value));
    }
    const auto batches = static_cast<std::int64_t>(std::floor(static_cast<double>(available) * value));
    if (batches == 0 && value > 0.0 && available > 0) {
      throw UsageError(what + " = " + std::to_string(value) + " of " + std::to_string(available) +
                       " batches leaves none; raise the fraction or give a batch count");
    }
    return batches;
  }
  if (value < 0.0 || value != std::floor(value)) {
    throw UsageError(what + " must be a whole number of batches, not " + std::to_string(value));
  }
  return std::min(available, static_cast<std::int64_t>(value));
}

std::string Profile::describe() const {
  std::ostringstream out;
  out.precision(3);
  out << std::fixed;
  out << "data wait         " << data_wait << " s\n"
      << "forward+backward  " << forward_backward << " s\n"
      << "gradient reduce   " << reduce << " s\n"
      << "optimizer         " << optimizer << " s (" << optimizer_steps << " steps)\n"
      << "evaluation        " << evaluation << " s\n"
      << "callbacks         " << callbacks << " s\n"
      << "device wait       " << device_wait << " s\n";
  return out.str();
}

Trainer::Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {
  if (options_.max_epochs < 1) throw UsageError("max_epochs must be at least 1 (max_steps may end the fit earlier)");
  if (options_.accumulate_grad_batches < 1) throw UsageError("accumulate_grad_batches must be at least 1");
  if (options_.check_val_every_n_epoch < 1) throw UsageError("check_val_every_n_epoch must be at least 1");
  if (options_.fast_dev_run < 0) throw UsageError("fast_dev_run must be 0 (off) or a number of batches");
  if (options_.val_check_interval < 0)
    throw UsageError("val_check_interval must be 0 (epoch ends) or a number of batches");
  if (options_.gradient_clip_norm && !(*options_.gradient_clip_norm > 0.0)) {
    throw UsageError("gradient_clip_norm must be positive");
  }
  if (options_.gradient_clip_value && !(*options_.gradient_clip_value > 0.0)) {
    throw UsageError("gradient_clip_value must be positive");
  }
  if (options_.fast_dev_run > 0) {
    // Lightning's meaning: N batches of each stage, one epoch, then stop.
    const auto n = options_.fast_dev_run;
    options_.max_epochs = 1;
    options_.max_steps = -1;
    options_.check_val_every_n_epoch = 1;
    options_.val_check_interval = 0;
    options_.overfit_batches = BatchLimit::count(0);
    options_.limit_train_batches = options_.limit_val_batches = options_.limit_test_batches =
        options_.limit_predict_batches = BatchLimit::count(n);
  }
  if (options_.communicator != MPI_COMM_NULL) MPI_Comm_rank(options_.communicator, &rank_);
  // Computed once: hooks run several times per step, and a list per call would allocate.
  for (const auto& c : callbacks_) {
    if (options_.fast_dev_run == 0 || !c->writes_files()) active_callbacks_.push_back(c.get());
  }
}

double Trainer::seconds_since_epoch_start() const {
  return std::chrono::duration<double>(Clock::now() - epoch_start_).count();
}

double Trainer::learning_rate() const {
  return module_ ? module_->optimizer().learning_rate() : 0.0;
}

const std::vector<Callback*>& Trainer::active_callbacks() const {
  return active_callbacks_;
}

template <typename Hook>
void Trainer::call_back(Hook&& hook) {
  PhaseTimer timer(profile_.callbacks);
  for (Callback* c : active_callbacks()) hook(*c);
}

void Trainer::optimizer_step(TrainableModule& module, std::int64_t micro_batches) {
  if (module.steps_itself()) {
    // The update happened in training_step (options that would act between were refused).
    call_back([&](Callback& c) { c.on_before_optimizer_step(*this); });
    ++position_.step;
    ++profile_.optimizer_steps;
    return;
  }
  auto& optimizer = module.optimizer();
  const auto& parameters = optimizer.parameters();
  {
    // Each micro-batch added the gradient of its mean loss: their mean is the gradient of
    // the mean over the larger batch (equal micro-batches), as in Lightning.
    PhaseTimer timer(profile_.optimizer);
    if (micro_batches > 1) {
      nn::scale_gradients(parameters, 1.0f / static_cast<float>(micro_batches));
    }
  }
  {
    PhaseTimer timer(profile_.reduce);
    module.reduce_gradients();
  }
  {
    PhaseTimer timer(profile_.optimizer);
    if (options_.gradient_clip_value) nn::clamp_gradients(parameters, static_cast<float>(*options_.gradient_clip_value));
    if (options_.gradient_clip_norm) nn::clip_gradient_norm(parameters, *options_.gradient_clip_norm);
    if (options_.schedule && options_.schedule_interval == ScheduleInterval::step) {
      optimizer.set_learning_rate(options_.schedule->at(position_.step));
    }
  }
  call_back([&](Callback& c) { c.on_before_optimizer_step(*this); });  // timed as callbacks
  PhaseTimer timer(profile_.optimizer);
  optimizer.step_and_zero_grad();
  ++position_.step;
  ++profile_.optimizer_steps;
}

Metrics Trainer::evaluate(TrainableModule& module, BatchSource& source, std::int64_t batches,
                          const std::string& stage) {
  module.synchronize_buffers();
  MetricAccumulator sums;
  source.set_position({0, 0});
  for (std::int64_t b = 0; b < batches; ++b) {
    TrainBatch batch;
    {
      PhaseTimer timer(profile_.data_wait);
      batch = source.next();
    }
    StepResult result;
    {
      PhaseTimer timer(profile_.evaluation);
      result = stage == "test" ? module.test_step(batch) : module.validation_step(batch);
    }
    PhaseTimer timer(profile_.evaluation);  // waiting for a GPU's evaluation is evaluation
    sums.add(result);
  }
  profile_.evaluation += sums.settle();
  return sums.reduce(options_.communicator, stage);
}

Metrics Trainer::validate(TrainableModule& module, BatchSource& validation) {
  auto m = evaluate(module, validation,
                    options_.limit_val_batches.resolve(validation.batches_per_epoch(), "limit_val_batches"), "val");
  for (const auto& [k, v] : m) metrics_[k] = v;
  return m;
}

Metrics Trainer::test(TrainableModule& module, BatchSource& test) {
  auto m = evaluate(module, test, options_.limit_test_batches.resolve(test.batches_per_epoch(), "limit_test_batches"),
                    "test");
  for (const auto& [k, v] : m) metrics_[k] = v;
  return m;
}

std::vector<nn::Tensor> Trainer::predict(TrainableModule& module, BatchSource& source) {
  const auto batches = options_.limit_predict_batches.resolve(source.batches_per_epoch(), "limit_predict_batches");
  module.synchronize_buffers();
  source.set_position({0, 0});
  std::vector<nn::Tensor> predictions;
  for (std::int64_t b = 0; b < batches; ++b) {
    TrainBatch batch;
    {
      PhaseTimer timer(profile_.data_wait);
      batch = source.next();
    }
    PhaseTimer timer(profile_.evaluation);
    predictions.push_back(module.predict_step(batch));
  }
  return predictions;
}

void Trainer::validate_during_fit(TrainableModule& module, BatchSource& validation, std::int64_t batches) {
  epoch_val_metrics_ = evaluate(module, validation, batches, "val");
  for (const auto& [k, v] : epoch_val_metrics_) metrics_[k] = v;
  validated_this_epoch_ = true;
  call_back([&](Callback& c) { c.on_validation_end(*this); });
}

void Trainer::save_checkpoint(const std::filesystem::path& path) {
  if (!module_) throw std::logic_error("Trainer::save_checkpoint outside fit");
  // Every rank's partial epoch sums go along (a resumed rank continues its own), gathered
  // on rank 0; rank 0's weights and buffers are every rank's (synchronized before use).
  const auto sums = gather_on_root(options_.communicator, epoch_sums_.serialize());
  std::string failure;
  if (is_root()) {
    try {
      module_->on_save_checkpoint();
      nlohmann::json sidecar;
      sidecar["epoch"] = position_.epoch;
      sidecar["step"] = position_.step;
      sidecar["data_position"] = position_.data_position;
      sidecar["epoch_sums_by_rank"] = sums;
      nlohmann::json states = nlohmann::json::object();
      for (const auto& c : callbacks_) {
        if (!c->state_key().empty()) states[c->state_key()] = c->save_state();
      }
      sidecar["callbacks"] = states;
      io::make_output_directory(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
      // The sidecar first: a checkpoint file never exists without the state that goes with it,
      // and load checks that both name the same step.
      io::write_file_atomically(sidecar_of(path), sidecar.dump(2));
      nn::save_checkpoint(path, module_->network(), &module_->optimizer(), position_, module_->generators());
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  // Every rank returns once the files are complete (any rank may read them next), or throws
  // rank 0's reason: no rank waits for, or reads, a checkpoint that was not written.
  if (options_.communicator != MPI_COMM_NULL) {
    int length = static_cast<int>(failure.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, options_.communicator);
    failure.resize(static_cast<std::size_t>(length));
    if (length > 0) MPI_Bcast(failure.data(), length, MPI_CHAR, 0, options_.communicator);
  }
  if (!failure.empty()) throw std::runtime_error(failure);
}

void Trainer::resume(TrainableModule& module, const std::string& resume_from) {
  std::filesystem::path path = resume_from;
  if (resume_from == "last") {
    path = checkpoint_dir() / "last.h5";
    if (!std::filesystem::exists(path)) return;  // nothing to resume: a fresh start
  }
  // A checkpoint without trainer state is refused before anything is restored.
  std::ifstream in(sidecar_of(path));
  if (!in) {
    throw std::runtime_error("checkpoint " + path.string() + " has no trainer state beside it (" +
                             sidecar_of(path).string() + "); it cannot resume a fit");
  }
  position_ = nn::load_checkpoint(path, module.network(), &module.optimizer(), module.generators());
  module.on_load_checkpoint();
  const auto sidecar = nlohmann::json::parse(in);
  if (sidecar.at("step").get<std::int64_t>() != position_.step ||
      sidecar.at("epoch").get<std::int64_t>() != position_.epoch ||
      sidecar.at("data_position").get<std::int64_t>() != position_.data_position) {
    throw std::runtime_error("trainer state " + sidecar_of(path).string() + " belongs to another checkpoint than " +
                             path.string() + " (steps differ)");
  }
  // Each rank its own partial sums; on another rank count, rank 0 carries all of them.
  const auto sums = sidecar.at("epoch_sums_by_rank").get<std::vector<std::string>>();
  int size = 1;
  if (options_.communicator != MPI_COMM_NULL) MPI_Comm_size(options_.communicator, &size);
  epoch_sums_.clear();
  if (static_cast<int>(sums.size()) == size) {
    epoch_sums_.deserialize(sums.at(static_cast<std::size_t>(rank_)));
  } else if (is_root()) {
    for (const auto& text : sums) {
      MetricAccumulator part;
      part.deserialize(text);
      epoch_sums_.add(part.totals());
    }
  }
  const auto& states = sidecar.at("callbacks");
  for (const auto& c : callbacks_) {
    if (!c->state_key().empty() && states.contains(c->state_key())) {
      c->load_state(states.at(c->state_key()).get<std::string>());
    }
  }
}

int Trainer::agree_at_step_boundary(bool signals, const std::string& nonfinite) {
  // One allreduce (MPI_MAX) for both questions: was any rank signalled (SIGUSR1, SIGTERM), and
  // which is the first rank whose steps gave a non-finite value (as -rank; -INT_MAX: none).
  const int signal = signals ? PreemptionHandler::pending() : 0;
  int agreed[3] = {signal == SIGUSR1 ? 1 : 0, signal == SIGTERM ? 1 : 0,
                   nonfinite.empty() ? -std::numeric_limits<int>::max() : -rank_};
  if (options_.communicator != MPI_COMM_NULL) {
    if (MPI_Allreduce(MPI_IN_PLACE, agreed, 3, MPI_INT, MPI_MAX, options_.communicator) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Allreduce of the step-boundary checks failed");
    }
  }
  if (agreed[2] != -std::numeric_limits<int>::max()) {
    // The first rank that saw it tells the others what it saw, so every rank says the same.
    const int first = -agreed[2];
    std::array<char, 200> what{};
    if (rank_ == first) nonfinite.copy(what.data(), what.size() - 1);
    if (options_.communicator != MPI_COMM_NULL) {
      MPI_Bcast(what.data(), static_cast<int>(what.size()), MPI_CHAR, first, options_.communicator);
    }
    throw std::runtime_error(std::string(what.data()) + " on rank " + std::to_string(first) + " before step " +
                             std::to_string(position_.step + 1) + " (epoch " + std::to_string(position_.epoch) +
                             "): training stopped on every rank (stop_on_nonfinite_loss); lower the learning rate, "
                             "clip the gradients or check the data");
  }
  return agreed[0] ? SIGUSR1 : (agreed[1] ? SIGTERM : 0);
}

void Trainer::checkpoint_for_preemption(int signal) {
  preempted_by_ = signal;
  const auto path = checkpoint_dir() / "last.h5";
  save_checkpoint(path);
  if (is_root()) {
    if (preempted_by_ == SIGUSR1 || options_.requeue_on_sigterm) {
      requeue_message_ =
          requeue_job(requeue_job_id(cluster::SlurmEnvironment::from(cluster::Environment::from_process())),
                      options_.scontrol)
              .message;
    } else {
      requeue_message_ = "not requeued (SIGTERM; set requeue_on_sigterm to requeue)";
    }
    // One write: slurmstepd writes its own "CANCELLED ... DUE TO JOB REQUEUE" line into the same
    // task output file at this moment, and must not land inside ours.
    const std::string line = std::string("preempted by ") + (preempted_by_ == SIGUSR1 ? "SIGUSR1" : "SIGTERM") +
                             " at step " + std::to_string(position_.step) + ": checkpoint " + path.string() +
                             " written; " + requeue_message_ + "\n";
    std::cerr << line << std::flush;
  }
}

void Trainer::fit(TrainableModule& module, BatchSource& train, BatchSource* validation,
                  const std::string& resume_from) {
  module_ = &module;
  position_ = {};
  current_epoch_ = 0;
  epoch_sums_.clear();
  metrics_.clear();
  epoch_val_metrics_.clear();
  should_stop_ = false;
  train_batches_run_ = 0;
  batch_in_epoch_ = 0;
  preempted_by_ = 0;
  requeue_message_.clear();
  std::optional<PreemptionHandler> preemption;
  if (options_.handle_preemption && options_.fast_dev_run == 0) {
    preemption.emplace();
    PreemptionHandler::clear();
  }
  // The step-boundary allreduce happens only when something needs it: it costs a collective.
  const bool agree_at_steps = preemption.has_value() || options_.stop_on_nonfinite_loss;
  try {
    if (module.steps_itself() &&
        (options_.accumulate_grad_batches > 1 || options_.gradient_clip_norm || options_.gradient_clip_value ||
         (options_.schedule && options_.schedule_interval == ScheduleInterval::step))) {
      throw UsageError(
          "this module applies its optimizer step inside training_step (fused), so the trainer cannot accumulate, "
          "clip or schedule per step for it; drop accumulate_grad_batches, gradient clipping and per-step schedules");
    }
    if (!resume_from.empty() && options_.fast_dev_run == 0) resume(module, resume_from);
    module.optimizer().zero_grad();
    const auto overfit = options_.overfit_batches.resolve(train.batches_per_epoch(), "overfit_batches");
    // overfit_batches: the first batches of epoch 0 every epoch, validated on themselves.
    const auto per_epoch =
        overfit > 0 ? overfit : options_.limit_train_batches.resolve(train.batches_per_epoch(), "limit_train_batches");
    BatchSource* val_source = overfit > 0 ? &train : validation;
    const auto val_batches =
        !val_source   ? 0
        : overfit > 0 ? overfit
                      : options_.limit_val_batches.resolve(val_source->batches_per_epoch(), "limit_val_batches");
    if (options_.val_check_interval > per_epoch) {
      throw UsageError("val_check_interval " + std::to_string(options_.val_check_interval) + " exceeds the " +
                       std::to_string(per_epoch) + " training batches of an epoch; lower it");
    }
    train_batches_per_epoch_ = per_epoch;
    call_back([&](Callback& c) { c.on_fit_start(*this); });
    const auto steps_done = [&] { return options_.max_steps >= 0 && position_.step >= options_.max_steps; };
    while (position_.epoch < options_.max_epochs && !should_stop_ && !steps_done()) {
      if (options_.schedule && options_.schedule_interval == ScheduleInterval::epoch) {
        module.optimizer().set_learning_rate(options_.schedule->at(position_.epoch));
      }
      validated_this_epoch_ = false;
      epoch_val_metrics_.clear();
      current_epoch_ = position_.epoch;
      const bool validation_due = val_source && (position_.epoch + 1) % options_.check_val_every_n_epoch == 0;
      if (position_.data_position == 0) epoch_sums_.clear();
      call_back([&](Callback& c) { c.on_train_epoch_start(*this); });
      epoch_start_ = Clock::now();
      epoch_train_batches_ = 0;
      double mid_epoch_validation = 0.0;  // seconds, left out of epoch_train_seconds_
      const std::int64_t source_epoch = overfit > 0 ? 0 : position_.epoch;
      train.set_position({source_epoch, position_.data_position});
      std::int64_t pending = 0;
      bool stopped_mid_epoch = false;
      std::string nonfinite;  // the first non-finite value since the last step, in words
      for (std::int64_t b = position_.data_position; b < per_epoch; ++b) {
        batch_in_epoch_ = b;
        TrainBatch batch;
        {
          PhaseTimer timer(profile_.data_wait);
          batch = train.next();
        }
        StepResult result;
        {
          PhaseTimer timer(profile_.forward_backward);
          result = module.training_step(batch);
        }
        if (options_.stop_on_nonfinite_loss && !result.ready()) {
          // The check needs the values before the optimizer step: wait for them (one
          // synchronisation per step, the price of this option on a GPU).
          PhaseTimer timer(profile_.device_wait);
          result = result.resolved();
        }
        if (options_.stop_on_nonfinite_loss && nonfinite.empty()) {
          std::ostringstream what;
          if (!std::isfinite(result.loss_sum)) {
            what << "train_loss is "
                 << result.loss_sum / static_cast<double>(std::max<std::int64_t>(result.samples, 1));
          }
          for (const auto& [name, value] : result.sums) {
            if (what.tellp() == 0 && !std::isfinite(value)) what << "train_" << name << " is " << value;
          }
          if (what.tellp() > 0) nonfinite = what.str() + " at batch " + std::to_string(b) + " of the epoch";
        }
        {
          PhaseTimer timer(profile_.device_wait);
          epoch_sums_.add(result);
        }
        ++train_batches_run_;
        ++epoch_train_batches_;
        ++pending;
        call_back([&](Callback& c) { c.on_train_batch_end(*this, result); });
        if (pending == options_.accumulate_grad_batches || b + 1 == per_epoch) {
          const int signal = agree_at_steps ? agree_at_step_boundary(preemption.has_value(), nonfinite) : 0;
          optimizer_step(module, pending);
          pending = 0;
          position_.data_position = b + 1;
          if (steps_done() && b + 1 < per_epoch) {
            stopped_mid_epoch = true;
            break;
          }
          // Even at the epoch's last batch: the resumed run then does the epoch's end.
          if (signal != 0) {
            checkpoint_for_preemption(signal);
            stopped_mid_epoch = true;
            break;
          }
        }
        if (validation_due && options_.val_check_interval > 0 && (b + 1) % options_.val_check_interval == 0) {
          PhaseTimer timer(mid_epoch_validation);
          validate_during_fit(module, *val_source, val_batches);
          // The validation may have read this very source; after the epoch's last batch the next
          // epoch positions it (a loader has no position past an epoch's end).
          if (b + 1 < per_epoch) train.set_position({source_epoch, b + 1});
        }
      }
      {
        // The epoch's time counts the work done, not only queued (a GPU may still be running
        // its last steps).
        PhaseTimer timer(profile_.device_wait);
        module.wait_for_device();
        epoch_sums_.settle();
      }
      epoch_train_seconds_ = std::chrono::duration<double>(Clock::now() - epoch_start_).count() - mid_epoch_validation;
      if (stopped_mid_epoch) break;  // max_steps or preemption: the epoch's end has not been reached
      metrics_ = epoch_sums_.reduce(options_.communicator, "train");
      if (validation_due && options_.val_check_interval == 0) validate_during_fit(module, *val_source, val_batches);
      for (const auto& [k, v] : epoch_val_metrics_) metrics_[k] = v;
      // The epoch is complete: a checkpoint taken from here on resumes at the next one, while
      // callbacks still name the epoch that ended (current_epoch(), as in Lightning's hooks).
      ++position_.epoch;
      position_.data_position = 0;
      epoch_sums_.clear();
      call_back([&](Callback& c) { c.on_train_epoch_end(*this); });
    }
    call_back([&](Callback& c) { c.on_fit_end(*this); });
  } catch (const std::exception& e) {
    for (Callback* c : active_callbacks()) c->on_exception(*this, e);
    module_ = nullptr;
    throw;
  }
  module_ = nullptr;
}

}  // namespace slurmlab::train
