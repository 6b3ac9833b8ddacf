#pragma once
// FusedMlpModule: nn::FusedMlp (forward, weighted MSE, backward and Adam in one pass) as a
// TrainableModule, so the trainer's loop, callbacks and checkpoints drive it as any network.
//
// Contract
//   Steps: training_step runs FusedMlp::train_step on the batch (inputs [n, in], targets [n,
//     out], optional per-row weights [n]): the update is applied there (steps_itself()), so the
//     trainer does not accumulate, clip or step for it. Losses are reported as the batch's
//     (weighted) mean MSE times loss_scale (e.g. the target's variance, to report in its
//     units) times the row count, per the StepResult contract.
//   Learning rate: the trainer's schedules set optimizer()'s rate; each step copies it into
//     the FusedMlp first.
//   Checkpoints: network() and optimizer() are a make_mlp network and an nn::Adam over it
//     (the checkpoint's form, by PyTorch names); the FusedMlp's weights and moments are copied
//     into them before a save and back after a resume, not at every step.
//   Ranks: one process (FusedMlp trains on one core or two); reduce_gradients does nothing.
//   Ownership: borrows the FusedMlp, the layers and the optimizer.
#include "slurmlab/nn/models/fused_mlp.hpp"
#include "slurmlab/train/module.hpp"

namespace slurmlab::train {

class FusedMlpModule final : public TrainableModule {
 public:
  FusedMlpModule(nn::FusedMlp& net, nn::Layer& layers, nn::Adam& optimizer, double loss_scale = 1.0);
  StepResult training_step(const TrainBatch& batch) override;
  StepResult validation_step(const TrainBatch& batch) override;
  nn::Tensor predict_step(const TrainBatch& batch) override;
  void reduce_gradients() override {}
  nn::Layer& network() override { return layers_; }
  nn::Optimizer& optimizer() override { return optimizer_; }
  bool steps_itself() const override { return true; }
  void on_save_checkpoint() override { net_.store_to(layers_, &optimizer_); }
  void on_load_checkpoint() override { net_.load_from(layers_, &optimizer_); }

 private:
  nn::FusedMlp& net_;
  nn::Layer& layers_;
  nn::Adam& optimizer_;
  double loss_scale_;
};

}  // namespace slurmlab::train
