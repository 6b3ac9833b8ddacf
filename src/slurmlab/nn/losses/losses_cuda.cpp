// CUDA backend of the losses: fused kernels (cuda/kernels.cu), the loss read back as one
// double per call (the .item() a training loop logs). losses.cpp is the CPU reference; built
// only with CUDA (losses_nocuda.cpp otherwise).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "slurmlab/nn/cuda/context.hpp"
#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/losses/losses_cuda.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn::cuda {
namespace {

cudaStream_t stream() { return Context::get().stream(); }

// Labels on the device, in storage from the caching allocator (no cudaMalloc per step).
Tensor labels_on_device(std::span<const std::int64_t> labels) {
  static_assert(sizeof(std::int64_t) == 2 * sizeof(float));
  Tensor storage({static_cast<std::int64_t>(labels.size()) * 2}, Device::cuda);
  copy(storage.device_data(), Device::cuda, labels.data(), Device::cpu, labels.size() * sizeof(std::int64_t));
  return storage;
}

// One step's loss sum and correct count on their way to the host, with room for its labels:
// device block [double loss sum][u64 correct][int64 labels...], the same layout in page-locked
// host memory, and the event recorded after the copy back. Pooled per device and reused.
struct Readback {
  int device = -1;
  unsigned char* device_block = nullptr;
  unsigned char* host_block = nullptr;
  std::size_t label_capacity = 0;
  cudaEvent_t copied = nullptr;
};
constexpr std::size_t kCountBytes = sizeof(double) + sizeof(unsigned long long);

std::mutex& pool_mutex() {
  static auto* mutex = new std::mutex();  // never destroyed: pending values may outlive statics
  return *mutex;
}
std::vector<std::unique_ptr<Readback>>& pool() {
  static auto* slots = new std::vector<std::unique_ptr<Readback>>();
  return *slots;
}

void release_readback(std::unique_ptr<Readback> slot) noexcept {
  std::lock_guard lock(pool_mutex());
  pool().push_back(std::move(slot));
}

std::unique_ptr<Readback> acquire_readback(std::size_t labels) {
  const int device = Context::get().options().device;
  std::unique_ptr<Readback> slot;
  {
    std::lock_guard lock(pool_mutex());
    auto& slots = pool();
    for (auto it = slots.begin(); it != slots.end(); ++it) {
      if ((*it)->device == device) {
        slot = std::move(*it);
        slots.erase(it);
        break;
      }
    }
  }
  if (!slot) {
    slot = std::make_unique<Readback>();
    slot->device = device;
    SLURMLAB_CUDA_CHECK(cudaEventCreateWithFlags(&slot->copied, cudaEventDisableTiming));
  }
  try {
    // The slot's last copies (its labels up, its counts down) must be done before its host
    // memory is written again or freed; an event never recorded counts as done.
    SLURMLAB_CUDA_CHECK(cudaEventSynchronize(slot->copied));
    if (slot->host_block == nullptr || slot->label_capacity < labels) {
      if (slot->device_block) SLURMLAB_CUDA_CHECK(cudaFree(slot->device_block));
      slot->device_block = nullptr;
      if (slot->host_block) SLURMLAB_CUDA_CHECK(cudaFreeHost(slot->host_block));
      slot->host_block = nullptr;
      slot->label_capacity = 0;
      const std::size_t bytes = kCountBytes + labels * sizeof(std::int64_t);
      SLURMLAB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&slot->device_block), bytes));
      SLURMLAB_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&slot->host_block), bytes, cudaHostAllocDefault));
      slot->label_capacity = labels;
    }
  } catch (...) {
    release_readback(std::move(slot));  // without blocks it allocates afresh next time
    throw;
  }
  return slot;
}

// Returns a slot whose queued work may have failed half-way: its event is recorded after
// whatever was queued (or the stream waited for), so the next user's wait covers it.
void return_after_failure(std::unique_ptr<Readback> slot) noexcept {
  if (cudaEventRecord(slot->copied, Context::get().stream()) != cudaSuccess) {
    (void)cudaStreamSynchronize(Context::get().stream());
  }
  (void)cudaGetLastError();
  release_readback(std::move(slot));
}

class CudaPendingScalars final : public PendingScalars {
 public:
  explicit CudaPendingScalars(std::unique_ptr<Readback> slot) : slot_(std::move(slot)) {}
  ~CudaPendingScalars() override { release_readback(std::move(slot_)); }
  CudaPendingScalars(const CudaPendingScalars&) = delete;
  CudaPendingScalars& operator=(const CudaPendingScalars&) = delete;
  bool ready() const override {
    const cudaError_t status = cudaEventQuery(slot_->copied);
    if (status == cudaErrorNotReady) {
      // Not an error, but left as the thread's last error it would fail the next launch's
      // cudaGetLastError check (PyTorch's event query clears it the same way).
      (void)cudaGetLastError();
      return false;
    }
    SLURMLAB_CUDA_CHECK(status);
    return true;
  }
  std::vector<double> wait() const override {
    SLURMLAB_CUDA_CHECK(cudaEventSynchronize(slot_->copied));
    double loss_sum = 0.0;
    unsigned long long correct = 0;
    std::memcpy(&loss_sum, slot_->host_block, sizeof loss_sum);
    std::memcpy(&correct, slot_->host_block + sizeof loss_sum, sizeof correct);
    return {loss_sum, static_cast<double>(correct)};
  }

