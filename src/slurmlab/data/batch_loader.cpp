#include "slurmlab/data/batch_loader.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"

namespace slurmlab::data {

struct BatchLoader::Slot {
  std::vector<float> images;  // or, with pinned_memory, `pinned`
  PinnedFloats pinned;
  std::vector<std::int64_t> labels, indices;
  Batch batch;
  std::int64_t sequence = -1;  // the batch this slot holds or is being loaded with
  std::int64_t remaining = 0;  // chunks not yet loaded
  bool ready = false;
  std::exception_ptr error;  // of the first failing chunk (by sample order)
  std::int64_t error_begin = 0;
};

struct BatchLoader::Task {
  Slot* slot = nullptr;
  std::int64_t begin = 0, end = 0, generation = 0;
};

BatchLoader::BatchLoader(const ImageDataset& dataset, ShardedSampler sampler, ImageTransform transform,
                         BatchLoaderOptions options, BatchPosition start)
    : dataset_(dataset),
      sampler_(std::move(sampler)),
      transform_(std::move(transform)),
      options_(options),
      local_batch_(sampler_.local_batch()) {
  if (options_.workers < 0) {
    throw UsageError("--workers " + std::to_string(options_.workers) +
                     " is negative; give 0 (load on the main "
                     "thread) or more background threads.");
  }
  if (options_.prefetch_batches < 0) {
    throw UsageError("--prefetch " + std::to_string(options_.prefetch_batches) +
                     " is negative; give 1 or more batches.");
  }
  if (dataset_.channels() != transform_.output_shape().channels) {
    throw std::invalid_argument("BatchLoader: the transform was made for " +
                                std::to_string(transform_.output_shape().channels) + " channels, the data set has " +
                                std::to_string(dataset_.channels()));
  }
  const int slots = options_.workers == 0           ? 1
                    : options_.prefetch_batches > 0 ? options_.prefetch_batches
                                                    : std::max(2, 2 * options_.workers);
  // Chunks small enough to share a batch among the workers, large enough that the lock is rare.
  chunk_ = std::min<std::int64_t>(local_batch_, 16);
  const auto floats = static_cast<std::size_t>(local_batch_ * transform_.output_floats());
  for (int s = 0; s < slots; ++s) {
    auto slot = std::make_unique<Slot>();
    float* images = nullptr;
    if (options_.pinned_memory) {
      slot->pinned = allocate_pinned_floats(floats);
      images = slot->pinned.get();
    } else {
      slot->images.resize(floats);
      images = slot->images.data();
    }
    slot->labels.resize(static_cast<std::size_t>(local_batch_));
    slot->indices.resize(static_cast<std::size_t>(local_batch_));
    slot->batch.size = local_batch_;
    slot->batch.shape = transform_.output_shape();
    slot->batch.images = std::span<const float>(images, floats);
    slot->batch.labels = slot->labels;
    slot->batch.indices = slot->indices;
    slots_.push_back(std::move(slot));
  }
  workspaces_.resize(static_cast<std::size_t>(std::max(1, options_.workers)));
  start_step_ = sampler_.step_of(start);
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& thread : threads_) thread.join();
}

BatchPosition BatchLoader::position_of(std::int64_t sequence) const {
  return sampler_.position_of_step(start_step_ + sequence);
}

BatchPosition BatchLoader::position() const {
  std::lock_guard lock(mutex_);
  return position_of(consumed_);
}

const std::vector<std::int64_t>& BatchLoader::order_of(std::int64_t epoch) {
  if (order_epoch_ != epoch) {
    order_ = sampler_.epoch_order(epoch);
    order_epoch_ = epoch;
  }
  return order_;
}

void BatchLoader::prepare(Slot& slot, std::int64_t sequence) {
  const auto position = position_of(sequence);
  sampler_.local_indices(order_of(position.epoch), position.batch, slot.indices);
  slot.sequence = sequence;
  slot.remaining = (local_batch_ + chunk_ - 1) / chunk_;
  slot.ready = false;
  slot.error = nullptr;
  slot.batch.epoch = position.epoch;
  slot.batch.batch = position.batch;
}

