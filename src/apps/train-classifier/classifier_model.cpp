#include "classifier_model.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/models/models.hpp"

namespace classifier {

using slurmlab::UsageError;
namespace data = slurmlab::data;
namespace nn = slurmlab::nn;

namespace {

nlohmann::json size_json(const std::optional<data::ImageSize>& size) {
  return size ? nlohmann::json::array({size->height, size->width}) : nlohmann::json(nullptr);
}
std::optional<data::ImageSize> size_from(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  return data::ImageSize{j.at(0).get<int>(), j.at(1).get<int>()};
}

}  // namespace

std::string ModelSpec::describe() const {
  return model + " for " + std::to_string(classes()) + " classes of " + data::to_string(input) + " input";
}

std::string ModelSpec::to_json() const {
  nlohmann::json j;
  j["model"] = model;
  j["class_names"] = class_names;
  j["input"] = {input.channels, input.height, input.width};
  j["dropout"] = dropout;
  j["mlp_hidden"] = mlp_hidden;
  j["resize"] = size_json(resize);
  j["crop"] = size_json(crop);
  j["mean"] = mean;
  j["std"] = std;
  j["data"] = data_description;
  j["data_seed"] = data_seed;
  j["val_size"] = val_size;
  j["data_spec"] = data_spec;
  j["synthetic"] = {{"count", synthetic_count}, {"test_count", synthetic_test_count}, {"classes", synthetic_classes},
                    {"shape", synthetic_shape}};
  return j.dump();
}

ModelSpec ModelSpec::from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  ModelSpec spec;
  spec.model = j.at("model").get<std::string>();
  spec.class_names = j.at("class_names").get<std::vector<std::string>>();
  spec.input = {j.at("input").at(0).get<int>(), j.at("input").at(1).get<int>(), j.at("input").at(2).get<int>()};
  spec.dropout = j.at("dropout").get<float>();
  spec.mlp_hidden = j.at("mlp_hidden").get<std::int64_t>();
  spec.resize = size_from(j.at("resize"));
  spec.crop = size_from(j.at("crop"));
  spec.mean = j.at("mean").get<std::vector<float>>();
  spec.std = j.at("std").get<std::vector<float>>();
  spec.data_description = j.value("data", "");
  spec.data_seed = j.value("data_seed", std::uint64_t{0});
  spec.val_size = j.value("val_size", 0.1);
  spec.data_spec = j.value("data_spec", "");
  if (j.contains("synthetic")) {
    const auto& synthetic = j.at("synthetic");
    spec.synthetic_count = synthetic.at("count").get<std::int64_t>();
    spec.synthetic_test_count = synthetic.at("test_count").get<std::int64_t>();
    spec.synthetic_classes = synthetic.at("classes").get<int>();
    spec.synthetic_shape = synthetic.at("shape").get<std::string>();
  }
  return spec;
}

data::TransformOptions ModelSpec::evaluation_transforms() const {
  data::TransformOptions t;
  t.resize = resize;
  t.crop = crop;
  t.crop_placement = data::CropPlacement::center;
  t.mean = mean;
  t.std = std;
  return t;
}

std::unique_ptr<nn::Sequential> build_network(const ModelSpec& spec, nn::Generator& init) {
  const auto classes = spec.classes();
  if (classes < 2) throw UsageError("a classifier needs at least 2 classes; the data set has " + std::to_string(classes));
  std::unique_ptr<nn::Sequential> net;
  std::string fix;
  if (spec.model == "tutorial-cnn") {
    net = nn::make_tutorial_cnn(spec.input.channels, classes, spec.dropout, init);
    fix = "the tutorial CNN takes 32x32 images: pass --resize 32 (or --crop 32)";
  } else if (spec.model == "alexnet") {
    if (spec.input.channels != 3) {
      throw UsageError("alexnet takes 3-channel images but the data set's have " + std::to_string(spec.input.channels) +
                       "; use --model tutorial-cnn, resnet8 or mlp for grayscale data");
    }
    net = nn::make_alexnet(classes, spec.dropout, init);
    fix = "AlexNet takes images of at least 63x63: pass --resize 70 --crop 64 (the practical's) or larger";
  } else if (spec.model == "resnet8" || spec.model == "resnet20") {
    net = nn::make_small_resnet(spec.input.channels, classes, spec.model == "resnet8" ? 1 : 3, init);
    fix = "the small ResNets take images of at least 8x8: pass --resize 32";
  } else if (spec.model == "airbench94") {
    net = nn::make_airbench94(spec.input.channels, classes, init);
    fix = "airbench94 takes 32x32 images (CIFAR-10's): pass --resize 32 (--preset airbench94 does)";
  } else if (spec.model == "mlp" || spec.model == "mlp-extra") {
    // mlp-extra: the timing lab's MLP with its two extra Linear(hidden, hidden) + ReLU layers.
    net = nn::make_image_mlp(spec.input.bytes(), spec.mlp_hidden, classes, spec.dropout, init,
                             spec.model == "mlp-extra" ? 2 : 0);
  } else {
    throw UsageError("unknown --model '" + spec.model + "'; choose one of " + kModelNames);
  }
  // One forward of a zero image finds an input the architecture cannot take, before training.
  try {
    (void)net->forward(nn::Tensor::zeros({1, spec.input.channels, spec.input.height, spec.input.width}),
                       nn::Mode::eval);
  } catch (const std::invalid_argument& e) {
    throw UsageError(spec.model + " cannot take " + data::to_string(spec.input) + " images (" + e.what() + "); " + fix);
  }
  return net;
}

