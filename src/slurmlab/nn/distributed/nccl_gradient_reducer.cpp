// NcclGradientReducer (see the header): NCCL 2 on the CUDA backend's device.
#include "slurmlab/nn/distributed/nccl_gradient_reducer.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <map>
#include <stdexcept>
#include <thread>

#include "slurmlab/nn/cuda/context.hpp"
#include "slurmlab/nn/cuda/planning.hpp"
#include "slurmlab/nn/layers/layers.hpp"

namespace slurmlab::nn {
namespace {

std::string nccl_text(ncclResult_t result) { return ncclGetErrorString(result); }

// What rank 0 broadcasts: the unique id, or that it could not make one (so that the other
// ranks fail with a message instead of waiting for an id that never comes).
struct UniqueIdMessage {
  int ok = 0;
  ncclUniqueId id{};
};

// The communicator's asynchronous state; a failing query is itself the answer (an initial
// ncclSuccess left in place would read as "done").
ncclResult_t async_state(ncclComm_t comm) {
  ncclResult_t state = ncclInProgress;
  const ncclResult_t query = ncclCommGetAsyncError(comm, &state);
  return query == ncclSuccess ? state : query;
}

}  // namespace

NcclGradientReducer::NcclGradientReducer(MPI_Comm communicator, std::chrono::milliseconds timeout,
                                         std::size_t bucket_bytes, FailureHandler on_failure)
    : communicator_(communicator), timeout_(timeout), bucket_bytes_(bucket_bytes), on_failure_(std::move(on_failure)) {
  MPI_Comm_size(communicator_, &size_);
  MPI_Comm_rank(communicator_, &rank_);
  auto& context = cuda::Context::get();
  // The communicator and its stream belong to the context's device (the rank's binding),
  // whatever device this thread selected since.
  SLURMLAB_CUDA_CHECK(cudaSetDevice(context.options().device));
  UniqueIdMessage message;
  ncclResult_t id_result = ncclSuccess;
  if (rank_ == 0) {
    id_result = ncclGetUniqueId(&message.id);
    message.ok = id_result == ncclSuccess ? 1 : 0;
  }
  MPI_Bcast(&message, static_cast<int>(sizeof message), MPI_BYTE, 0, communicator_);
  if (!message.ok) {
    fail(rank_ == 0 ? "NCCL: ncclGetUniqueId failed on rank 0: " + nccl_text(id_result)
                    : "NCCL: rank 0 could not create the NCCL unique id (see rank 0's message)");
  }
  const ncclUniqueId id = message.id;
  cudaStream_t stream = nullptr;
  SLURMLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
  cudaEvent_t a = nullptr, b = nullptr;
  SLURMLAB_CUDA_CHECK(cudaEventCreateWithFlags(&a, cudaEventDisableTiming));
  SLURMLAB_CUDA_CHECK(cudaEventCreateWithFlags(&b, cudaEventDisableTiming));
  compute_done_ = a;
  reduce_done_ = b;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once; we poll with a deadline instead of hanging
  ncclComm_t comm = nullptr;
  auto result = ncclCommInitRankConfig(&comm, size_, id, rank_, &config);
  comm_ = comm;
  if (result != ncclSuccess && result != ncclInProgress) {
    fail("NCCL: ncclCommInitRankConfig failed on rank " + std::to_string(rank_) + ": " + nccl_text(result));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const ncclResult_t state = async_state(comm_);
    if (state == ncclSuccess) break;
    if (state != ncclInProgress) {
      fail("NCCL: communicator set-up failed on rank " + std::to_string(rank_) + ": " + nccl_text(state) + " (" +
           ncclGetLastError(comm_) + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      fail("NCCL: communicator set-up on rank " + std::to_string(rank_) + " did not finish within " +
           std::to_string(timeout_.count()) + " ms; a rank is missing or the network is blocked (check NCCL_DEBUG=INFO)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

NcclGradientReducer::~NcclGradientReducer() {
  detach();
  if (comm_) {
    // Finalize flushes outstanding work; with a non-blocking communicator poll briefly, then
    // destroy (or abort when it does not settle).
    bool settled = ncclCommFinalize(comm_) == ncclSuccess;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (ncclResult_t state = ncclInProgress; !settled && std::chrono::steady_clock::now() < deadline;) {
      state = async_state(comm_);
      settled = state == ncclSuccess;
      if (state != ncclSuccess && state != ncclInProgress) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (settled) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }
  if (compute_done_) cudaEventDestroy(compute_done_);
  if (reduce_done_) cudaEventDestroy(reduce_done_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclGradientReducer::fail(const std::string& message) {
  if (comm_) {
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  if (on_failure_) on_failure_(message);
  throw std::runtime_error(message);
}

void NcclGradientReducer::enqueued(const std::string& what, int result) {
  const auto status = static_cast<ncclResult_t>(result);
  if (status != ncclSuccess && status != ncclInProgress) {
    fail("NCCL " + what + " could not be enqueued on rank " + std::to_string(rank_) + ": " + nccl_text(status));
  }
}

void NcclGradientReducer::wait_for(const std::string& what, CUevent_st* done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const auto query = cudaEventQuery(done);
    if (query == cudaSuccess) return;
    if (query != cudaErrorNotReady) {
      fail("NCCL " + what + " on rank " + std::to_string(rank_) + ": CUDA error " + cudaGetErrorString(query));
    }
    // Not ready is no error, but it stays the thread's last error and would fail the next
    // kernel launch's cudaGetLastError check: cleared (as PyTorch does, pytorch#18584).
    (void)cudaGetLastError();
    const ncclResult_t state = async_state(comm_);
    if (state != ncclSuccess && state != ncclInProgress) {
      fail("NCCL " + what + " failed on rank " + std::to_string(rank_) + ": " + nccl_text(state) + " (" +
           ncclGetLastError(comm_) + "); another rank probably failed first, see its message");
    }
    if (std::chrono::steady_clock::now() > deadline) timed_out(what, "enqueued, the other ranks never joined");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// A non-blocking communicator enqueues a group in the background (connecting to the peers
// first when the communicator has not talked to them yet, which needs them to take part):
// ncclGroupEnd answers ncclInProgress and ncclCommGetAsyncError says when it is done.
void NcclGradientReducer::wait_enqueued(const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const ncclResult_t state = async_state(comm_);
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) {
      fail("NCCL " + what + " failed on rank " + std::to_string(rank_) + ": " + nccl_text(state) + " (" +
           ncclGetLastError(comm_) + "); another rank probably failed first, see its message");
    }
    if (std::chrono::steady_clock::now() > deadline) timed_out(what, "not yet enqueued, waiting for the other ranks");
    std::this_thread::yield();
  }
}

// One message for a collective that never finishes, at whichever stage it is stuck: a peer
// that died or stopped calling shows either way, depending on whether connections existed.
void NcclGradientReducer::timed_out(const std::string& what, const char* stage) {
  fail("NCCL " + what + " on rank " + std::to_string(rank_) + " did not complete within " +
       std::to_string(timeout_.count()) + " ms (" + stage +
       "); a rank died or stopped calling it (raise the timeout only if steps are that slow)");
}

void NcclGradientReducer::run_collective(const std::string& what, const std::function<void()>& work) {
  if (comm_ == nullptr) fail("NCCL " + what + ": the communicator was aborted by an earlier failure");
  auto& context = cuda::Context::get();
  SLURMLAB_CUDA_CHECK(cudaEventRecord(compute_done_, context.stream()));
  SLURMLAB_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  enqueued(what, ncclGroupStart());
  work();
  const auto result = ncclGroupEnd();
  if (result != ncclSuccess && result != ncclInProgress) {
    fail("NCCL " + what + " could not be enqueued on rank " + std::to_string(rank_) + ": " + nccl_text(result));
  }
  wait_enqueued(what);
  SLURMLAB_CUDA_CHECK(cudaEventRecord(reduce_done_, stream_));
  wait_for(what, reduce_done_);
  SLURMLAB_CUDA_CHECK(cudaStreamWaitEvent(context.stream(), reduce_done_, 0));
}

void NcclGradientReducer::attach(Sequential& model) {
  detach();
  // The parameters an optimizer steps (and the trainer passes to average_gradients): frozen
  // ones (airbench94's whitening filters and BatchNorm scales) are neither stepped nor reduced.
  auto parameters = trainable_parameters_of(model);
  std::vector<std::size_t> bytes;
  for (auto& p : parameters) {
    if (p.parameter->grad.device() != Device::cuda) {
      fail("NcclGradientReducer::attach: gradient " + p.name + " is not on cuda; move the model with nn::to_device first");
    }
    bytes.push_back(p.parameter->grad.bytes());
  }
  std::map<const Parameter*, std::size_t> bucket_of;
  for (const auto& plan : cuda_planning::plan_gradient_buckets(bytes, bucket_bytes_)) {
    auto& bucket = attached_buckets_.emplace_back();
    for (auto i : plan) {
      bucket.grads.push_back(&parameters[i].parameter->grad);
      bucket_of[parameters[i].parameter] = attached_buckets_.size() - 1;
    }
  }
  child_buckets_.assign(model.size(), {});
  for (std::size_t c = 0; c < model.size(); ++c)
    for (auto& p : trainable_parameters_of(model[c])) child_buckets_[c].push_back(bucket_of.at(p.parameter));
  for (auto& bucket : attached_buckets_) bucket.pending = bucket.grads.size();
  attached_parameters_ = parameters.size();
  attached_ = &model;
  model.set_backward_hook([this](std::size_t child) { child_done(child); });
}

void NcclGradientReducer::detach() {
  if (attached_) attached_->set_backward_hook({});
  attached_ = nullptr;
  attached_buckets_.clear();
  child_buckets_.clear();
  attached_parameters_ = 0;
}

void NcclGradientReducer::child_done(std::size_t child) {
  if (size_ == 1 || child >= child_buckets_.size()) return;
  for (auto b : child_buckets_[child]) {
    auto& bucket = attached_buckets_[b];
    if (bucket.pending > 0 && --bucket.pending == 0 && !bucket.launched) {
      launch(bucket);
      ++early_launches_;
    }
  }
}

void NcclGradientReducer::launch(Bucket& bucket) {
  if (comm_ == nullptr) fail("NCCL gradient all-reduce: the communicator was aborted by an earlier failure");
  auto& context = cuda::Context::get();
  // The gradients' kernels are on the compute stream: the all-reduce starts after them.
  SLURMLAB_CUDA_CHECK(cudaEventRecord(compute_done_, context.stream()));
  SLURMLAB_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  enqueued("gradient all-reduce", ncclGroupStart());
  for (auto* grad : bucket.grads) {
    enqueued("gradient all-reduce", ncclAllReduce(grad->device_data(), grad->device_data(),
                                                  static_cast<std::size_t>(grad->numel()), ncclFloat32, ncclAvg,
                                                  comm_, stream_));
  }
  const auto result = ncclGroupEnd();
  if (result != ncclSuccess && result != ncclInProgress) {
    fail("NCCL gradient all-reduce could not be enqueued on rank " + std::to_string(rank_) + ": " + nccl_text(result));
  }
  wait_enqueued("gradient all-reduce");
  bucket.launched = true;
  ++buckets_;
}

void NcclGradientReducer::average_gradients(const std::vector<NamedParameter>& parameters) {
  if (size_ == 1) return;
  if (attached_) {
    if (parameters.size() != attached_parameters_) {
      fail("NcclGradientReducer: average_gradients got " + std::to_string(parameters.size()) +
           " parameters but the attached model has " + std::to_string(attached_parameters_) +
           "; pass trainable_parameters_of(model) (the optimizer's parameters) or detach");
    }
    for (auto& bucket : attached_buckets_)
      if (!bucket.launched) launch(bucket);
    // Everything launched is on stream_: one event after the last bucket covers them all.
    SLURMLAB_CUDA_CHECK(cudaEventRecord(reduce_done_, stream_));
    wait_for("gradient all-reduce", reduce_done_);
    SLURMLAB_CUDA_CHECK(cudaStreamWaitEvent(cuda::Context::get().stream(), reduce_done_, 0));
    for (auto& bucket : attached_buckets_) {
      bucket.launched = false;
      bucket.pending = bucket.grads.size();
    }
    return;
  }
  // Not attached: the same buckets (same plan, same order on every rank), each launched and
  // waited for in turn.
  std::vector<std::size_t> bytes;
  for (const auto& p : parameters) {
    if (p.parameter->grad.device() != Device::cuda) {
      fail("NcclGradientReducer: gradient " + p.name + " is not on cuda; move the model with nn::to_device before training");
    }
    bytes.push_back(p.parameter->grad.bytes());
  }
  for (const auto& bucket : cuda_planning::plan_gradient_buckets(bytes, bucket_bytes_)) {
    run_collective("gradient all-reduce", [&] {
      for (auto i : bucket) {
        auto& grad = parameters[i].parameter->grad;
        enqueued("gradient all-reduce", ncclAllReduce(grad.device_data(), grad.device_data(),
                                                      static_cast<std::size_t>(grad.numel()), ncclFloat32, ncclAvg,
                                                      comm_, stream_));
      }
    });
    ++buckets_;
  }
}

void NcclGradientReducer::broadcast(const std::string& what, const std::vector<Tensor*>& tensors) {
  if (size_ == 1 || tensors.empty()) return;
  run_collective(what, [&] {
    for (auto* tensor : tensors) {
      if (tensor->device() != Device::cuda) fail("NcclGradientReducer: model state is not on cuda; move the model with nn::to_device first");
      enqueued(what, ncclBroadcast(tensor->device_data(), tensor->device_data(), static_cast<std::size_t>(tensor->numel()),
                                   ncclFloat32, 0, comm_, stream_));
    }
  });
}

void NcclGradientReducer::broadcast_state(Layer& model) {
  std::vector<Tensor*> tensors;
  for (auto& p : parameters_of(model)) tensors.push_back(&p.parameter->value);
  for (auto& b : buffers_of(model)) tensors.push_back(b.buffer);
  broadcast("state broadcast", tensors);
}

void NcclGradientReducer::broadcast_buffers(Layer& model) {
  std::vector<Tensor*> tensors;
  for (auto& b : buffers_of(model)) tensors.push_back(b.buffer);
  broadcast("buffer broadcast", tensors);
}

void NcclGradientReducer::sum_metrics(std::span<double> values) {
  if (size_ > 1) sum_metrics_over_ranks(communicator_, values);
}

}  // namespace slurmlab::nn
