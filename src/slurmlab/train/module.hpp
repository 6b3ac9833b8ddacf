#pragma once
// What the trainer trains (Lightning's LightningModule) and where its batches come from.
//
// Contract
//   Steps: training_step runs forward and backward on one batch and ADDS the gradient of the
//     batch's mean loss into Parameter::grad (the trainer zeroes, scales for accumulation,
//     reduces across ranks, clips and steps); validation_step and test_step only evaluate.
//     Every step returns sums, never means: StepResult{loss_sum, samples, sums}, so the
//     trainer can add them over batches and ranks and divide once (sum then divide: what
//     Lightning's sync_dist=True should give). A metric in `sums` is reported as its sum
//     over samples divided by the sample count: "accuracy" holds the number of correct rows.
//   Pending values: on a GPU a step's loss and sums may still be in the making when the step
//     returns (StepResult::complete set; no synchronisation per step, as PyTorch until .item());
//     whoever reads them calls resolved(), which waits for them. The sample count is always
//     known at once. The trainer reads them two steps late, at logging steps and at the ends
//     of epochs, so the GPU always has the next steps queued.
//   Ownership: NetworkModule and InMemoryBatchSource hold references/copies as noted per
//     class; the caller keeps the network, optimizer and reducer alive while they are used.
//   Threads: one thread drives a module and its sources.
//   Errors: a batch of the wrong shape fails in nn with its message (std::invalid_argument).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "slurmlab/data/batch_loader.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "slurmlab/data/sampler.hpp"
#include "slurmlab/nn/distributed/data_parallel.hpp"
#include "slurmlab/nn/layers/layer.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "slurmlab/nn/serialize/checkpoint.hpp"

namespace slurmlab::train {

// One rank's part of a global batch: inputs [n, ...], and either class labels (n of them) or
// regression targets [n, ...].
struct TrainBatch {
  nn::Tensor inputs;
  std::vector<std::int64_t> labels;
  // The same labels on the inputs' GPU, when the source put them there (DeviceBatchSource):
  // the loss reads them in place. Undefined: the host labels are used.
  nn::DeviceLabels device_labels;
  nn::Tensor targets;
  // Per-row loss weights [n] for modules with a weighted loss (FusedMlpModule); undefined: none.
  nn::Tensor weights;
  // The first `counted` rows are real samples; the rest repeat samples only to fill the last
  // global batch of an epoch (LastBatch::pad). -1: every row counts. Evaluation counts only
  // the real ones, so a metric over a padded epoch is the metric over the data set.
  std::int64_t counted = -1;
  std::int64_t samples() const { return inputs.defined() ? inputs.size(0) : 0; }
  std::int64_t counted_samples() const { return counted < 0 ? samples() : counted; }
};

// How many of this rank's rows of global batch `batch` are real samples rather than padding.
std::int64_t counted_rows(const data::ShardedSampler& sampler, std::int64_t batch);

struct StepResult {
  double loss_sum = 0.0;  // mean loss of the batch times its sample count
  std::int64_t samples = 0;
  std::map<std::string, double> sums;  // per-sample metric sums, reported as sum / samples
  // Set while loss_sum and sums are still being computed on a device: waits for them and
  // fills them in. Empty: the values are ready.
  std::function<void(StepResult&)> complete = nullptr;
  bool ready() const { return !complete; }
  // This result with its values waited for and filled in (a copy that is ready).
  StepResult resolved() const;
};

// Batches in a fixed order that is a pure function of the position (data::ShardedSampler's
// contract), so a resumed run sees exactly the batches an uninterrupted one sees.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual std::int64_t batches_per_epoch() const = 0;
  // Where next() continues.
  virtual void set_position(data::BatchPosition position) = 0;
  virtual TrainBatch next() = 0;
};

// Samples held in memory (tests, small tables), split into global batches by a ShardedSampler;
// this rank gets its slice. Copies the tensors' handles (tensors share storage).
class InMemoryBatchSource final : public BatchSource {
 public:
  // inputs [N, ...]; labels (N) for classification or targets [N, ...] for regression.
  InMemoryBatchSource(nn::Tensor inputs, std::vector<std::int64_t> labels, nn::Tensor targets,
                      data::ShardedSampler sampler);
  std::int64_t batches_per_epoch() const override { return sampler_.batches_per_epoch(); }
  void set_position(data::BatchPosition position) override { position_ = position; }
  TrainBatch next() override;

 private:
  nn::Tensor inputs_;
  std::vector<std::int64_t> labels_;
  nn::Tensor targets_;
  data::ShardedSampler sampler_;
  data::BatchPosition position_;
};

// data::BatchLoader (images and labels, prefetched by workers) as a batch source. The loader
// is borrowed; each batch is copied out of its ring slot into a tensor [n, C, H, W] on
// `device`. To a GPU from a loader with pinned_memory the copy is queued without waiting
// (the step's kernels follow it on nn's stream), and the slot is handed back to the loader
// only once the copy has read it (the next next() or set_position() waits for that); from
// ordinary memory it is a synchronous copy.
class LoaderBatchSource final : public BatchSource {
 public:
  explicit LoaderBatchSource(data::BatchLoader& loader, nn::Device device = nn::Device::cpu)
      : loader_(loader), device_(device) {}
  ~LoaderBatchSource() override;
  LoaderBatchSource(const LoaderBatchSource&) = delete;
  LoaderBatchSource& operator=(const LoaderBatchSource&) = delete;
  std::int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  void set_position(data::BatchPosition position) override;
  TrainBatch next() override;

