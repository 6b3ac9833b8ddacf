#include "classifier_module.hpp"

#include <algorithm>
#include <span>
#include <stdexcept>

#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"

namespace classifier {

namespace nn = slurmlab::nn;
namespace train = slurmlab::train;

ClassifierModule::ClassifierModule(nn::Layer& network, nn::Optimizer& optimizer, std::int64_t classes,
                                   nn::GradientReducer* reducer, double label_smoothing)
    : inner_(network, optimizer, train::LossKind::softmax_cross_entropy, reducer, label_smoothing),
      classes_(classes),
      confusion_(static_cast<std::size_t>(classes * classes), 0) {}

std::vector<std::int64_t> argmax_rows(const nn::Tensor& logits) {
  const auto n = logits.size(0), c = logits.size(1);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  const float* z = logits.data();
  for (std::int64_t i = 0; i < n; ++i) {
    out[static_cast<std::size_t>(i)] = std::max_element(z + i * c, z + (i + 1) * c) - (z + i * c);
  }
  return out;
}

train::StepResult ClassifierModule::validation_step(const train::TrainBatch& batch) {
  // The inner module's loss and accuracy over the real samples; the predictions once more on
  // the host for the confusion matrix (N x C floats: small next to the forward pass).
  auto& net = inner_.network();
  const auto device = nn::device_of(net);
  const auto logits = nn::tta_logits(net, batch.inputs, tta_, device).to(nn::Device::cpu);
  const auto counted = batch.counted_samples();
  const auto predicted = argmax_rows(logits);
  train::StepResult result;
  result.samples = counted;
  if (counted == 0) return result;
  const nn::Tensor real = nn::Tensor::from({counted, logits.size(1)},
                                           std::span<const float>(logits.data(), static_cast<std::size_t>(counted * logits.size(1))));
  const std::span<const std::int64_t> labels(batch.labels.data(), static_cast<std::size_t>(counted));
  result.loss_sum = nn::softmax_cross_entropy(real, labels).loss * static_cast<double>(counted);
  double correct = 0.0;
  for (std::int64_t i = 0; i < counted; ++i) {
    const auto truth = labels[static_cast<std::size_t>(i)], guess = predicted[static_cast<std::size_t>(i)];
    ++confusion_[static_cast<std::size_t>(truth * classes_ + guess)];
    correct += truth == guess ? 1.0 : 0.0;
  }
  result.sums["accuracy"] = correct;
  return result;
}

void ClassifierModule::reset_confusion() { std::fill(confusion_.begin(), confusion_.end(), 0); }

std::vector<std::int64_t> ClassifierModule::reduced_confusion(MPI_Comm communicator) const {
  auto out = confusion_;
  if (communicator != MPI_COMM_NULL) {
    if (MPI_Allreduce(MPI_IN_PLACE, out.data(), static_cast<int>(out.size()), MPI_INT64_T, MPI_SUM, communicator) !=
        MPI_SUCCESS) {
      throw std::runtime_error("MPI_Allreduce of the confusion matrix failed");
    }
  }
  return out;
}

}  // namespace classifier
