#pragma once
// What train-classifier reports and writes: an evaluation's loss, accuracy, per-class accuracy
// and confusion matrix (text, PNG, HDF5); the loss and accuracy curves with the best epoch; the
// prediction grid of fixed images; the model summary; the exported model for a model hub.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "classifier_model.hpp"
#include "slurmlab/data/images.hpp"
#include "slurmlab/io/tensorboard.hpp"
#include "slurmlab/nn/layers/layers.hpp"

namespace classifier {

struct Evaluation {
  std::string stage;  // "test" or "val"
  std::string checkpoint;
  double loss = 0.0;
  double accuracy = 0.0;
  std::int64_t samples = 0;
  std::vector<std::string> class_names;
  std::vector<std::int64_t> confusion;  // [true][predicted], row-major

  // Correct / all per true class (NaN for a class without samples).
  std::vector<double> per_class_accuracy() const;
  // The loss and accuracy, a per-class table and the confusion matrix, for the console.
  std::string format() const;
  // Rank 0: STAGE_report.txt, confusion_STAGE.png and STAGE.h5 (loss, accuracy, per-class
  // accuracy, confusion) in `dir`.
  void save(const std::filesystem::path& dir) const;
};

// Layer by layer: name, output shape for one input of `spec.input`, parameters (the "model
// summary" that Lightning prints), as a Markdown table.
std::string model_summary(slurmlab::nn::Sequential& network, const ModelSpec& spec);

// The same layers as a TensorBoard graph: an input node, then one node per layer (Sequentials
// expanded into '/' scopes) with its type as op, its output shape and parameter count.
std::vector<slurmlab::io::GraphNode> model_graph(slurmlab::nn::Sequential& network, const ModelSpec& spec);

// The epoch series recorded during fit (EpochHistory), for the curves.
struct History {
  std::vector<double> epoch, train_loss, train_accuracy, val_epoch, val_loss, val_accuracy;
};
// loss_curves.png and accuracy_curves.png with the best validation epoch marked.
void save_curves(const std::filesystem::path& dir, const History& history, const std::string& monitor);

// Images (as the data set stores them, uint8 CHW) with predicted and true labels, PNG bytes.
struct GridImage {
  slurmlab::data::ImageShape shape;
  std::vector<float> pixels;  // HxW (gray) or HxWx3 (interleaved) in [0, 1]
  std::int64_t label = 0, predicted = 0;
};
GridImage grid_image(const slurmlab::data::ImageView& view, std::int64_t label, std::int64_t predicted);
std::vector<unsigned char> prediction_grid_png(const std::vector<GridImage>& images,
                                               const std::vector<std::string>& class_names, const std::string& title);

// A model hub's layout in `dir`: model.safetensors (the weights, PyTorch names), config.json
// (architecture, classes, input, transforms) and README.md (a model card: data, metrics, how it
// was trained). Written atomically, file by file.
void export_model(const std::filesystem::path& dir, slurmlab::nn::Sequential& network, const ModelSpec& spec,
                  const std::string& data_description, const std::map<std::string, double>& metrics,
                  const std::string& training_summary);

}  // namespace classifier