 private:
  void wait_for_copies();  // before the loader may reuse the slot of the last batch
  data::BatchLoader& loader_;
  nn::Device device_;
  bool copy_pending_ = false;
};

// A data set resident on the GPU (data::DeviceImageSet: uploaded once, transformed there) as a
// batch source: the same batches as a BatchLoader over `dataset` with the set's transform,
// `sampler` and `seed` (indices, random crops and flips, labels, padding), but each batch's
// images are made by the set's kernel straight into a tensor on `device`, so a training step
// has no host decode and no host-to-device copy of images; the set also writes the labels
// beside them (TrainBatch::device_labels; the host labels come from `dataset`). On CUDA the
// kernel is queued on nn's stream (DeviceImageSet::enqueue_batch), so next() does not wait
// for the device: stream order keeps the allocator's reused blocks and the step that reads
// the batch in line. The set and the data set are borrowed.
class DeviceBatchSource final : public BatchSource {
 public:
  DeviceBatchSource(data::DeviceImageSet& set, const data::ImageDataset& dataset, data::ShardedSampler sampler,
                    std::uint64_t seed, nn::Device device);
  std::int64_t batches_per_epoch() const override { return sampler_.batches_per_epoch(); }
  void set_position(data::BatchPosition position) override { position_ = position; }
  TrainBatch next() override;

 private:
  data::DeviceImageSet& set_;
  const data::ImageDataset& dataset_;
  data::ShardedSampler sampler_;
  std::uint64_t seed_;
  nn::Device device_;
  data::BatchPosition position_;
  // The sampler's order of `order_epoch_`, computed once per epoch (as BatchLoader does).
  std::vector<std::int64_t> order_, indices_;
  std::int64_t order_epoch_ = -1;
};

class TrainableModule {
 public:
  virtual ~TrainableModule() = default;
  virtual StepResult training_step(const TrainBatch& batch) = 0;
  virtual StepResult validation_step(const TrainBatch& batch) = 0;
  virtual StepResult test_step(const TrainBatch& batch) { return validation_step(batch); }
  // Lightning's predict_step: the network's output in eval mode for the batch's real rows
  // (padding left out), on the CPU. Modules with another notion of a prediction override it.
  virtual nn::Tensor predict_step(const TrainBatch& batch);
  // Replaces each gradient by its mean over the ranks (nothing on one process).
  virtual void reduce_gradients() = 0;
  // Collective: gives every rank rank 0's buffers (BatchNorm running statistics, updated by
  // each rank from its own batches), as PyTorch DDP's broadcast_buffers; the trainer calls it
  // before every evaluation, so all ranks evaluate, and checkpoint, one state.
  virtual void synchronize_buffers() {}
  virtual nn::Layer& network() = 0;
  virtual nn::Optimizer& optimizer() = 0;
  // Random streams outside the network (augmentation...) that a checkpoint must carry.
  virtual nn::NamedGenerators generators() { return {}; }
  // True when training_step already applied the optimizer's update (a fused forward, backward
  // and optimizer pass, nn::FusedMlp): the trainer then neither accumulates, reduces, clips
  // nor steps, and refuses the options that would need it (UsageError).
  virtual bool steps_itself() const { return false; }
  // Before the trainer writes network() and optimizer() to a checkpoint, and after a resume
  // loaded them: a module whose live state is elsewhere (FusedMlpModule) copies it across.
  virtual void on_save_checkpoint() {}
  virtual void on_load_checkpoint() {}
  // Returns once the work the steps queued on a device is done (nothing on the CPU): the
  // trainer calls it before it takes an epoch's time, so a rate counts work done, not queued.
  virtual void wait_for_device() {}
};

enum class LossKind {
  softmax_cross_entropy,  // labels; also reports "accuracy"
  mse,                    // targets
};

// An nn network + loss + optimizer (+ gradient reducer: MpiGradientReducer, or the NCCL one,
// through the same interface). Borrows all three; the network's device is where its first
// parameter lives, and batches are moved there.
class NetworkModule final : public TrainableModule {
 public:
  // label_smoothing: softmax_cross_entropy's (0: none).
  NetworkModule(nn::Layer& network, nn::Optimizer& optimizer, LossKind loss, nn::GradientReducer* reducer = nullptr,
                double label_smoothing = 0.0);
  StepResult training_step(const TrainBatch& batch) override;
  StepResult validation_step(const TrainBatch& batch) override;
  void reduce_gradients() override;
  void synchronize_buffers() override;
  nn::Layer& network() override { return network_; }
  nn::Optimizer& optimizer() override { return optimizer_; }
  void wait_for_device() override;

 private:
  StepResult step(const TrainBatch& batch, nn::Mode mode);
  nn::Layer& network_;
  nn::Optimizer& optimizer_;
  LossKind loss_;
  nn::GradientReducer* reducer_;
  double label_smoothing_;
  nn::Device device_ = nn::Device::cpu;
};

}  // namespace slurmlab::train
