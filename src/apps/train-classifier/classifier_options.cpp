#include "classifier_options.hpp"

#include "classifier_model.hpp"

#include <cmath>
#include <cstring>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/core/parse.hpp"

namespace classifier {

using slurmlab::UsageError;
namespace data = slurmlab::data;
namespace train = slurmlab::train;

std::optional<Subcommand> take_subcommand(int& argc, char** argv) {
  if (argc < 2) {
    throw UsageError(std::string("no subcommand given; start with one of ") + kSubcommands +
                     " (e.g. `train-classifier fit --epochs 3`), or see `train-classifier --help`");
  }
  if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) return std::nullopt;
  const std::string word = argv[1];
  Subcommand subcommand;
  if (word == "fit") subcommand = Subcommand::fit;
  else if (word == "validate") subcommand = Subcommand::validate;
  else if (word == "test") subcommand = Subcommand::test;
  else if (word == "predict") subcommand = Subcommand::predict;
  else if (word == "export") subcommand = Subcommand::export_model;
  else {
    throw UsageError("'" + word + "' is not a subcommand; start with one of " + kSubcommands +
                     " (e.g. `train-classifier fit --epochs 3`)");
  }
  for (int i = 1; i + 1 < argc; ++i) argv[i] = argv[i + 1];
  --argc;
  return subcommand;
}

const char* to_string(Subcommand subcommand) {
  switch (subcommand) {
    case Subcommand::fit: return "fit";
    case Subcommand::validate: return "validate";
    case Subcommand::test: return "test";
    case Subcommand::predict: return "predict";
    case Subcommand::export_model: return "export";
  }
  return "?";
}

void add_program_options(slurmlab::cli::OptionParser& parser, ProgramOptions& o) {
  parser
      .add("data", o.data,
           "mnist:DIR | fashion-mnist:DIR | kmnist:DIR | cifar10:DIR | cifar100:DIR | folder:DIR | synthetic")
      .add("val-size", o.val_size, "validation part of the training set: a count (5000) or a fraction (0.1)")
      .add("synthetic-count", o.synthetic_count, "synthetic set: training images")
      .add("synthetic-test-count", o.synthetic_test_count, "synthetic set: test images")
      .add("synthetic-classes", o.synthetic_classes, "synthetic set: classes (2..12)")
      .add("synthetic-shape", o.synthetic_shape, "synthetic set: CxHxW (channels 1 or 3)")
      .add("resize", o.resize, "resize every image to HxW (or H for a square) first, bilinear; none: keep")
      .add("crop", o.crop, "random crop HxW for training, centre crop for evaluation; none: no crop")
      .add("crop-padding", o.crop_padding, "padding on every side before the random crop")
      .add("crop-padding-mode", o.crop_padding_mode, "that padding: zeros, or reflect (the image mirrored, no edge repeat)")
      .add_flag("flip", o.flip, "random horizontal flip in training")
      .add("normalize", o.normalize,
           "auto (per-channel mean/std of the training part), none, or M1,M2,M3/S1,S2,S3 on [0,1] values")
      .add("loader-threads", o.loader_threads,
           "background threads decoding and augmenting batches per rank (-1: SLURM_CPUS_PER_TASK - 1, at least 1)")
      .add("data-on-gpu", o.data_on_gpu,
           "with --device cuda, hold the training images on the GPU and crop/flip/normalize there (no loader "
           "threads, no copies per step): auto (when the set has one image size and fits in half the free GPU "
           "memory), on (refuse to start otherwise), off")
      .add_flag("drop-last", o.drop_last, "drop the last incomplete training batch (else it is padded, as DistributedSampler)")
      .add("model", o.model, std::string("architecture: ") + kModelNames)
      .add("dropout", o.dropout, "dropout probability of the model's dropout layers")
      .add("mlp-hidden", o.mlp_hidden, "hidden width of --model mlp and mlp-extra")
      .add("optimizer", o.optimizer, "adam, adamw or sgd")
      .add("lr", o.lr, "learning rate")
      .add("momentum", o.momentum, "SGD momentum")
      .add_flag("nesterov", o.nesterov, "SGD: Nesterov momentum")
      .add("weight-decay", o.weight_decay, "weight decay (L2 for adam and sgd, decoupled for adamw)")
      .add("schedule", o.schedule,
           "learning-rate schedule per step: constant, cosine, step:N:GAMMA (x GAMMA every N steps), or "
           "triangle:PEAK:START:END (lr x START rising to lr at fraction PEAK of the steps, then to lr x END)")
      .add("warmup-steps", o.warmup_steps, "linear warm-up steps before the schedule")
      .add("label-smoothing", o.label_smoothing, "label smoothing of the training loss, in [0, 1)")
      .add("epochs", o.epochs, "epochs (Lightning's max_epochs)")
      .add("max-steps", o.max_steps, "stop after this many optimizer steps (-1: no limit)")
      .add("batch-size", o.batch_size, "GLOBAL batch over all ranks (the run is the same on any rank count)")
      .add("batch-size-per-rank", o.batch_size_per_rank, "if > 0: batch per rank instead; the global batch is this x ranks")
      .add("precision", o.precision, "fp32, or bf16 (mixed precision: products in bf16) on GPUs and on CPUs with native bf16 "
           "(AVX512-BF16/AMX); tf32 on GPUs")
      .add("gradient-clip-norm", o.gradient_clip_norm, "clip the global gradient L2 norm to this (0: off)")
      .add("gradient-clip-value", o.gradient_clip_value, "clip every gradient element to [-v, v] (0: off)")
      .add("accumulate-grad-batches", o.accumulate_grad_batches, "batches whose gradients make one optimizer step")
      .add("threads", o.threads, "compute threads per rank (0: SLURM_CPUS_PER_TASK, else 1)")
      .add("limit-train-batches", o.limit_train_batches, "batches per training epoch: a count or a fraction")
      .add("limit-val-batches", o.limit_val_batches, "validation batches: a count or a fraction")
      .add("limit-test-batches", o.limit_test_batches, "test batches: a count or a fraction")
      .add("fast-dev-run", o.fast_dev_run, "run N batches of train, val and test, write no checkpoint or log (0: off)")
      .add("check-val-every-n-epoch", o.check_val_every_n_epoch, "validate every N epochs")
      .add("monitor", o.monitor, "metric choosing the best checkpoint and early stopping: val_loss or train_loss (min), "
           "val_accuracy or train_accuracy (max)")
      .add("save-top-k", o.save_top_k, "keep the k best checkpoints (-1: all, 0: only last)")
      .add("patience", o.patience, "early stopping: validations without improvement (0: off)")
      .add("min-delta", o.min_delta, "early stopping: smallest improvement that counts")
      .add_flag("requeue-on-sigterm", o.requeue_on_sigterm, "requeue on SIGTERM too (SIGUSR1 always requeues)")
      .add("tensorboard", o.tensorboard, "write TensorBoard logs to OUTPUT/tensorboard")
      .add("histogram-every", o.histogram_every, "weight and gradient histograms every N epochs (0: never)")
      .add("grid-images", o.grid_images, "validation images in the per-epoch prediction grid (0: none)")
      .add("test-after-fit", o.test_after_fit, "after fit, test the best checkpoint on the test split")
      .add("tta", o.tta, "test-time augmentation of test and validate (and fit's final test): 0 none, "
                         "1 flip, 2 flip and 1-pixel translations (airbench94's)")
      .add("ckpt", o.ckpt, "fit: checkpoint to resume (default: last, if the run has one); "
                           "validate/test/predict/export: best, last or a path")
      .add("input", o.input, "predict: image files (PNG/JPEG) or folders, comma-separated; "
                             "test:N or val:N for the first N images of a split")
      .add("top-k", o.top_k, "predict: classes printed per image")
      .add("out", o.out, "export: folder for model.safetensors, config.json and README.md");
}

