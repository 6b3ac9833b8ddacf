#pragma once
// NcclGradientReducer: the GradientReducer of the CUDA backend (built with SLURMLAB_HAVE_CUDA).
// Gradients stay on the GPU and are averaged with NCCL (ncclAvg, in place) on the reducer's
// own stream, in buckets of about `bucket_bytes` (one ncclGroupStart/End per bucket, so many
// small tensors cost one launch), ordered after the backward pass by a CUDA event and before
// the optimizer step by another.
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

#include "slurmlab/nn/data_parallel.hpp"

struct ncclComm;
struct CUstream_st;
struct CUevent_st;

namespace slurmlab::nn {

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
  // Host values: summed with MPI_Allreduce on the communicator.
  void sum_metrics(std::span<double> values) override;
  std::size_t buckets_reduced() const { return buckets_; }

 private:
  // Enqueues `work` (NCCL calls in one group) on the reducer's stream after the compute
  // stream's work, then waits for it under the deadline; the compute stream waits for it too.
  void run_collective(const std::string& what, const std::function<void()>& work);
  void wait_for(const std::string& what, CUevent_st* done);
  [[noreturn]] void fail(const std::string& message);

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
};

}  // namespace slurmlab::nn
