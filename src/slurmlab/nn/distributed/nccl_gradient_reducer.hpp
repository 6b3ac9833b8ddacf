#pragma once
// NcclGradientReducer: the GradientReducer of the CUDA backend (built with SLURMLAB_HAVE_CUDA).
// Gradients stay on the GPU and are averaged with NCCL (ncclAvg, in place) on the reducer's
// own stream, in buckets of about `bucket_bytes` (one ncclGroupStart/End per bucket, so many
// small tensors cost one launch), ordered after the gradients' kernels by a CUDA event and
// before the optimizer step by another. Buckets are formed in reverse parameter order, the
// order backward produces them, as PyTorch DDP (cuda_planning::plan_gradient_buckets). After
// attach(model), they are launched from the
// model's backward hook as soon as all their gradients are final, overlapping communication
// with the rest of backward; average_gradients then launches what is left and waits.
//
// Set-up is collective over an MPI communicator: rank 0 creates the NCCL unique id, MPI_Bcast
// hands it to every rank, and each rank joins with ncclCommInitRankConfig on its current CUDA
// device; call nn::configure_cuda with the device of cluster::RankContext's GPU binding first.
//
// Failures do not hang: the communicator is non-blocking, and every collective (and the set-up)
// is waited for by polling its completion event and ncclCommGetAsyncError against a deadline.
// On an NCCL error, or when the deadline passes (a rank died or stopped calling), the
// communicator is aborted (ncclCommAbort) and `on_failure` is called with one sentence naming
// the operation, the error and the fix; programs pass [&](auto& m) { session.abort(m, 1); } so
// that every rank ends, the default throws std::runtime_error.
#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "slurmlab/nn/distributed/data_parallel.hpp"

struct ncclComm;
struct CUstream_st;
struct CUevent_st;

namespace slurmlab::nn {

class Sequential;

class NcclGradientReducer final : public GradientReducer {
 public:
  using FailureHandler = std::function<void(const std::string& message)>;
  explicit NcclGradientReducer(MPI_Comm communicator, std::chrono::milliseconds timeout = std::chrono::minutes(5),
                               std::size_t bucket_bytes = 25u << 20, FailureHandler on_failure = {});
  ~NcclGradientReducer() override;
  NcclGradientReducer(const NcclGradientReducer&) = delete;
  NcclGradientReducer& operator=(const NcclGradientReducer&) = delete;

  int world_size() const override { return size_; }
  int rank() const override { return rank_; }
  void average_gradients(const std::vector<NamedParameter>& parameters) override;
  void broadcast_state(Layer& model) override;
  void broadcast_buffers(Layer& model) override;
  // Host values: summed with MPI_Allreduce on the communicator.
  void sum_metrics(std::span<double> values) override;
  std::size_t buckets_reduced() const { return buckets_; }

  // Overlap with backward: sets `model`'s backward hook. While attached, average_gradients
  // must get trainable_parameters_of(model), the optimizer's parameters, and be called after every backward (no gradient
  // accumulation across backwards; detach for that). The model must outlive the attachment.
  void attach(Sequential& model);
  void detach();
  // Buckets launched from the backward hook (before average_gradients was called).
  std::size_t buckets_launched_during_backward() const { return early_launches_; }

 private:
  // Enqueues `work` (NCCL calls in one group) on the reducer's stream after the compute
  // stream's work, then waits for it under the deadline; the compute stream waits for it too.
  void run_collective(const std::string& what, const std::function<void()>& work);
  void broadcast(const std::string& what, const std::vector<Tensor*>& tensors);
  void wait_for(const std::string& what, CUevent_st* done);
  void wait_enqueued(const std::string& what);
  [[noreturn]] void timed_out(const std::string& what, const char* stage);
  // Fails (abort, on_failure, throw) unless an NCCL call's result says it was enqueued.
  void enqueued(const std::string& what, int result);
  [[noreturn]] void fail(const std::string& message);
  struct Bucket {
    std::vector<Tensor*> grads;
    std::size_t pending = 0;  // gradients not yet final in this step
    bool launched = false;
  };
  void launch(Bucket& bucket);  // enqueue the bucket's all-reduce, do not wait
  void child_done(std::size_t child);

  MPI_Comm communicator_;
  int size_ = 1, rank_ = 0;
  std::chrono::milliseconds timeout_;
  std::size_t bucket_bytes_;
  FailureHandler on_failure_;
  ncclComm* comm_ = nullptr;
  CUstream_st* stream_ = nullptr;
  CUevent_st* compute_done_ = nullptr;
  CUevent_st* reduce_done_ = nullptr;
  std::size_t buckets_ = 0;
  Sequential* attached_ = nullptr;
  std::vector<Bucket> attached_buckets_;
  std::vector<std::vector<std::size_t>> child_buckets_;  // per child: a bucket index per parameter
  std::size_t attached_parameters_ = 0;
  std::size_t early_launches_ = 0;
};

}  // namespace slurmlab::nn