std::optional<std::string> take_preset(int& argc, char** argv) {
  std::optional<std::string> preset;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--preset") {
      if (i + 1 >= argc) throw UsageError(std::string("--preset needs a name: ") + kPresets);
      preset = argv[++i];
    } else if (word.rfind("--preset=", 0) == 0) {
      preset = word.substr(9);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return preset;
}

void apply_preset(const std::string& name, ProgramOptions& o) {
  if (name != "airbench94") throw UsageError("--preset '" + name + "' is not known; choose " + kPresets);
  // airbench94.py's hyperparameters, restated for a mean (not summed) loss: its lr 11.5 per
  // kilostep (1024 * (1 + 1 / (1 - 0.85)) examples) is 1.5 per mean-loss step, and its decay
  // 0.0153 * 1024 / kilostep = 0.0019957 per step is weight decay 0.0019957 / 1.5 on the
  // gradient. BatchNorm biases step 64x faster (the model's Parameter::lr_scale).
  o.model = "airbench94";
  o.optimizer = "sgd";
  o.nesterov = true;
  o.momentum = 0.85;
  o.lr = 1.5;
  o.weight_decay = 0.0153 * 1024.0 / (1024.0 * (1.0 + 1.0 / (1.0 - 0.85))) / 1.5;
  o.schedule = "triangle:0.23:0.2:0.07";
  o.label_smoothing = 0.2;
  o.batch_size = 1024;
  o.epochs = 10;
  o.flip = true;
  o.crop = "32";
  o.crop_padding = 2;  // translate by up to 2 pixels, the border mirrored as airbench's
  o.crop_padding_mode = "reflect";
  o.resize = "32";
  o.tta = 2;
}

train::BatchLimit parse_batch_limit(const std::string& text, const std::string& option) {
  const auto value = slurmlab::parse_finite_double(text);
  if (!value || *value < 0.0) {
    throw UsageError("--" + option + " must be a batch count (20) or a fraction (0.25), not '" + text + "'");
  }
  // "1.0" or "0.25" is a fraction; "20" or "1" a count, as Lightning's int vs float.
  if (text.find_first_of(".eE") != std::string::npos) {
    if (*value > 1.0) throw UsageError("--" + option + " fraction " + text + " is above 1; give a count without a point");
    return train::BatchLimit::fraction(*value);
  }
  return train::BatchLimit::count(static_cast<std::int64_t>(*value));
}

std::optional<data::ImageSize> parse_optional_size(const std::string& text, const std::string& option) {
  if (text == "none" || text.empty()) return std::nullopt;
  return data::parse_image_size(text, option);
}

data::ImageShape parse_image_shape(const std::string& text, const std::string& option) {
  const auto first = text.find('x');
  if (first == std::string::npos) throw UsageError("--" + option + " must be CxHxW (e.g. 3x32x32), not '" + text + "'");
  const auto channels = slurmlab::parse_integer(text.substr(0, first));
  if (!channels) throw UsageError("--" + option + " must be CxHxW (e.g. 3x32x32), not '" + text + "'");
  const auto size = data::parse_image_size(text.substr(first + 1), "--" + option);
  return {static_cast<int>(*channels), size.height, size.width};
}

}  // namespace classifier