 private:
  std::unique_ptr<Readback> slot_;
};

}  // namespace

ClassificationLoss softmax_cross_entropy_pending(const Tensor& logits, std::span<const std::int64_t> labels,
                                                 const DeviceLabels& device_labels, double label_smoothing) {
  const auto n = logits.size(0), c = logits.size(1);
  ClassificationLoss result{Tensor(logits.shape(), Device::cuda), nullptr};
  auto slot = acquire_readback(device_labels.defined() ? 0 : labels.size());
  try {
    const std::int64_t* device_label_data = device_labels.data();
    if (!device_labels.defined()) {
      // Through page-locked memory: the copy is queued, not waited for.
      std::memcpy(slot->host_block + kCountBytes, labels.data(), labels.size_bytes());
      SLURMLAB_CUDA_CHECK(cudaMemcpyAsync(slot->device_block + kCountBytes, slot->host_block + kCountBytes,
                                          labels.size_bytes(), cudaMemcpyHostToDevice, stream()));
      device_label_data = reinterpret_cast<const std::int64_t*>(slot->device_block + kCountBytes);
    }
    auto* loss_sum = reinterpret_cast<double*>(slot->device_block);
    auto* correct = reinterpret_cast<unsigned long long*>(slot->device_block + sizeof(double));
    SLURMLAB_CUDA_CHECK(cudaMemsetAsync(slot->device_block, 0, kCountBytes, stream()));
    cuda_kernels::softmax_cross_entropy(logits.device_data(), device_label_data, n, c, label_smoothing,
                                        result.grad.device_data(), loss_sum, correct, stream());
    SLURMLAB_CUDA_CHECK(
        cudaMemcpyAsync(slot->host_block, slot->device_block, kCountBytes, cudaMemcpyDeviceToHost, stream()));
    SLURMLAB_CUDA_CHECK(cudaEventRecord(slot->copied, stream()));
  } catch (...) {
    return_after_failure(std::move(slot));
    throw;
  }
  result.sums = std::make_shared<CudaPendingScalars>(std::move(slot));
  return result;
}

LossResult mse_loss(const Tensor& prediction, const Tensor& target, std::span<const float> sample_weights) {
  if (target.device() != Device::cuda) {
    throw std::invalid_argument("mse_loss: the prediction is on cuda and the target on cpu; move the target with .to(Device::cuda)");
  }
  const auto rows = prediction.size(0);
  const auto per_row = prediction.numel() / rows;
  double weight_total = 0.0;
  for (std::int64_t i = 0; i < rows; ++i) weight_total += sample_weights.empty() ? 1.0 : sample_weights[i];
  if (!(weight_total > 0.0)) throw std::invalid_argument("mse_loss: sample weights must sum to a positive number");
  const double norm = weight_total * static_cast<double>(per_row);
  Tensor weights;
  if (!sample_weights.empty()) weights = Tensor::from({rows}, sample_weights).to(Device::cuda);
  LossResult result{0.0, Tensor(prediction.shape(), Device::cuda)};
  double* sum = Context::get().scalar_doubles();
  SLURMLAB_CUDA_CHECK(cudaMemsetAsync(sum, 0, sizeof(double), stream()));
  cuda_kernels::mse(prediction.device_data(), target.device_data(), weights.defined() ? weights.device_data() : nullptr,
                    rows, per_row, norm, result.grad.device_data(), sum, stream());
  result.loss = read_double(sum) / norm;
  return result;
}

LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels, double label_smoothing) {
  // The pending path, waited for at once (the .item() of an eager loss).
  auto pending = cuda::softmax_cross_entropy_pending(logits, labels, DeviceLabels{}, label_smoothing);
  const double loss = pending.sums->wait().at(0) / static_cast<double>(logits.size(0));
  return {loss, std::move(pending.grad)};
}

std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels) {
  Tensor device_labels = labels_on_device(labels);
  unsigned long long* counter = Context::get().scalar_counters();
  SLURMLAB_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), stream()));
  cuda_kernels::count_correct(logits.device_data(), reinterpret_cast<const std::int64_t*>(device_labels.device_data()),
                              logits.size(0), logits.size(1), counter, stream());
  unsigned long long correct = 0;
  SLURMLAB_CUDA_CHECK(cudaMemcpyAsync(&correct, counter, sizeof correct, cudaMemcpyDeviceToHost, stream()));
  Context::get().synchronize();
  return static_cast<std::int64_t>(correct);
}

}  // namespace slurmlab::nn::cuda
