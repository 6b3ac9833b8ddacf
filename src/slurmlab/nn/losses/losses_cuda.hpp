#pragma once
// The CUDA paths of the losses (losses.cpp calls them, after its argument checks, when the
// prediction is on Device::cuda). Internal to slurmlab::nn; defined in losses_cuda.cpp, or in
// losses_nocuda.cpp (throwing cuda::kNoCudaBackend) in a build without CUDA.
#include <cstdint>
#include <span>

#include "slurmlab/nn/losses/losses.hpp"

namespace slurmlab::nn::cuda {

LossResult mse_loss(const Tensor& prediction, const Tensor& target, std::span<const float> sample_weights);
LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels, double label_smoothing);
std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels);
ClassificationLoss softmax_cross_entropy_pending(const Tensor& logits, std::span<const std::int64_t> labels,
                                                 const DeviceLabels& device_labels, double label_smoothing);

}  // namespace slurmlab::nn::cuda