nn::Tensor evaluation_batch(const ModelSpec& spec, const data::ImageDataset& set, const std::vector<std::int64_t>& indices,
                            std::vector<std::vector<std::uint8_t>>& scratch, std::vector<data::ImageView>* views) {
  const data::ImageTransform transform(spec.evaluation_transforms(), set.channels(), set.fixed_shape());
  if (transform.output_shape() != spec.input) {
    // The batch is sized for the network's input: images that come out another size would
    // overrun it (the callers check the data sets first; this is the last guard).
    throw UsageError("the images of " + set.describe() + " come out " + data::to_string(transform.output_shape()) +
                     " after the evaluation transforms, but the network takes " + data::to_string(spec.input) +
                     "; pass --resize HxW so that every split comes out the network's size");
  }
  data::TransformWorkspace workspace;
  const auto floats = transform.output_floats();
  nn::Tensor batch({static_cast<std::int64_t>(indices.size()), spec.input.channels, spec.input.height, spec.input.width});
  scratch.resize(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const auto view = set.image(indices[i], scratch[i]);
    if (views) views->push_back(view);
    transform.apply(view, data::ImageTransform::Choices{}, batch.data() + static_cast<std::int64_t>(i) * floats, workspace);
  }
  return batch;
}

void ModelSpecRecorder::load_state(const std::string& state) {
  require_same_network(ModelSpec::from_json(state), spec_, "the checkpoint to resume");
}

ModelSpec read_checkpoint_spec(const std::filesystem::path& checkpoint) {
  if (!std::filesystem::exists(checkpoint)) {
    throw UsageError("checkpoint " + checkpoint.string() + " does not exist; pass --ckpt best, last or a .h5 path " +
                     "under a run's checkpoints/ folder");
  }
  const auto sidecar = checkpoint.string() + ".trainer.json";
  std::ifstream in(sidecar);
  if (!in) {
    throw UsageError("checkpoint " + checkpoint.string() + " has no trainer state beside it (" + sidecar +
                     "), so which network it holds is unknown; pass a checkpoint written by train-classifier");
  }
  try {
    const auto j = nlohmann::json::parse(in);
    return ModelSpec::from_json(j.at("callbacks").at("ModelSpec").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("checkpoint state " + sidecar + " holds no train-classifier model description (" + e.what() +
                     "); pass a checkpoint written by train-classifier");
  }
}

std::filesystem::path resolve_checkpoint(const std::string& ckpt, const std::filesystem::path& run_dir) {
  const auto last = run_dir / "checkpoints" / "last.h5";
  if (ckpt == "last" || ckpt == "best") {
    if (!std::filesystem::exists(last)) {
      throw UsageError("--ckpt " + ckpt + ": no checkpoint in " + (run_dir / "checkpoints").string() +
                       "; pass --output-dir of a finished fit run, or --ckpt PATH");
    }
    if (ckpt == "last") return last;
    std::ifstream in(last.string() + ".trainer.json");
    std::string best;
    try {
      const auto state = nlohmann::json::parse(in).at("callbacks").at("ModelCheckpoint").get<std::string>();
      best = nlohmann::json::parse(state).at("best_model_path").get<std::string>();
    } catch (const nlohmann::json::exception&) {
      best.clear();
    }
    if (best.empty()) {
      throw UsageError("--ckpt best: the run in " + run_dir.string() +
                       " recorded no best checkpoint (no validation yet?); use --ckpt last or a path");
    }
    // The recorded path is relative to where fit ran; the file is in the run's checkpoints/.
    const auto beside = run_dir / "checkpoints" / std::filesystem::path(best).filename();
    return std::filesystem::exists(beside) ? beside : std::filesystem::path(best);
  }
  return ckpt;
}

void require_same_network(const ModelSpec& recorded, const ModelSpec& wanted, const std::string& where) {
  if (recorded.model != wanted.model || recorded.classes() != wanted.classes() || !(recorded.input == wanted.input)) {
    throw UsageError(where + " holds a " + recorded.describe() + ", but this run builds a " + wanted.describe() +
                     "; use the same --model and --data (and transforms), or another checkpoint");
  }
  // Same count, other classes: another data set (e.g. the synthetic default for a CIFAR-10
  // network), whose labels would be read as the network's classes.
  for (std::size_t i = 0; i < recorded.class_names.size(); ++i) {
    if (recorded.class_names[i] != wanted.class_names[i]) {
      throw UsageError(where + " was trained on classes named '" + recorded.class_names[i] + "', '" +
                       recorded.class_names[(i + 1) % recorded.class_names.size()] + "', ..., but this --data names class " +
                       std::to_string(i) + " '" + wanted.class_names[i] +
                       "'; give the --data the fit used, or another checkpoint");
    }
  }
}

}  // namespace classifier
