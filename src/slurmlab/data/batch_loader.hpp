#pragma once
// BatchLoader: PyTorch's DataLoader(num_workers, prefetch) for one rank, natively. Worker
// threads decode and transform the samples of upcoming batches (ShardedSampler's slice of each
// global batch) into a bounded ring of preallocated batch buffers; next() hands them out in
// order.
//
// Contract
//   Order and determinism: next() returns the batches of the position set at construction or by
//     set_position(), then every following one (across epochs: batch b+1, or batch 0 of the
//     next epoch), forever; the caller counts batches_per_epoch(). Every float of every batch
//     is a pure function of (data set, sampler, transform, seed, epoch, batch): the same for
//     any worker count (0, 1, 2, ...) and for a run resumed with set_position().
//   Ownership: the loader owns every buffer. The Batch that next() returns stays valid and
//     unchanged until the next call to next() or set_position(), or the loader's destruction;
//     the following next() recycles its slot for a batch further ahead. Copy what must live
//     longer. Buffers are allocated once, at construction (prefetch_batches slots of local
//     batch x C x H x W floats, plus labels and indices; the floats page-locked with
//     pinned_memory); nothing is allocated per batch.
//   Threads: `workers` threads (0: every batch is loaded on the calling thread inside next(),
//     nothing runs in the background). They load up to `prefetch_batches` batches ahead of
//     the consumer and wait when the ring is full. The data set must stay alive and unchanged
//     for the loader's lifetime (ImageDataset is immutable and thread-safe by contract). A
//     BatchLoader is used from one thread (next(), set_position(), the destructor).
//   Errors: an exception thrown while loading a sample (a corrupt image file: UsageError naming
//     it) is caught in the worker and rethrown, the original exception object with its
//     message, by the next() that would have returned that batch; the batches before it come
//     out normally. next() keeps rethrowing it until set_position() moves past it. Constructor
//     errors (impossible options) are slurmlab::UsageError.
//   Shutdown: the destructor stops the workers mid-epoch: each finishes at most the samples it
//     is transforming (a few microseconds to milliseconds), then all are joined; it never waits
//     for the ring to drain and never hangs.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "slurmlab/data/images.hpp"
#include "slurmlab/data/sampler.hpp"
#include "slurmlab/data/transforms.hpp"

namespace slurmlab::data {

// One rank's batch: `size` samples, images float NCHW (shape per sample), labels int64.
struct Batch {
  std::int64_t epoch = 0;
  std::int64_t batch = 0;  // within the epoch
  std::int64_t size = 0;
  ImageShape shape;                       // of one sample
  std::span<const float> images;          // size x shape.bytes() floats
  std::span<const std::int64_t> labels;   // size
  std::span<const std::int64_t> indices;  // the data set indices of the samples
};

struct BatchLoaderOptions {
  int workers = 0;           // background threads; 0 loads on the calling thread
  int prefetch_batches = 0;  // ring slots; 0: 2 per worker (PyTorch's prefetch_factor), at least 2
  std::uint64_t seed = 0;    // for the random transforms (the sampler has its own)
  // The ring's image buffers in page-locked memory (PyTorch's pin_memory), for batches copied
  // to a GPU; needs CUDA and a GPU (else the constructor throws std::runtime_error saying so).
  bool pinned_memory = false;
};

class BatchLoader {
 public:
  BatchLoader(const ImageDataset& dataset, ShardedSampler sampler, ImageTransform transform, BatchLoaderOptions options,
              BatchPosition start = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order (see the contract for its lifetime and errors).
  const Batch& next();
  // Where next() continues: discards batches loaded ahead and restarts there.
  void set_position(BatchPosition position);
  // The position of the batch the next next() returns.
  BatchPosition position() const;

  std::int64_t batches_per_epoch() const { return sampler_.batches_per_epoch(); }
  const ShardedSampler& sampler() const { return sampler_; }
  const ImageTransform& transform() const { return transform_; }
  int workers() const { return static_cast<int>(threads_.size()); }
  bool pinned_memory() const { return options_.pinned_memory; }

 private:
  struct Slot;
  struct Task;
  void worker_loop(int worker);
  bool claim(Task& task);                           // with mutex_ held
  void prepare(Slot& slot, std::int64_t sequence);  // with mutex_ held
  void load_samples(Slot& slot, std::int64_t begin, std::int64_t end, TransformWorkspace& workspace) const;
  BatchPosition position_of(std::int64_t sequence) const;
  const std::vector<std::int64_t>& order_of(std::int64_t epoch);  // with mutex_ held

  const ImageDataset& dataset_;
  ShardedSampler sampler_;
  ImageTransform transform_;
  BatchLoaderOptions options_;
  std::int64_t local_batch_, chunk_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<TransformWorkspace> workspaces_;  // one per worker (index 0 also for workers = 0)

  // Shared state, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_, idle_;
  std::int64_t start_step_ = 0;     // sampler step of sequence 0
  std::int64_t consumed_ = 0;       // sequences handed out (the next one to return)
  std::int64_t next_sequence_ = 0;  // the sequence whose chunks are being handed to workers
  std::int64_t next_chunk_ = 0;
  std::int64_t generation_ = 0;  // bumped by set_position: work of older ones is dropped
  int busy_ = 0;                 // workers transforming outside the lock
  bool holding_ = false;         // the consumer holds batch consumed_ - 1
  bool stop_ = false;
  std::int64_t order_epoch_ = -1;
  std::vector<std::int64_t> order_;  // epoch_order(order_epoch_)
  std::vector<std::thread> threads_;
};

}  // namespace slurmlab::data
