#pragma once
// Losses return the mean loss (in double) and its gradient with respect to the network output,
// ready to feed Layer::backward. Metrics count, so that ranks can sum them before dividing.
#include <cstdint>
#include <span>

#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn {

struct LossResult {
  double loss = 0.0;
  Tensor grad;  // d loss / d prediction, shape of the prediction
};

// Mean squared error over all elements (PyTorch's MSELoss(reduction="mean")). With
// per-sample weights w (one per row, e.g. 1/sigma^2 for measurement errors) it is the
// weighted mean sum_i w_i * mean_j (p_ij - t_ij)^2 / sum_i w_i, which equals the plain MSE
// when every weight is 1.
LossResult mse_loss(const Tensor& prediction, const Tensor& target, std::span<const float> sample_weights = {});

// Softmax followed by negative log-likelihood, fused and stable (log-sum-exp with the row
// maximum subtracted), averaged over the batch: PyTorch's CrossEntropyLoss. logits [N, C],
// labels in [0, C). label_smoothing eps in [0, 1) as CrossEntropyLoss(label_smoothing=eps):
// the target is (1 - eps) on the label plus eps / C on every class.
LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels,
                                 double label_smoothing = 0.0);

// How many rows have their largest logit at the label (ties go to the lowest index, as argmax).
std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels);
inline double accuracy(const Tensor& logits, std::span<const std::int64_t> labels) {
  return labels.empty() ? 0.0 : static_cast<double>(correct_predictions(logits, labels)) / static_cast<double>(labels.size());
}

}  // namespace slurmlab::nn
