#pragma once
// train-classifier's options (LightningCLI's, natively): one set shared by every subcommand, so a
// config written by `fit --print-config` serves `validate`, `test`, `predict` and `export` too.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slurmlab/cli/options.hpp"
#include "slurmlab/data/images.hpp"
#include "slurmlab/data/transforms.hpp"
#include "slurmlab/train/trainer.hpp"

namespace classifier {

enum class Subcommand { fit, validate, test, predict, export_model };
inline constexpr const char* kSubcommands = "fit, validate, test, predict, export";

// Reads the subcommand from argv[1] and removes it from argv (so the rest parses as options).
// `--help`/`-h` first: nullopt, and the caller prints the overview. Nothing: UsageError (a
// missing subcommand is a usage error, exit 2). Anything else: UsageError naming the word and
// the subcommands.
std::optional<Subcommand> take_subcommand(int& argc, char** argv);
const char* to_string(Subcommand subcommand);

// --preset NAME: a known recipe's settings as the defaults, which the other options on the
// command line (or in --config) still override. Names: kPresets. Command line only: it is
// taken out of argv before parsing, and --print-config writes the settings it chose.
inline constexpr const char* kPresets = "airbench94";
struct ProgramOptions;
// Removes --preset NAME (or --preset=NAME) from argv and returns NAME, if given.
std::optional<std::string> take_preset(int& argc, char** argv);
// Sets o's fields to the preset's recipe; UsageError naming kPresets for an unknown name.
void apply_preset(const std::string& name, ProgramOptions& o);

struct ProgramOptions {
  // Data
  std::string data = "synthetic";
  double val_size = 0.1;
  std::int64_t synthetic_count = 6000;
  std::int64_t synthetic_test_count = 1000;
  int synthetic_classes = 10;
  std::string synthetic_shape = "3x32x32";
  std::string resize = "none";  // HxW or H
  std::string crop = "none";
  int crop_padding = 0;
  std::string crop_padding_mode = "zeros";  // zeros | reflect
  bool flip = false;
  std::string normalize = "auto";  // auto | none | M1,M2,M3/S1,S2,S3
  int loader_threads = -1;         // -1: from SLURM_CPUS_PER_TASK
  std::string data_on_gpu = "auto";  // auto | on | off: the training set resident on the GPU
  bool drop_last = false;
  // Model
  std::string model = "tutorial-cnn";
  float dropout = 0.2f;
  std::int64_t mlp_hidden = 128;
  // Optimisation
  std::string optimizer = "adam";
  double lr = 1e-3;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::string schedule = "constant";  // constant | cosine | step:N:GAMMA | triangle:PEAK:START:END
  std::int64_t warmup_steps = 0;
  double label_smoothing = 0.0;
  std::int64_t epochs = 5;
  std::int64_t max_steps = -1;
  std::int64_t batch_size = 64;           // global: independent of the rank count
  std::int64_t batch_size_per_rank = 0;   // when > 0: the global batch is this x ranks
  std::string precision = "fp32";          // fp32 | tf32 | bf16 (GPU only for the last two)
  double gradient_clip_norm = 0.0;
  double gradient_clip_value = 0.0;
  std::int64_t accumulate_grad_batches = 1;
  int threads = 0;  // compute threads per rank (0: SLURM_CPUS_PER_TASK, else 1)
  // Trainer
  std::string limit_train_batches = "1.0";
  std::string limit_val_batches = "1.0";
  std::string limit_test_batches = "1.0";
  std::int64_t fast_dev_run = 0;
  std::int64_t check_val_every_n_epoch = 1;
  std::string monitor = "val_loss";
  std::int64_t save_top_k = 1;
  std::int64_t patience = 0;  // early stopping: 0 = off
  double min_delta = 0.0;
  bool requeue_on_sigterm = false;
  bool tensorboard = true;
  std::int64_t histogram_every = 5;
  int grid_images = 16;
  bool test_after_fit = true;
  int tta = 0;  // test-time augmentation of test/validate (and fit's final test): 0, 1 or 2
  // Checkpoints, prediction, export
  std::string ckpt = "";  // fit: resume (default last); others: best | last | PATH
  std::string input = "";  // predict: image files or folders, comma-separated
  int top_k = 3;
  std::string out = "";  // export: the folder to write
};

void add_program_options(slurmlab::cli::OptionParser& parser, ProgramOptions& options);

// A limit option: a count ("20") or a fraction ("0.25", "1.0"). UsageError naming the option.
slurmlab::train::BatchLimit parse_batch_limit(const std::string& text, const std::string& option);
// "none" or an image size.
std::optional<slurmlab::data::ImageSize> parse_optional_size(const std::string& text, const std::string& option);
// "3x32x32" -> ImageShape.
slurmlab::data::ImageShape parse_image_shape(const std::string& text, const std::string& option);

}  // namespace classifier
