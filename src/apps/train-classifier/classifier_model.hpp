#pragma once
// What a train-classifier checkpoint is a checkpoint of: the architecture by name, the classes,
// the input the network takes and the transforms that made it (ModelSpec). The spec travels in
// every checkpoint's trainer state (ModelSpecRecorder's callback state), so `test`, `predict`
// and `export` rebuild exactly the trained network from a checkpoint alone, and a checkpoint of
// another architecture, class count or input is refused before anything is loaded, with both
// named.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/data/images.hpp"
#include "slurmlab/data/transforms.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/train/trainer.hpp"

namespace classifier {

// The models train-classifier builds, by their command-line names.
inline constexpr const char* kModelNames = "tutorial-cnn, alexnet, resnet8, resnet20, mlp, mlp-extra, airbench94";

struct ModelSpec {
  std::string model = "tutorial-cnn";
  std::vector<std::string> class_names;
  slurmlab::data::ImageShape input;  // what the network takes (after the transforms)
  float dropout = 0.2f;
  std::int64_t mlp_hidden = 128;
  // The evaluation transforms (resize, centre crop, normalize) that turn a data set image into
  // `input`; predict and export apply or record the same.
  std::optional<slurmlab::data::ImageSize> resize, crop;
  std::vector<float> mean, std;
  std::string data_description;  // the training data set, one line (the model card's)
  // The seed and --val-size of the fit: evaluation uses the same synthetic images and the same
  // validation part, so `validate --ckpt best` reproduces the logged numbers.
  std::uint64_t data_seed = 0;
  double val_size = 0.1;
  // The fit's --data and, for the synthetic set, what made it: validate, test and predict
  // open the same images unless given another --data (empty in checkpoints from before these).
  std::string data_spec;
  std::int64_t synthetic_count = 0, synthetic_test_count = 0;
  int synthetic_classes = 0;
  std::string synthetic_shape;

  std::int64_t classes() const { return static_cast<std::int64_t>(class_names.size()); }
  // "tutorial-cnn for 10 classes of 3x32x32 input"
  std::string describe() const;
  std::string to_json() const;
  static ModelSpec from_json(const std::string& text);
  // The transforms of evaluation (centre crop) or training (random crop, flip and padding
  // added by the caller).
  slurmlab::data::TransformOptions evaluation_transforms() const;
};

// Builds the named network for the spec. Throws slurmlab::UsageError for an unknown name (listing
// kModelNames) and for an input the architecture cannot take (AlexNet needs 3 channels, the
// tutorial CNN 32x32 images, ...: found by one forward of a zero image), naming the fix.
std::unique_ptr<slurmlab::nn::Sequential> build_network(const ModelSpec& spec, slurmlab::nn::Generator& init);

// The images at `indices` of `set` as the network sees them in evaluation (the spec's resize,
// centre crop, normalisation): [n, C, H, W] on the host. `scratch` backs the decoded images;
// `views` (optional) receives them, for drawing.
slurmlab::nn::Tensor evaluation_batch(const ModelSpec& spec, const slurmlab::data::ImageDataset& set,
                                      const std::vector<std::int64_t>& indices,
                                      std::vector<std::vector<std::uint8_t>>& scratch,
                                      std::vector<slurmlab::data::ImageView>* views = nullptr);

// Carries the spec in every checkpoint's trainer state; stateless otherwise.
class ModelSpecRecorder final : public slurmlab::train::Callback {
 public:
  explicit ModelSpecRecorder(ModelSpec spec) : spec_(std::move(spec)) {}
  std::string state_key() const override { return "ModelSpec"; }
  std::string save_state() const override { return spec_.to_json(); }
  // A resumed fit must be of the same network: refuses another spec, naming both.
  void load_state(const std::string& state) override;

 private:
  ModelSpec spec_;
};

// The spec recorded in a checkpoint's trainer state (CHECKPOINT.trainer.json). UsageError when
// the file or its spec is missing, naming the checkpoint.
ModelSpec read_checkpoint_spec(const std::filesystem::path& checkpoint);

// `--ckpt best|last|PATH` against a run directory: best = the best top-k checkpoint recorded in
// RUN/checkpoints/last.h5's trainer state (ModelCheckpoint), last = RUN/checkpoints/last.h5.
// UsageError (naming what was looked for and the fix) when there is none.
std::filesystem::path resolve_checkpoint(const std::string& ckpt, const std::filesystem::path& run_dir);

// Refuses (UsageError naming both) a checkpoint whose spec differs from what this run builds
// in architecture, class count or input shape.
void require_same_network(const ModelSpec& recorded, const ModelSpec& wanted, const std::string& where);

}  // namespace classifier
