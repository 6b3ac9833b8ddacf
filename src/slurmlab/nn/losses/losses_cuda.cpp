// CUDA backend of the losses: fused kernels (cuda/kernels.cu), the loss read back as one
// double per call (the .item() a training loop logs). losses.cpp is the CPU reference; built
// only with CUDA (losses_nocuda.cpp otherwise).
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

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

}  // namespace

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
  const auto n = logits.size(0), c = logits.size(1);
  Tensor device_labels = labels_on_device(labels);
  LossResult result{0.0, Tensor(logits.shape(), Device::cuda)};
  double* sum = Context::get().scalar_doubles();
  SLURMLAB_CUDA_CHECK(cudaMemsetAsync(sum, 0, sizeof(double), stream()));
  cuda_kernels::softmax_cross_entropy(logits.device_data(),
                                      reinterpret_cast<const std::int64_t*>(device_labels.device_data()), n, c,
                                      label_smoothing, result.grad.device_data(), sum, nullptr, stream());
  result.loss = read_double(sum) / static_cast<double>(n);
  return result;
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
