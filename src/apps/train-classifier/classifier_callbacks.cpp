#include "classifier_callbacks.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "slurmlab/core/process.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/nn/cuda/device.hpp"

namespace classifier {

namespace data = slurmlab::data;
namespace io = slurmlab::io;
namespace nn = slurmlab::nn;
namespace train = slurmlab::train;

namespace {

double metric_or_nan(const train::Metrics& metrics, const std::string& name) {
  const auto found = metrics.find(name);
  return found == metrics.end() ? std::nan("") : found->second;
}

}  // namespace

void EpochHistory::on_train_batch_end(train::Trainer& trainer, const train::StepResult&) {
  if (!first_step_reported_) {
    first_step_reported_ = true;
    // Done, not queued: a GPU step is waited for (once).
    if (trainer.module()) trainer.module()->wait_for_device();
    if (const auto age = slurmlab::process_age_seconds()) {
      char line[128];
      std::snprintf(line, sizeof line, "first training step done %.2f s after the process started", *age);
      console_.line(line);
    }
  }
}

void EpochHistory::on_train_epoch_end(train::Trainer& trainer) {
  const double seconds = trainer.epoch_train_seconds();
  images_per_second_ =
      seconds > 0.0 ? static_cast<double>(trainer.epoch_train_batches() * global_batch_) / seconds : 0.0;
  const auto& m = trainer.metrics();
  const auto epoch = static_cast<double>(trainer.current_epoch());
  history_.epoch.push_back(epoch);
  history_.train_loss.push_back(metric_or_nan(m, "train_loss"));
  history_.train_accuracy.push_back(metric_or_nan(m, "train_accuracy"));
  char line[256];
  int n = std::snprintf(line, sizeof line, "epoch %lld/%lld  train_loss %.4f  train_acc %.2f%%",
                        static_cast<long long>(trainer.current_epoch() + 1), static_cast<long long>(epochs_),
                        history_.train_loss.back(), 100.0 * history_.train_accuracy.back());
  if (trainer.validated_this_epoch()) {
    history_.val_epoch.push_back(epoch);
    history_.val_loss.push_back(metric_or_nan(m, "val_loss"));
    history_.val_accuracy.push_back(metric_or_nan(m, "val_accuracy"));
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), "  val_loss %.4f  val_acc %.2f%%",
                       history_.val_loss.back(), 100.0 * history_.val_accuracy.back());
  }
  std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), "  %.0f img/s  lr %.3g", images_per_second_,
                trainer.learning_rate());
  console_.line(line);
}

std::string EpochHistory::save_state() const {
  nlohmann::json j;
  j["epoch"] = history_.epoch;
  j["train_loss"] = history_.train_loss;
  j["train_accuracy"] = history_.train_accuracy;
  j["val_epoch"] = history_.val_epoch;
  j["val_loss"] = history_.val_loss;
  j["val_accuracy"] = history_.val_accuracy;
  return j.dump();
}

void EpochHistory::load_state(const std::string& state) {
  const auto j = nlohmann::json::parse(state);
  history_.epoch = j.at("epoch").get<std::vector<double>>();
  history_.train_loss = j.at("train_loss").get<std::vector<double>>();
  history_.train_accuracy = j.at("train_accuracy").get<std::vector<double>>();
  history_.val_epoch = j.at("val_epoch").get<std::vector<double>>();
  history_.val_loss = j.at("val_loss").get<std::vector<double>>();
  history_.val_accuracy = j.at("val_accuracy").get<std::vector<double>>();
}

std::vector<GridImage> predict_grid(nn::Sequential& network, const ModelSpec& spec, const data::ImageDataset& set,
                                    const std::vector<std::int64_t>& indices) {
  std::vector<GridImage> out;
  if (indices.empty()) return out;
  std::vector<std::vector<std::uint8_t>> scratch;
  std::vector<data::ImageView> views;
  const nn::Tensor batch = evaluation_batch(spec, set, indices, scratch, &views);
  const auto logits = network.forward(batch.to(nn::device_of(network)), nn::Mode::eval).output.to(nn::Device::cpu);
  const auto predicted = argmax_rows(logits);
  for (std::size_t i = 0; i < indices.size(); ++i)
    out.push_back(grid_image(views[i], set.label(indices[i]), predicted[i]));
  return out;
}

train::TensorBoardLoggerOptions logger_options(const TensorBoardSetup& setup, nn::Sequential& network) {
  train::TensorBoardLoggerOptions options;
  options.log_dir = setup.log_dir;
  options.log_every_n_steps = setup.step_every;
  options.histogram_every_n_epochs = setup.histogram_every;
  options.hparams = setup.hparams;
  options.text = {{"model/summary", model_summary(network, setup.spec)}};
  return options;
}

ClassifierTensorBoard::ClassifierTensorBoard(TensorBoardSetup setup, std::shared_ptr<train::TensorBoardLogger> logger,
                                             ClassifierModule& module, nn::Sequential& network,
                                             const EpochHistory& history)
    : setup_(std::move(setup)), logger_(std::move(logger)), module_(module), network_(network), history_(history) {}

void ClassifierTensorBoard::on_fit_start(train::Trainer&) {
  if (auto* writer = logger_->writer()) writer->graph(model_graph(network_, setup_.spec));
}

void ClassifierTensorBoard::on_train_epoch_start(train::Trainer&) {
  module_.reset_confusion();
}

void ClassifierTensorBoard::on_validation_end(train::Trainer& trainer) {
  // Collective: every rank contributes its counts.
  const auto confusion = module_.reduced_confusion(trainer.options().communicator);
  auto* writer = logger_->writer();
  if (!writer) return;
  const auto step = trainer.current_epoch();
  std::vector<double> cells(confusion.begin(), confusion.end());
  io::HeatMapOptions heat;
  heat.title = "validation confusion matrix, epoch " + std::to_string(step);
  heat.x_label = "predicted";
  heat.y_label = "true";
  heat.row_labels = heat.column_labels = setup_.spec.class_names;
  const auto classes = setup_.spec.class_names.size();
  writer->image("val/confusion_matrix", step, io::heat_map_png(cells, classes, classes, heat));
  if (setup_.grid_set && !setup_.grid_indices.empty()) {
    const auto grid = predict_grid(network_, setup_.spec, *setup_.grid_set, setup_.grid_indices);
    writer->image(
        "val/predictions", step,
        prediction_grid_png(grid, setup_.spec.class_names, "epoch " + std::to_string(step) + ": predicted (true)"));
  }
}

void ClassifierTensorBoard::on_train_epoch_end(train::Trainer& trainer) {
  auto* writer = logger_->writer();
  if (!writer) return;
  const auto epoch = trainer.current_epoch();
  writer->scalar("train/images_per_second", epoch, history_.last_images_per_second());
  if (nn::device_of(network_) == nn::Device::cuda) {
    writer->scalar("train/gpu_peak_memory_mib", epoch, static_cast<double>(nn::cuda_peak_bytes()) / (1 << 20));
  }
}

}  // namespace classifier
