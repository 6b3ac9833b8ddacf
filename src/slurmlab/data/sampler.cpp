#include "slurmlab/data/sampler.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/random_stream.hpp"

namespace slurmlab::data {

const char* to_string(LastBatch last_batch) {
  return last_batch == LastBatch::drop ? "drop" : "pad";
}

ShardedSampler::ShardedSampler(std::int64_t dataset_size, std::int64_t global_batch, int world_size, int rank,
                               std::uint64_t seed, LastBatch last_batch, bool shuffle)
    : size_(dataset_size),
      global_batch_(global_batch),
      world_size_(world_size),
      rank_(rank),
      seed_(seed),
      last_batch_(last_batch),
      shuffle_(shuffle) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw std::invalid_argument("ShardedSampler: bad rank/world size");
  if (dataset_size < 1) throw UsageError("the data set to sample holds no samples; check the data set and the split.");
  if (global_batch < 1 || global_batch % world_size != 0) {
    throw UsageError("global batch size " + std::to_string(global_batch) + " does not divide among " +
                     std::to_string(world_size) + " ranks; choose a multiple of the number of tasks (--batch-size).");
  }
  if (last_batch == LastBatch::drop && global_batch > dataset_size) {
    throw UsageError("global batch size " + std::to_string(global_batch) + " exceeds the " +
                     std::to_string(dataset_size) + " samples of the data set; lower --batch-size.");
  }
}

ShardedSampler::ShardedSampler(std::vector<std::int64_t> indices, std::int64_t global_batch, int world_size, int rank,
                               std::uint64_t seed, LastBatch last_batch, bool shuffle)
    : ShardedSampler(static_cast<std::int64_t>(indices.size()), global_batch, world_size, rank, seed, last_batch,
                     shuffle) {
  indices_ = std::move(indices);
}

std::int64_t ShardedSampler::batches_per_epoch() const {
  return last_batch_ == LastBatch::drop ? size_ / global_batch_ : (size_ + global_batch_ - 1) / global_batch_;
}

std::vector<std::int64_t> ShardedSampler::epoch_order(std::int64_t epoch) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size_));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle_) {
    // A generator per epoch (seed and epoch mixed by splitmix64), so resuming at any epoch
    // reproduces the order without replaying earlier ones.
    std::mt19937_64 engine(splitmix64(seed_ + 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(epoch + 1)));
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[uniform_below(engine, i)]);
  }
  if (!indices_.empty()) {
    for (auto& position : order) position = indices_[static_cast<std::size_t>(position)];
  }
  return order;
}

void ShardedSampler::local_indices(std::span<const std::int64_t> epoch_order, std::int64_t batch,
                                   std::span<std::int64_t> out) const {
  if (batch < 0 || batch >= batches_per_epoch()) {
    throw std::out_of_range("batch " + std::to_string(batch) + " outside the " + std::to_string(batches_per_epoch()) +
                            " batches of an epoch");
  }
  if (static_cast<std::int64_t>(epoch_order.size()) != size_ ||
      static_cast<std::int64_t>(out.size()) != local_batch()) {
    throw std::invalid_argument("ShardedSampler::local_indices: wrong order or output size");
  }
  const auto begin = batch * global_batch_ + rank_ * local_batch();
  // Positions past the end wrap to the start of the order (pad), as DistributedSampler pads.
  for (std::int64_t i = 0; i < local_batch(); ++i)
    out[static_cast<std::size_t>(i)] = epoch_order[static_cast<std::size_t>((begin + i) % size_)];
}

std::vector<std::int64_t> ShardedSampler::local_indices(std::int64_t epoch, std::int64_t batch) const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(local_batch()));
  if (batch < 0 || batch >= batches_per_epoch()) {
    throw std::out_of_range("batch " + std::to_string(batch) + " outside the " + std::to_string(batches_per_epoch()) +
                            " batches of an epoch");
  }
  const auto order = epoch_order(epoch);
  local_indices(order, batch, out);
  return out;
}

BatchPosition ShardedSampler::next(BatchPosition position) const {
  return position.batch + 1 < batches_per_epoch() ? BatchPosition{position.epoch, position.batch + 1}
                                                  : BatchPosition{position.epoch + 1, 0};
}

BatchPosition ShardedSampler::position_of_step(std::int64_t step) const {
  return {step / batches_per_epoch(), step % batches_per_epoch()};
}

std::int64_t ShardedSampler::step_of(BatchPosition position) const {
  return position.epoch * batches_per_epoch() + position.batch;
}

}  // namespace slurmlab::data
