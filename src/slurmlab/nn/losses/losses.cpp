#include "slurmlab/nn/losses/losses.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "slurmlab/nn/losses/losses_cuda.hpp"

namespace slurmlab::nn {

LossResult mse_loss(const Tensor& prediction, const Tensor& target, std::span<const float> sample_weights) {
  if (prediction.shape() != target.shape()) {
    throw std::invalid_argument("mse_loss: prediction " + to_string(prediction.shape()) + " and target " +
                                to_string(target.shape()) + " differ in shape");
  }
  if (prediction.dim() < 1 || prediction.numel() == 0) throw std::invalid_argument("mse_loss: empty prediction");
  const auto rows = prediction.size(0);
  const auto per_row = prediction.numel() / rows;
  if (!sample_weights.empty() && static_cast<std::int64_t>(sample_weights.size()) != rows) {
    throw std::invalid_argument("mse_loss: " + std::to_string(sample_weights.size()) + " sample weights for " +
                                std::to_string(rows) + " rows");
  }
  double weight_total = static_cast<double>(rows);
  if (!sample_weights.empty()) {
    weight_total = 0.0;
    for (std::int64_t i = 0; i < rows; ++i) weight_total += sample_weights[i];
  }
  if (!(weight_total > 0.0)) throw std::invalid_argument("mse_loss: sample weights must sum to a positive number");
  if (prediction.device() == Device::cuda) return cuda::mse_loss(prediction, target, sample_weights);
  const double norm = weight_total * static_cast<double>(per_row);
  LossResult result{0.0, Tensor(prediction.shape())};
  const float* p = prediction.data();
  const float* t = target.data();
  float* g = result.grad.data();
  const double scale = 2.0 / norm;
  // Four partial sums: one chain of dependent double adds was most of this loop's time.
  double partial[4] = {0.0, 0.0, 0.0, 0.0};
  if (sample_weights.empty()) {  // a flat loop over the elements, which vectorizes
    const auto count = prediction.numel();
    std::int64_t k = 0;
    for (; k + 4 <= count; k += 4)
      for (int l = 0; l < 4; ++l) {
        const double d = static_cast<double>(p[k + l]) - t[k + l];
        partial[l] += d * d;
        g[k + l] = static_cast<float>(d * scale);
      }
    for (; k < count; ++k) {
      const double d = static_cast<double>(p[k]) - t[k];
      partial[k % 4] += d * d;
      g[k] = static_cast<float>(d * scale);
    }
  } else {
    for (std::int64_t i = 0; i < rows; ++i) {
      const double w = sample_weights[i];
      for (std::int64_t j = 0; j < per_row; ++j) {
        const auto k = i * per_row + j;
        const double d = static_cast<double>(p[k]) - t[k];
        partial[k % 4] += w * d * d;
        g[k] = static_cast<float>(w * d * scale);
      }
    }
  }
  result.loss = ((partial[0] + partial[1]) + (partial[2] + partial[3])) / norm;
  return result;
}

namespace {
void check_classification(const Tensor& logits, std::span<const std::int64_t> labels, const char* what) {
  if (logits.dim() != 2) throw std::invalid_argument(std::string(what) + ": logits must be [N, classes], got " + to_string(logits.shape()));
  if (static_cast<std::int64_t>(labels.size()) != logits.size(0)) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(labels.size()) + " labels for " +
                                std::to_string(logits.size(0)) + " rows of logits");
  }
  for (auto label : labels)
    if (label < 0 || label >= logits.size(1)) {
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(label) + " outside [0, " +
                                  std::to_string(logits.size(1)) + "); check the number of classes");
    }
}
}  // namespace

LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int64_t> labels,
                                 double label_smoothing) {
  check_classification(logits, labels, "softmax_cross_entropy");
  const auto n = logits.size(0), c = logits.size(1);
  if (n == 0) throw std::invalid_argument("softmax_cross_entropy: empty batch");
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0)) {
    throw std::invalid_argument("softmax_cross_entropy: label_smoothing must be in [0, 1), not " +
                                std::to_string(label_smoothing));
  }
  if (logits.device() == Device::cuda) return cuda::softmax_cross_entropy(logits, labels, label_smoothing);
  const double on_label = 1.0 - label_smoothing, everywhere = label_smoothing / static_cast<double>(c);
  LossResult result{0.0, Tensor(logits.shape())};
  const float* z = logits.data();
  float* g = result.grad.data();
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = z + i * c;
    double max = row[0];
    for (std::int64_t j = 1; j < c; ++j) max = std::max(max, static_cast<double>(row[j]));
    double total = 0.0;
    for (std::int64_t j = 0; j < c; ++j) total += std::exp(row[j] - max);
    const double log_total = std::log(total);
    // -sum_j q_j log p_j with q = on_label * onehot + everywhere (sum_j q_j = 1) and
    // log p_j = row[j] - max - log_total.
    double shifted_sum = 0.0;
    for (std::int64_t j = 0; j < c; ++j) shifted_sum += row[j] - max;
    result.loss += log_total - on_label * (row[labels[i]] - max) - everywhere * shifted_sum;
    for (std::int64_t j = 0; j < c; ++j) {
      const double softmax = std::exp(row[j] - max - log_total);
      const double target = (j == labels[i] ? on_label : 0.0) + everywhere;
      g[i * c + j] = static_cast<float>((softmax - target) / static_cast<double>(n));
    }
  }
  result.loss /= static_cast<double>(n);
  return result;
}

namespace {

class ReadyScalars final : public PendingScalars {
 public:
  explicit ReadyScalars(std::vector<double> values) : values_(std::move(values)) {}
  bool ready() const override { return true; }
  std::vector<double> wait() const override { return values_; }

 private:
  std::vector<double> values_;
};

}  // namespace

DeviceLabels::DeviceLabels(std::int64_t count, Device device)
    : storage_(count > 0 ? Tensor({count * 2}, device) : Tensor()), count_(count) {
  static_assert(sizeof(std::int64_t) == 2 * sizeof(float));
  if (count <= 0) throw std::invalid_argument("DeviceLabels: a label count must be positive, not " + std::to_string(count));
}

std::int64_t* DeviceLabels::data() {
  return storage_.defined() ? reinterpret_cast<std::int64_t*>(storage_.device_data()) : nullptr;
}
const std::int64_t* DeviceLabels::data() const {
  return storage_.defined() ? reinterpret_cast<const std::int64_t*>(storage_.device_data()) : nullptr;
}

ClassificationLoss softmax_cross_entropy_pending(const Tensor& logits, std::span<const std::int64_t> labels,
                                                 const DeviceLabels& device_labels, double label_smoothing) {
  if (device_labels.defined() &&
      (device_labels.device() != logits.device() || device_labels.size() != static_cast<std::int64_t>(labels.size()))) {
    throw std::invalid_argument("softmax_cross_entropy_pending: " + std::to_string(device_labels.size()) +
                                " device labels on " + to_string(device_labels.device()) + " for " +
                                std::to_string(labels.size()) + " labels and logits on " + to_string(logits.device()));
  }
  if (logits.device() == Device::cuda) {
    check_classification(logits, labels, "softmax_cross_entropy");
    if (logits.size(0) == 0) throw std::invalid_argument("softmax_cross_entropy: empty batch");
    if (!(label_smoothing >= 0.0 && label_smoothing < 1.0)) {
      throw std::invalid_argument("softmax_cross_entropy: label_smoothing must be in [0, 1), not " +
                                  std::to_string(label_smoothing));
    }
    return cuda::softmax_cross_entropy_pending(logits, labels, device_labels, label_smoothing);
  }
  auto loss = softmax_cross_entropy(logits, labels, label_smoothing);
  const auto correct = static_cast<double>(correct_predictions(logits, labels));
  const double loss_sum = loss.loss * static_cast<double>(logits.size(0));
  return {std::move(loss.grad), std::make_shared<ReadyScalars>(std::vector<double>{loss_sum, correct})};
}

std::int64_t correct_predictions(const Tensor& logits, std::span<const std::int64_t> labels) {
  check_classification(logits, labels, "accuracy");
  if (logits.device() == Device::cuda) return cuda::correct_predictions(logits, labels);
  const auto n = logits.size(0), c = logits.size(1);
  const float* z = logits.data();
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < c; ++j)
      if (z[i * c + j] > z[i * c + best]) best = j;
    if (best == labels[i]) ++correct;
  }
  return correct;
}

}  // namespace slurmlab::nn
