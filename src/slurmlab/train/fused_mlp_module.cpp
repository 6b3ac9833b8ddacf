#include "slurmlab/train/fused_mlp_module.hpp"

#include <span>
#include <stdexcept>

namespace slurmlab::train {
namespace {

std::span<const float> weights_of(const TrainBatch& batch) {
  return batch.weights.defined() ? batch.weights.span() : std::span<const float>{};
}

void require_targets(const TrainBatch& batch) {
  if (!batch.targets.defined()) throw std::invalid_argument("FusedMlpModule: a batch needs regression targets");
}

}  // namespace

FusedMlpModule::FusedMlpModule(nn::FusedMlp& net, nn::Layer& layers, nn::Adam& optimizer, double loss_scale)
    : net_(net), layers_(layers), optimizer_(optimizer), loss_scale_(loss_scale) {}

StepResult FusedMlpModule::training_step(const TrainBatch& batch) {
  require_targets(batch);
  net_.set_learning_rate(optimizer_.learning_rate());
  const auto rows = batch.samples();
  const double loss = net_.train_step(batch.inputs.span(), batch.targets.span(), weights_of(batch));
  return {loss * loss_scale_ * static_cast<double>(rows), rows, {}};
}

StepResult FusedMlpModule::validation_step(const TrainBatch& batch) {
  require_targets(batch);
  const auto rows = batch.samples();
  const double loss = net_.loss(batch.inputs.span(), batch.targets.span(), weights_of(batch));
  return {loss * loss_scale_ * static_cast<double>(rows), rows, {}};
}

nn::Tensor FusedMlpModule::predict_step(const TrainBatch& batch) {
  const auto rows = batch.counted_samples();
  nn::Tensor out({rows, net_.out()});
  net_.predict(batch.inputs.span().first(static_cast<std::size_t>(rows * net_.in())), out.span());
  return out;
}

}  // namespace slurmlab::train
