#pragma once
// Data-parallel training: every rank takes its shard of every global batch, computes
// gradients on it, and the gradients are averaged across ranks before the optimizer step,
// so the ranks stay identical and the result does not depend (beyond float rounding) on how
// many ranks computed it.
//
// GradientReducer is the interface; MpiGradientReducer implements it with bucketed
// MPI_Allreduce on host memory. The CUDA backend implements the same interface with NCCL on
// device memory (nccl_gradient_reducer.cpp) and training code does not change.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn {

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int world_size() const = 0;
  virtual int rank() const = 0;
  // Replaces every gradient by its mean over the ranks.
  virtual void average_gradients(const std::vector<NamedParameter>& parameters) = 0;
  // Copies rank 0's parameters and buffers to every rank (at start, so all ranks agree).
  virtual void broadcast_state(Layer& model) = 0;
  // Copies rank 0's buffers (BatchNorm running statistics, which each rank updates from its
  // own batches) to every rank: what PyTorch DDP's broadcast_buffers does, so that evaluation
  // and checkpoints see one state on every rank.
  virtual void broadcast_buffers(Layer& model) = 0;
  // Sums metric accumulators (loss sums, correct counts, sample counts) over the ranks, so a
  // logged number is global and not rank 0's (Lightning's sync_dist).
  virtual void sum_metrics(std::span<double> values) = 0;
};

// What every reducer's sum_metrics does, for host values: one in-place MPI_Allreduce (sum) on
// `communicator`. Throws std::runtime_error naming the call when MPI reports a failure.
void sum_metrics_over_ranks(MPI_Comm communicator, std::span<double> values);

class MpiGradientReducer final : public GradientReducer {
 public:
  // Gradients are packed into buckets of about `bucket_bytes` (25 MiB, as PyTorch DDP) and
  // each bucket is one MPI_Allreduce: few large messages instead of one per tensor.
  explicit MpiGradientReducer(MPI_Comm communicator, std::size_t bucket_bytes = 25u << 20);
  int world_size() const override { return size_; }
  int rank() const override { return rank_; }
  void average_gradients(const std::vector<NamedParameter>& parameters) override;
  void broadcast_state(Layer& model) override;
  void broadcast_buffers(Layer& model) override;
  void sum_metrics(std::span<double> values) override;
  std::size_t allreduce_calls() const { return allreduce_calls_; }

 private:
  void allreduce_sum(float* data, std::size_t count);
  void broadcast(Tensor& tensor);
  MPI_Comm communicator_;
  int size_ = 1, rank_ = 0;
  std::size_t bucket_floats_;
  std::vector<float> bucket_;
  std::size_t allreduce_calls_ = 0;
};

}  // namespace slurmlab::nn
