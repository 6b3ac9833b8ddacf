#pragma once
// train-classifier's own callbacks on the library's trainer:
//   EpochHistory: one console line per epoch on rank 0 (losses, accuracies, training images/s
//     over the trainer's epoch_train_seconds, validation not counted), a line when
//     the process's first training step is done (seconds since the process started), and the
//     per-epoch series for the curves, carried in checkpoints so a resumed run draws them whole.
//   ClassifierTensorBoard: what exercise 2 asks to look at in TensorBoard beyond what the
//     library's train::TensorBoardLogger writes (scalars per step and epoch, learning rate,
//     weight and gradient histograms, the model summary as text, the hyperparameters with the
//     final metrics): throughput and GPU memory per epoch, the confusion matrix and a
//     prediction grid of fixed validation images at every validation, into the logger's event
//     file. Rank 0 writes; the confusion matrix is reduced over all ranks.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "classifier_model.hpp"
#include "classifier_module.hpp"
#include "classifier_report.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/data/transforms.hpp"
#include "slurmlab/io/tensorboard.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/train/observers.hpp"
#include "slurmlab/train/trainer.hpp"

namespace classifier {

// airbench94 trains its whitening convolution's bias for the first `epochs` epochs only
// (airbench94.py's whiten_bias_epochs = 3), then freezes it: the optimizer skips it from then on.
class WhiteningBiasSchedule final : public slurmlab::train::Callback {
 public:
  WhiteningBiasSchedule(slurmlab::nn::Parameter& bias, std::int64_t epochs) : bias_(bias), epochs_(epochs) {}
  void on_train_epoch_start(slurmlab::train::Trainer& trainer) override {
    bias_.frozen = trainer.current_epoch() >= epochs_;
  }

 private:
  slurmlab::nn::Parameter& bias_;
  std::int64_t epochs_;
};

class EpochHistory final : public slurmlab::train::Callback {
 public:
  EpochHistory(const slurmlab::cli::Console& console, std::int64_t global_batch, std::int64_t epochs)
      : console_(console), global_batch_(global_batch), epochs_(epochs) {}
  void on_train_batch_end(slurmlab::train::Trainer& trainer, const slurmlab::train::StepResult& result) override;
  void on_train_epoch_end(slurmlab::train::Trainer& trainer) override;
  std::string state_key() const override { return "EpochHistory"; }
  std::string save_state() const override;
  void load_state(const std::string& state) override;

  const History& history() const { return history_; }
  double last_images_per_second() const { return images_per_second_; }

 private:
  const slurmlab::cli::Console& console_;
  std::int64_t global_batch_, epochs_;
  History history_;
  double images_per_second_ = 0.0;
  bool first_step_reported_ = false;
};

struct TensorBoardSetup {
  std::filesystem::path log_dir;
  ModelSpec spec;
  std::int64_t histogram_every = 5;
  std::int64_t step_every = 10;  // training-loss scalar every N batches
  // Fixed validation images of the prediction grid (as stored, and their labels).
  const slurmlab::data::ImageDataset* grid_set = nullptr;
  std::vector<std::int64_t> grid_indices;
  std::map<std::string, slurmlab::io::HParamValue> hparams;
};

// The library logger for this setup: scalars, histograms every histogram_every epochs, the
// hyperparameters and the model summary (text).
slurmlab::train::TensorBoardLoggerOptions logger_options(const TensorBoardSetup& setup,
                                                         slurmlab::nn::Sequential& network);

// Placed after `logger` in the trainer's callbacks (the logger opens its file first).
class ClassifierTensorBoard final : public slurmlab::train::Callback {
 public:
  ClassifierTensorBoard(TensorBoardSetup setup, std::shared_ptr<slurmlab::train::TensorBoardLogger> logger,
                        ClassifierModule& module, slurmlab::nn::Sequential& network, const EpochHistory& history);
  // The model graph (Graphs tab), once, into the logger's file (opened by its on_fit_start,
  // which runs first: the logger comes before this callback).
  void on_fit_start(slurmlab::train::Trainer& trainer) override;
  void on_train_epoch_start(slurmlab::train::Trainer& trainer) override;
  void on_validation_end(slurmlab::train::Trainer& trainer) override;
  void on_train_epoch_end(slurmlab::train::Trainer& trainer) override;
  bool writes_files() const override { return true; }

 private:
  TensorBoardSetup setup_;
  std::shared_ptr<slurmlab::train::TensorBoardLogger> logger_;
  ClassifierModule& module_;
  slurmlab::nn::Sequential& network_;
  const EpochHistory& history_;
};

// The prediction grid of `indices` of `set` as the network in eval mode predicts them
// (transformed by the spec's evaluation transforms).
std::vector<GridImage> predict_grid(slurmlab::nn::Sequential& network, const ModelSpec& spec,
                                    const slurmlab::data::ImageDataset& set, const std::vector<std::int64_t>& indices);

}  // namespace classifier