void BatchLoader::load_samples(Slot& slot, std::int64_t begin, std::int64_t end, TransformWorkspace& workspace) const {
  const auto floats = transform_.output_floats();
  for (std::int64_t i = begin; i < end; ++i) {
    const auto index = slot.indices[static_cast<std::size_t>(i)];
    slot.labels[static_cast<std::size_t>(i)] = dataset_.label(index);
    const ImageView image = dataset_.image(index, workspace.image_scratch);
    // The slot's own buffer (batch.images is its read-only view).
    auto* images = slot.pinned ? slot.pinned.get() : slot.images.data();
    transform_.apply(image, options_.seed, slot.batch.epoch, index, images + i * floats, workspace);
  }
}

bool BatchLoader::claim(Task& task) {
  const auto window = static_cast<std::int64_t>(slots_.size());
  // The slot of the batch the consumer holds is not free until its next next().
  if (next_sequence_ >= consumed_ - (holding_ ? 1 : 0) + window) return false;
  Slot& slot = *slots_[static_cast<std::size_t>(next_sequence_ % window)];
  if (next_chunk_ == 0) prepare(slot, next_sequence_);
  task = {&slot, next_chunk_ * chunk_, std::min(local_batch_, (next_chunk_ + 1) * chunk_), generation_};
  if (task.end == local_batch_) {
    ++next_sequence_;
    next_chunk_ = 0;
  } else {
    ++next_chunk_;
  }
  return true;
}

void BatchLoader::worker_loop(int worker) {
  auto& workspace = workspaces_[static_cast<std::size_t>(worker)];
  std::unique_lock lock(mutex_);
  for (;;) {
    Task task;
    work_ready_.wait(lock, [&] { return stop_ || claim(task); });
    if (stop_) return;
    ++busy_;
    lock.unlock();
    std::exception_ptr error;
    try {
      load_samples(*task.slot, task.begin, task.end, workspace);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    --busy_;
    if (task.generation == generation_) {
      Slot& slot = *task.slot;
      if (error && (!slot.error || task.begin < slot.error_begin)) {
        slot.error = error;
        slot.error_begin = task.begin;
      }
      if (--slot.remaining == 0) {
        slot.ready = true;
        batch_ready_.notify_all();
      }
    }
    if (busy_ == 0) idle_.notify_all();
  }
}

const Batch& BatchLoader::next() {
  if (threads_.empty()) {
    // Synchronous: load the batch here; an exception leaves the position where it was.
    Slot& slot = *slots_.front();
    prepare(slot, consumed_);
    load_samples(slot, 0, local_batch_, workspaces_.front());
    ++consumed_;
    return slot.batch;
  }
  std::unique_lock lock(mutex_);
  if (holding_) {
    holding_ = false;
    work_ready_.notify_all();
  }
  Slot& slot = *slots_[static_cast<std::size_t>(consumed_ % static_cast<std::int64_t>(slots_.size()))];
  batch_ready_.wait(lock, [&] { return slot.sequence == consumed_ && slot.ready; });
  if (slot.error) std::rethrow_exception(slot.error);
  ++consumed_;
  holding_ = true;
  return slot.batch;
}

void BatchLoader::set_position(BatchPosition position) {
  if (position.epoch < 0 || position.batch < 0 || position.batch >= sampler_.batches_per_epoch()) {
    throw std::out_of_range("BatchLoader::set_position: batch " + std::to_string(position.batch) + " of epoch " +
                            std::to_string(position.epoch) + " is outside the " +
                            std::to_string(sampler_.batches_per_epoch()) + " batches of an epoch");
  }
  std::unique_lock lock(mutex_);
  ++generation_;
  // Chunks in flight write into slots about to be reused: let them finish (their results are dropped).
  idle_.wait(lock, [&] { return busy_ == 0; });
  start_step_ = sampler_.step_of(position);
  consumed_ = next_sequence_ = next_chunk_ = 0;
  holding_ = false;
  for (auto& slot : slots_) {
    slot->sequence = -1;
    slot->ready = false;
    slot->error = nullptr;
  }
  work_ready_.notify_all();
}

}  // namespace slurmlab::data
