#pragma once
// ShardedSampler: which samples each rank loads for every global batch, with the semantics of
// torch.utils.data.DistributedSampler (per-epoch shuffle seeded identically on every rank, a
// slice per rank) applied per global batch, so the global batch, and therefore the training
// run, does not depend on how many ranks share it.
//
// Contract
//   Order: each epoch the sampled positions 0..size()-1 are shuffled with a generator seeded by
//     (seed, epoch) alone (splitmix64 of both, then std::mt19937_64 and an unbiased
//     Fisher-Yates), the same on every rank, thread and standard library. Global batch b is
//     positions [b*B, (b+1)*B) of that order; rank r takes the contiguous slice
//     [r*B/R, (r+1)*B/R). Positions map to data set indices through the optional index list
//     (a split's training part), else they are the data set indices.
//   Last partial batch: chosen explicitly, never by default. LastBatch::drop drops the last
//     incomplete global batch (and requires B <= size). LastBatch::pad completes it by
//     repeating the epoch's order from its start (cyclically, as DistributedSampler pads), so
//     every sample is seen at least once and padded_samples() of them twice.
//   Resume: the sampler is stateless, a pure function of (epoch, batch): a run resumed at
//     BatchPosition{e, b} sees exactly the batches an uninterrupted run sees from there.
//   Errors: a global batch that does not divide by the rank count, or (drop) exceeds the data
//     set, throws slurmlab::UsageError naming the numbers and the fix (--batch-size). A batch
//     outside the epoch is a programming error: std::out_of_range.
//   Threads: immutable after construction; all members are const and thread-safe.
#include <cstdint>
#include <span>
#include <vector>

namespace slurmlab::data {

enum class LastBatch { drop, pad };
const char* to_string(LastBatch last_batch);

// Where a run stands: the next batch to load is `batch` of `epoch` (both from 0).
struct BatchPosition {
  std::int64_t epoch = 0;
  std::int64_t batch = 0;
  friend bool operator==(const BatchPosition&, const BatchPosition&) = default;
};

class ShardedSampler {
 public:
  // Samples the data set indices 0..dataset_size-1.
  ShardedSampler(std::int64_t dataset_size, std::int64_t global_batch, int world_size, int rank, std::uint64_t seed,
                 LastBatch last_batch, bool shuffle = true);
  // Samples the given data set indices (a split's part); position i stands for indices[i].
  ShardedSampler(std::vector<std::int64_t> indices, std::int64_t global_batch, int world_size, int rank,
                 std::uint64_t seed, LastBatch last_batch, bool shuffle = true);
  // The two policies by name, for call sites that read better that way.
  static ShardedSampler drop_last(std::int64_t dataset_size, std::int64_t global_batch, int world_size, int rank,
                                  std::uint64_t seed, bool shuffle = true) {
    return {dataset_size, global_batch, world_size, rank, seed, LastBatch::drop, shuffle};
  }
  static ShardedSampler pad(std::int64_t dataset_size, std::int64_t global_batch, int world_size, int rank,
                            std::uint64_t seed, bool shuffle = true) {
    return {dataset_size, global_batch, world_size, rank, seed, LastBatch::pad, shuffle};
  }

  std::int64_t size() const { return size_; }  // samples drawn from (before drop/pad)
  std::int64_t batches_per_epoch() const;
  std::int64_t local_batch() const { return global_batch_ / world_size_; }
  std::int64_t global_batch() const { return global_batch_; }
  int world_size() const { return world_size_; }
  int rank() const { return rank_; }
  LastBatch last_batch() const { return last_batch_; }
  // Samples per epoch beyond size() (pad) or left out (drop: negative), over all ranks.
  std::int64_t padded_samples() const { return batches_per_epoch() * global_batch_ - size_; }

  // The data set indices of `epoch` in sampling order, size() of them (the same on every rank).
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;
  // This rank's data set indices for global batch `batch` of `epoch`.
  std::vector<std::int64_t> local_indices(std::int64_t epoch, std::int64_t batch) const;
  // The same from an epoch_order(epoch) computed once (a loader walking a whole epoch).
  void local_indices(std::span<const std::int64_t> epoch_order, std::int64_t batch, std::span<std::int64_t> out) const;

  // The position after `position` (the next epoch after its last batch).
  BatchPosition next(BatchPosition position) const;
  // The position of the `step`-th batch since (0, 0), and back.
  BatchPosition position_of_step(std::int64_t step) const;
  std::int64_t step_of(BatchPosition position) const;

 private:
  std::vector<std::int64_t> indices_;  // empty: the identity
  std::int64_t size_, global_batch_;
  int world_size_, rank_;
  std::uint64_t seed_;
  LastBatch last_batch_;
  bool shuffle_;
};

}  // namespace slurmlab::data
