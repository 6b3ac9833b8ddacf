#pragma once
// Losses return the mean loss (in double) and its gradient with respect to the network output,
// ready to feed Layer::backward. Metrics count, so that ranks can sum them before dividing.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

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

// Values a device may still be computing (PyTorch's loss tensor before .item()): wait() blocks
// until they are done and returns them; ready() asks without blocking. On the CPU they are
// ready at once. Safe to drop unread.
class PendingScalars {
 public:
  virtual ~PendingScalars() = default;
  virtual bool ready() const = 0;
  virtual std::vector<double> wait() const = 0;
};

// Class labels (int64) in memory of `device`, as a data set resident on a GPU writes them
// there: a loss on that GPU reads them in place instead of copying host labels each step.
// Storage from the tensor allocator (2 floats per label).
class DeviceLabels {
 public:
  DeviceLabels() = default;
  DeviceLabels(std::int64_t count, Device device);  // uninitialised; count > 0
  bool defined() const { return storage_.defined(); }
  std::int64_t size() const { return count_; }
  Device device() const { return storage_.device(); }
  std::int64_t* data();  // on device()
  const std::int64_t* data() const;

 private:
  Tensor storage_;
  std::int64_t count_ = 0;
};

struct ClassificationLoss {
  Tensor grad;  // as softmax_cross_entropy's
  // {the sum of the rows' losses (the mean loss times the row count), the rows predicted right}
  std::shared_ptr<const PendingScalars> sums;
};

// softmax_cross_entropy and correct_predictions in one call that does not wait for either
// value: on CUDA one kernel writes the gradient and both counts, which are copied to page-
// locked host memory behind an event, so the caller can queue backward and the optimizer
// step at once and read the values steps later. On the CPU: the two functions above, ready.
// `device_labels`, when defined, are `labels` already on the logits' device (read in place);
// otherwise the host labels are copied (asynchronously, through page-locked memory).
ClassificationLoss softmax_cross_entropy_pending(const Tensor& logits, std::span<const std::int64_t> labels,
                                                 const DeviceLabels& device_labels = {}, double label_smoothing = 0.0);

// How many rows have their largest logit at the label (ties go to the lowest index, as argmax).
std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels);
inline double accuracy(const Tensor& logits, std::span<const std::int64_t> labels) {
  return labels.empty() ? 0.0 : static_cast<double>(correct_predictions(logits, labels)) / static_cast<double>(labels.size());
}

}  // namespace slurmlab::nn
