#pragma once
// The classifier as the trainer sees it: training through train::NetworkModule (cross-entropy
// with label smoothing, gradients averaged by the reducer), evaluation that also counts a
// confusion matrix (true class x predicted class) over the real samples of every batch, so
// that test and validation report per-class accuracy across all ranks.
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "slurmlab/train/module.hpp"

namespace classifier {

class ClassifierModule final : public slurmlab::train::TrainableModule {
 public:
  ClassifierModule(slurmlab::nn::Layer& network, slurmlab::nn::Optimizer& optimizer, std::int64_t classes,
                   slurmlab::nn::GradientReducer* reducer, double label_smoothing);
  slurmlab::train::StepResult training_step(const slurmlab::train::TrainBatch& batch) override {
    return inner_.training_step(batch);
  }
  slurmlab::train::StepResult validation_step(const slurmlab::train::TrainBatch& batch) override;
  void reduce_gradients() override { inner_.reduce_gradients(); }
  void synchronize_buffers() override { inner_.synchronize_buffers(); }
  void wait_for_device() override { inner_.wait_for_device(); }
  slurmlab::nn::Layer& network() override { return inner_.network(); }
  slurmlab::nn::Optimizer& optimizer() override { return inner_.optimizer(); }

  // Counts since the last reset, this rank's; reduced_confusion() is collective on
  // `communicator` (MPI_COMM_NULL: this rank's) and row-major [true][predicted].
  void reset_confusion();
  std::vector<std::int64_t> reduced_confusion(MPI_Comm communicator) const;
  std::int64_t classes() const { return classes_; }
  // Test-time augmentation of evaluation (nn::tta_logits level 0, 1 or 2); fit validates its
  // epochs without it and sets it for the final test.
  void set_tta(int level) { tta_ = level; }

 private:
  slurmlab::train::NetworkModule inner_;
  std::int64_t classes_;
  int tta_ = 0;
  std::vector<std::int64_t> confusion_;
};

// The class with the largest logit in each row of host logits [N, C] (ties: lowest index).
std::vector<std::int64_t> argmax_rows(const slurmlab::nn::Tensor& logits);

}  // namespace classifier
