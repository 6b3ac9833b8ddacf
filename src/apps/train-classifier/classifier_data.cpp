#include "classifier_data.hpp"

#include <algorithm>
#include <sstream>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/core/parse.hpp"
#include "slurmlab/nn/cuda/device.hpp"

namespace classifier {

using slurmlab::UsageError;
namespace data = slurmlab::data;

namespace {

// At most this many training images feed the normalization statistics (evenly spaced).
constexpr std::int64_t kStatisticsImages = 5000;

std::vector<float> parse_floats(const std::string& text, const std::string& what) {
  std::vector<float> values;
  for (const auto& item : slurmlab::split_comma_list(text)) {
    const auto v = slurmlab::parse_finite_double(item);
    if (!v) throw UsageError("--normalize " + what + " '" + item + "' is not a number; write M1,M2,M3/S1,S2,S3");
    values.push_back(static_cast<float>(*v));
  }
  return values;
}

std::string join_floats(const std::vector<float>& values) {
  std::ostringstream out;
  out.precision(9);
  for (std::size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  return out.str();
}

}  // namespace

DataSetup open_data_for(const ProgramOptions& options, const slurmlab::cluster::MpiSession& session,
                        std::optional<int> cpus_per_task, std::uint64_t seed) {
  DataSetup setup;
  data::SyntheticImageOptions synthetic;
  synthetic.count = options.synthetic_count;
  synthetic.test_count = options.synthetic_test_count;
  synthetic.classes = options.synthetic_classes;
  synthetic.shape = parse_image_shape(options.synthetic_shape, "synthetic-shape");
  synthetic.seed = seed;
  setup.train_set = data::open_image_dataset(options.data, data::Split::train, synthetic);
  setup.split = data::split_train_validation(setup.train_set->size(), options.val_size, seed);
  setup.test_is_validation = !data::has_separate_test_split(options.data);
  if (!setup.test_is_validation) {
    setup.test_set = data::open_image_dataset(options.data, data::Split::test, synthetic);
    if (setup.test_set->class_names() != setup.train_set->class_names()) {
      throw UsageError("the test split of " + options.data + " has other classes than its training split; "
                       "give both splits the same class folders");
    }
  } else {
    // One folder of class folders: its "test split" would be the training images themselves, so
    // the test is the held-out validation part (said in the data line), never a trained image.
    if (setup.split.validation.empty()) {
      throw UsageError(options.data + " has no val/ or test/ folder, so its test images are held out from it, and "
                       "--val-size 0 holds out none; give a --val-size, or a DIR/train + DIR/val layout");
    }
    setup.test_set = data::subset_of(*setup.train_set, setup.split.validation,
                                     "validation part (the folder has no val/ or test/ of its own)");
  }
  if (options.batch_size_per_rank > 0) {
    setup.global_batch = options.batch_size_per_rank * session.size();
  } else {
    if (options.batch_size < 1) throw UsageError("--batch-size must be at least 1");
    if (options.batch_size % session.size() != 0) {
      throw UsageError("--batch-size " + std::to_string(options.batch_size) + " (global) does not divide into " +
                       std::to_string(session.size()) + " ranks; use a multiple of " + std::to_string(session.size()) +
                       " or --batch-size-per-rank");
    }
    setup.global_batch = options.batch_size;
  }
  setup.loader_threads = options.loader_threads >= 0 ? options.loader_threads : std::max(1, cpus_per_task.value_or(2) - 1);
  return setup;
}

DataSetup open_data(const ProgramOptions& options, const slurmlab::cluster::MpiSession& session,
                    std::optional<int> cpus_per_task, std::uint64_t seed, ModelSpec& spec) {
  // Every step that may fail runs collectively: a data set missing on one node ends all ranks
  // with its message instead of leaving the others in the broadcast below.
  DataSetup setup;
  session.run_collectively([&] {
    setup = open_data_for(options, session, cpus_per_task, seed);
    const auto train_images = static_cast<std::int64_t>(setup.split.train.size());
    if (setup.global_batch > train_images) {
      // A larger batch would be padded with repeats of the same images (and sized for memory
      // as if they were new: a batch of 100000 ran out of memory on 64 images).
      const auto ranks = static_cast<std::int64_t>(session.size());
      const std::string fix =
          options.batch_size_per_rank > 0
              ? "use a --batch-size-per-rank of at most " + std::to_string(train_images / ranks)
              : "use a --batch-size of at most " + std::to_string(train_images - train_images % ranks) +
                    (ranks > 1 ? " (a multiple of the " + std::to_string(ranks) + " ranks)" : std::string());
      throw UsageError("the global batch of " + std::to_string(setup.global_batch) + " is larger than the " +
                       std::to_string(train_images) + " training images of " + options.data +
                       " (after the validation part); " + fix);
    }
    spec.class_names = setup.train_set->class_names();
    spec.data_description = setup.train_set->describe();
    spec.data_seed = seed;
    spec.val_size = options.val_size;
    spec.data_spec = options.data;
    spec.synthetic_count = options.synthetic_count;
    spec.synthetic_test_count = options.synthetic_test_count;
    spec.synthetic_classes = options.synthetic_classes;
    spec.synthetic_shape = options.synthetic_shape;
    spec.resize = parse_optional_size(options.resize, "--resize");
    spec.crop = parse_optional_size(options.crop, "--crop");
    spec.mean.clear();
    spec.std.clear();
    if (options.normalize == "none") {
      setup.normalization_note = "normalize: none (values in [0, 1])";
    } else if (options.normalize != "auto") {
      const auto slash = options.normalize.find('/');
      if (slash == std::string::npos) {
        throw UsageError("--normalize '" + options.normalize + "' is not auto, none or M1,M2,M3/S1,S2,S3");
      }
      spec.mean = parse_floats(options.normalize.substr(0, slash), "mean");
      spec.std = parse_floats(options.normalize.substr(slash + 1), "std");
      setup.normalization_note = "normalize: mean " + join_floats(spec.mean) + ", std " + join_floats(spec.std) + " (given)";
    }
  });
  if (options.normalize == "auto") {
    // Rank 0 computes, every rank receives the same numbers (a broadcast of their text).
    std::string text;
    session.run_collectively([&] {
      if (!session.is_root()) return;
      const auto& train = setup.split.train;
      std::vector<std::int64_t> sample;
      const auto step = std::max<std::int64_t>(1, static_cast<std::int64_t>(train.size()) / kStatisticsImages);
      for (std::size_t i = 0; i < train.size(); i += static_cast<std::size_t>(step)) sample.push_back(train[i]);
      const auto stats = data::compute_channel_statistics(*setup.train_set, sample);
      text = join_floats(stats.mean) + "/" + join_floats(stats.std) + "/" + std::to_string(sample.size());
    });
    text = session.broadcast(text);
    const auto slash = text.find('/'), second = text.find('/', slash + 1);
    spec.mean = parse_floats(text.substr(0, slash), "mean");
    spec.std = parse_floats(text.substr(slash + 1, second - slash - 1), "std");
    for (auto& s : spec.std) s = std::max(s, 1e-3f);  // a constant channel: no division by zero
    setup.normalization_note = "normalize: mean " + join_floats(spec.mean) + ", std " + join_floats(spec.std) +
                               " (from " + text.substr(second + 1) + " training images)";
  }
  session.run_collectively([&] {
    // The network's input: what the evaluation transforms make of this data set's images.
    const data::ImageTransform evaluation(spec.evaluation_transforms(), setup.train_set->channels(),
                                          setup.train_set->fixed_shape());
    spec.input = evaluation.output_shape();
    require_test_split_fits(spec, setup);
  });
  return setup;
}

void require_test_split_fits(const ModelSpec& spec, const DataSetup& setup) {
  const data::ImageTransform test(spec.evaluation_transforms(), setup.test_set->channels(), setup.test_set->fixed_shape());
  if (test.output_shape() != spec.input) {
    throw UsageError("the test images (" + setup.test_set->describe() + ") come out " +
                     data::to_string(test.output_shape()) + " after the evaluation transforms, but the training images " +
                     "give the network " + data::to_string(spec.input) + "; pass --resize HxW so that both come out " +
                     "one size");
  }
}

namespace {

// The transform and this rank's sampler of `part` (training: shuffled, augmented).
std::pair<data::ImageTransform, data::ShardedSampler> part_pipeline(const DataSetup& setup, const ModelSpec& spec,
                                                                  const ProgramOptions& options, Part part,
                                                                  int world_size, int rank, std::uint64_t seed) {
  const bool training = part == Part::train;
  const data::ImageDataset& set = part == Part::test ? *setup.test_set : *setup.train_set;
  auto transforms = spec.evaluation_transforms();
  if (training) {
    transforms.crop_placement = data::CropPlacement::random;
    transforms.crop_padding = options.crop_padding;
    transforms.reflect_padding = options.crop_padding_mode == "reflect";
    transforms.horizontal_flip = options.flip;
    if (options.crop_padding > 0 && !transforms.crop) {
      throw UsageError("--crop-padding " + std::to_string(options.crop_padding) +
                       " pads before a random crop, but no --crop is given; add --crop HxW");
    }
  }
  data::ImageTransform transform(transforms, set.channels(), set.fixed_shape());
  const auto last = training && options.drop_last ? data::LastBatch::drop : data::LastBatch::pad;
  if (part == Part::test) {
    return {std::move(transform),
            data::ShardedSampler(set.size(), setup.global_batch, world_size, rank, seed, last, /*shuffle=*/false)};
  }
  const auto& indices = training ? setup.split.train : setup.split.validation;
  return {std::move(transform),
          data::ShardedSampler(indices, setup.global_batch, world_size, rank, seed, last, /*shuffle=*/training)};
}

}  // namespace

LoaderSource make_loader(const DataSetup& setup, const ModelSpec& spec, const ProgramOptions& options, Part part,
                         int world_size, int rank, std::uint64_t seed, slurmlab::nn::Device device) {
  auto [transform, sampler] = part_pipeline(setup, spec, options, part, world_size, rank, seed);
  LoaderSource out;
  data::BatchLoaderOptions loader_options;
  loader_options.workers = setup.loader_threads;
  loader_options.seed = seed;
  loader_options.pinned_memory = device == slurmlab::nn::Device::cuda;
  out.loader = std::make_unique<data::BatchLoader>(part == Part::test ? *setup.test_set : *setup.train_set,
                                                   std::move(sampler), std::move(transform), loader_options);
  out.source = std::make_unique<slurmlab::train::LoaderBatchSource>(*out.loader, device);
  out.note = std::to_string(setup.loader_threads) + " loader thread(s) per rank" +
             (loader_options.pinned_memory ? " into pinned memory, copied to the GPU without waiting" : "");
  return out;
}

LoaderSource make_train_source(const DataSetup& setup, const ModelSpec& spec, const ProgramOptions& options,
                               int world_size, int rank, std::uint64_t seed, slurmlab::nn::Device device) {
  if (device != slurmlab::nn::Device::cuda && options.data_on_gpu == "on") {
    throw UsageError("--data-on-gpu on holds the training set on a GPU, but this run computes on the CPU; use "
                     "--device cuda on a GPU node, or --data-on-gpu auto");
  }
  if (device != slurmlab::nn::Device::cuda || options.data_on_gpu == "off") {
    return make_loader(setup, spec, options, Part::train, world_size, rank, seed, device);
  }
  auto [transform, sampler] = part_pipeline(setup, spec, options, Part::train, world_size, rank, seed);
  LoaderSource out;
  try {
    out.device_set = data::make_cuda_device_image_set(*setup.train_set, transform, slurmlab::nn::cuda_options().device);
  } catch (const UsageError& e) {
    if (options.data_on_gpu == "on") {
      throw UsageError(std::string("--data-on-gpu on: ") + e.what() + " (--data-on-gpu auto falls back to the loader)");
    }
    auto loader = make_loader(setup, spec, options, Part::train, world_size, rank, seed, device);
    loader.note += " (training set not on the GPU: " + std::string(e.what()) + ")";
    return loader;
  }
  out.source = std::make_unique<slurmlab::train::DeviceBatchSource>(*out.device_set, *setup.train_set,
                                                                      std::move(sampler), seed, device);
  out.note = "training set resident on the GPU (" + out.device_set->describe() +
             "), cropped, flipped and normalized there; " + std::to_string(setup.loader_threads) +
             " loader thread(s) per rank for evaluation";
  return out;
}

}  // namespace classifier
