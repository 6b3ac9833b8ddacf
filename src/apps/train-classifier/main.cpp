// train-classifier: a CNN image classifier trained data-parallel across ranks (one per GPU, NCCL;
// or CPUs, MPI) on the library's trainer, with LightningCLI's subcommands:
//   fit       train, validate every epoch, keep the best and last checkpoints, then test the best
//   validate  evaluate a checkpoint (best, last or a path) on the validation part
//   test      evaluate a checkpoint on the test split: loss, accuracy, per class, confusion matrix
//   predict   top-k classes of images (PNG/JPEG files or folders) by a checkpoint
//   export    a checkpoint as model.safetensors + config.json + a model card (README.md)
#include <algorithm>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "classifier_callbacks.hpp"
#include "classifier_data.hpp"
#include "classifier_model.hpp"
#include "classifier_module.hpp"
#include "classifier_options.hpp"
#include "classifier_report.hpp"
#include "slurmlab/cli/console.hpp"
#include "slurmlab/cli/options.hpp"
#include "slurmlab/cli/program_run.hpp"
#include "slurmlab/cluster/rank_context.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/core/parse.hpp"
#include "slurmlab/data/image_codecs.hpp"
#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/metrics_writer.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"
#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/layers/cpu_precision.hpp"
#include "slurmlab/nn/distributed/data_parallel.hpp"
#include "slurmlab/nn/distributed/nccl_gradient_reducer.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/nn/optim/schedules.hpp"
#include "slurmlab/nn/serialize/checkpoint.hpp"
#include "slurmlab/train/callbacks.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;
using namespace classifier;

namespace {

constexpr const char* kOverview =
    "train-classifier: an image classifier (the Lightning tutorial CNN, AlexNet, small ResNets, an MLP) trained\n"
    "data-parallel over ranks, one per GPU (NCCL) or CPU (MPI), with checkpoints, TensorBoard and requeue.\n\n"
    "usage: train-classifier fit|validate|test|predict|export [options]   (train-classifier fit --help: all options)\n"
    "  fit        train; validate every epoch; keep the best and last checkpoints; test the best at the end\n"
    "  validate   evaluate --ckpt best|last|PATH on the validation part (the same split as fit's)\n"
    "  test       evaluate --ckpt on the test split: loss, accuracy, per-class accuracy, confusion matrix\n"
    "  predict    --ckpt best --input IMAGES: top-k classes per image\n"
    "  export     --ckpt best --out DIR: model.safetensors, config.json and a model card\n"
    "A config from `fit --print-config > fit.cfg` is read back by `--config fit.cfg` (command-line options win).\n"
    "`fit --preset airbench94`: airbench94's CIFAR-10 recipe (model, SGD-Nesterov, schedule, batch 1024, augmentation).\n"
    "Without --data it trains on a synthetic image set and says so.";

struct Run {
  cluster::MpiSession& session;
  const ProgramOptions& options;
  const cli::CommonOptions& common;
  const cluster::RankContext& context;
  cli::ProgramRun& program;
  const cli::Console& console;
  nn::Device device = nn::Device::cpu;
  std::optional<int> cpus_per_task;
  int compute_threads = 1;  // OpenBLAS/OpenMP threads per rank
  const cli::OptionParser* parser = nullptr;  // what the user gave (OptionParser::given)
};

// The data-parallel gradient reducer for this world: NCCL between GPUs, MPI between CPUs.
std::unique_ptr<nn::GradientReducer> make_reducer(const Run& run, nn::Sequential& network, bool overlap) {
  if (run.session.size() == 1) return nullptr;
#if defined(SLURMLAB_HAVE_CUDA)  // NCCL is built with the CUDA backend; without it no rank is on a GPU
  if (run.device == nn::Device::cuda) {
    auto reducer = std::make_unique<nn::NcclGradientReducer>(
        run.session.comm(), std::chrono::minutes(5), 25u << 20,
        [&session = run.session](const std::string& message) { session.abort(message, 1); });
    if (overlap) reducer->attach(network);
    return reducer;
  }
#else
  (void)network;
  (void)overlap;
#endif
  return std::make_unique<nn::MpiGradientReducer>(run.session.comm());
}

std::unique_ptr<nn::Optimizer> make_optimizer(const ProgramOptions& o, nn::Sequential& network) {
  auto parameters = nn::trainable_parameters_of(network);  // not airbench94's frozen whitening and BN scales
  if (o.optimizer == "sgd") {
    nn::SgdOptions sgd;
    sgd.learning_rate = o.lr;
    sgd.momentum = o.momentum;
    sgd.weight_decay = o.weight_decay;
    sgd.nesterov = o.nesterov;
    return std::make_unique<nn::Sgd>(std::move(parameters), sgd);
  }
  nn::AdamOptions adam;
  adam.learning_rate = o.lr;
  adam.weight_decay = o.weight_decay;
  adam.decoupled_weight_decay = o.optimizer == "adamw";
  return std::make_unique<nn::Adam>(std::move(parameters), adam);
}

std::unique_ptr<nn::LearningRateSchedule> make_schedule(const ProgramOptions& o, std::int64_t total_steps) {
  std::unique_ptr<nn::LearningRateSchedule> schedule;
  if (o.schedule == "cosine") {
    schedule = std::make_unique<nn::CosineSchedule>(o.lr, std::max<std::int64_t>(1, total_steps - o.warmup_steps));
  } else if (o.schedule.rfind("step:", 0) == 0) {
    const auto parts = split_comma_list(o.schedule.substr(5));
    const auto colon = o.schedule.find(':', 5);
    const auto size = parse_integer(o.schedule.substr(5, colon - 5));
    const auto gamma = colon == std::string::npos ? std::nullopt : parse_finite_double(o.schedule.substr(colon + 1));
    if (!size || *size < 1 || !gamma) {
      throw UsageError("--schedule '" + o.schedule + "' is not step:N:GAMMA (e.g. step:1000:0.1)");
    }
    schedule = std::make_unique<nn::StepSchedule>(o.lr, *size, *gamma);
  } else if (o.schedule.rfind("triangle:", 0) == 0) {
    const auto fields = o.schedule.substr(9);
    std::vector<double> values;
    std::size_t begin = 0;
    while (begin <= fields.size()) {
      const auto end = std::min(fields.find(':', begin), fields.size());
      const auto value = parse_finite_double(fields.substr(begin, end - begin));
      if (!value) break;
      values.push_back(*value);
      begin = end + 1;
    }
    if (values.size() != 3 || !(values[0] >= 0.0 && values[0] < 1.0) || values[1] < 0.0 || values[2] < 0.0) {
      throw UsageError("--schedule '" + o.schedule + "' is not triangle:PEAK:START:END with PEAK in [0, 1) " +
                       "(e.g. airbench94's triangle:0.23:0.2:0.07)");
    }
    schedule = std::make_unique<nn::TriangleSchedule>(o.lr, std::max<std::int64_t>(1, total_steps - o.warmup_steps),
                                                      values[0], values[1], values[2]);
  } else if (o.schedule == "constant") {
    if (o.warmup_steps == 0) return nullptr;
    schedule = std::make_unique<nn::StepSchedule>(o.lr, std::int64_t{1} << 62, 1.0);
  } else {
    throw UsageError("--schedule '" + o.schedule + "' is not constant, cosine, step:N:GAMMA or triangle:PEAK:START:END");
  }
  if (o.warmup_steps > 0) return std::make_unique<nn::WarmupSchedule>(o.warmup_steps, std::move(schedule));
  return schedule;
}

// The checks that need no data: the same on every rank, so a UsageError ends all alike.
void check_options(const ProgramOptions& o, Subcommand subcommand) {
  if (o.optimizer != "adam" && o.optimizer != "adamw" && o.optimizer != "sgd") {
    throw UsageError("--optimizer '" + o.optimizer + "' is not adam, adamw or sgd");
  }
  if (!(o.lr > 0.0)) throw UsageError("--lr must be positive");
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0)) throw UsageError("--label-smoothing must be in [0, 1)");
  if (o.precision != "fp32" && o.precision != "tf32" && o.precision != "bf16") {
    throw UsageError("--precision '" + o.precision + "' is not fp32, tf32 or bf16");
  }
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1 (--max-steps may end earlier)");
  if (o.model == "airbench94" && o.optimizer != "sgd") {
    throw UsageError("--model airbench94 steps its BatchNorm biases 64x faster, which only --optimizer sgd does; "
                     "use --optimizer sgd (--preset airbench94 sets it with the rest of the recipe), not " + o.optimizer);
  }
  if (o.nesterov && (o.optimizer != "sgd" || !(o.momentum > 0.0))) {
    throw UsageError("--nesterov needs --optimizer sgd with a positive --momentum");
  }
  if (o.top_k < 1) throw UsageError("--top-k must be at least 1");
  // Each numeric option in its range, named as typed (the trainer's own checks would say
  // accumulate_grad_batches, save_top_k, ... and some come only after the data is read).
  const auto text = [](auto value) { return cli::OptionParser::to_text(value); };
  if (!(o.dropout >= 0.0f && o.dropout < 1.0f)) throw UsageError("--dropout must be in [0, 1), not " + text(o.dropout));
  if (o.mlp_hidden < 1) throw UsageError("--mlp-hidden must be at least 1, not " + text(o.mlp_hidden));
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) throw UsageError("--momentum must be in [0, 1), not " + text(o.momentum));
  if (!(o.weight_decay >= 0.0 && std::isfinite(o.weight_decay))) {
    throw UsageError("--weight-decay must be 0 or more, not " + text(o.weight_decay));
  }
  if (o.warmup_steps < 0) throw UsageError("--warmup-steps must be 0 or more, not " + text(o.warmup_steps));
  if (!(o.gradient_clip_norm >= 0.0 && std::isfinite(o.gradient_clip_norm))) {
    throw UsageError("--gradient-clip-norm must be 0 (off) or more, not " + text(o.gradient_clip_norm));
  }
  if (!(o.gradient_clip_value >= 0.0 && std::isfinite(o.gradient_clip_value))) {
    throw UsageError("--gradient-clip-value must be 0 (off) or more, not " + text(o.gradient_clip_value));
  }
  if (o.accumulate_grad_batches < 1) {
    throw UsageError("--accumulate-grad-batches must be at least 1 (batches per optimizer step), not " +
                     text(o.accumulate_grad_batches));
  }
  if (o.threads < 0) throw UsageError("--threads must be 0 (from SLURM_CPUS_PER_TASK) or more, not " + text(o.threads));
  if (o.check_val_every_n_epoch < 1) {
    throw UsageError("--check-val-every-n-epoch must be at least 1, not " + text(o.check_val_every_n_epoch));
  }
  if (o.fast_dev_run < 0) throw UsageError("--fast-dev-run must be 0 (off) or a number of batches, not " + text(o.fast_dev_run));
  // The metrics the trainer logs for the classifier: the loss and accuracy of training and of
  // validation (ClassifierModule's steps).
  if (o.monitor != "val_loss" && o.monitor != "val_accuracy" && o.monitor != "train_loss" &&
      o.monitor != "train_accuracy") {
    throw UsageError("--monitor '" + o.monitor + "' is not a metric train-classifier logs; choose val_loss, " +
                     "val_accuracy, train_loss or train_accuracy");
  }
  if (o.save_top_k < -1) {
    throw UsageError("--save-top-k must be -1 (keep all), 0 (only last) or a count of 1 or more, not " +
                     text(o.save_top_k));
  }
  if (o.crop_padding_mode != "zeros" && o.crop_padding_mode != "reflect") {
    throw UsageError("--crop-padding-mode '" + o.crop_padding_mode + "' is not zeros or reflect");
  }
  if (o.data_on_gpu != "auto" && o.data_on_gpu != "on" && o.data_on_gpu != "off") {
    throw UsageError("--data-on-gpu '" + o.data_on_gpu + "' is not auto, on or off");
  }
  if (o.tta < 0 || o.tta > 2) {
    throw UsageError("--tta must be 0 (none), 1 (flip) or 2 (flip and 1-pixel translations), not " + std::to_string(o.tta));
  }
  (void)parse_batch_limit(o.limit_train_batches, "limit-train-batches");
  const auto val_batches = parse_batch_limit(o.limit_val_batches, "limit-val-batches");
  (void)parse_batch_limit(o.limit_test_batches, "limit-test-batches");
  if (val_batches.value == 0.0 && o.fast_dev_run == 0 && o.val_size != 0.0) {  // --fast-dev-run N sets every limit to N
    // The trainer would validate on nothing every epoch: the monitor and the curves would get no
    // validation numbers. --val-size 0 is the way to train without validation.
    if (subcommand == Subcommand::fit) {
      throw UsageError("--limit-val-batches " + o.limit_val_batches + " validates on no batches" +
                       (o.monitor.rfind("val_", 0) == 0 ? ", so --monitor " + o.monitor + " would never get a value"
                                                        : std::string()) +
                       "; give a batch count of 1 or more or a fraction above 0, or train without validation with " +
                       "--val-size 0");
    }
    if (subcommand == Subcommand::validate) {
      throw UsageError("--limit-val-batches " + o.limit_val_batches + " leaves validate no batches to evaluate; give " +
                       "a batch count of 1 or more or a fraction above 0");
    }
  }
  (void)make_schedule(o, 1);
  if (subcommand == Subcommand::predict && o.input.empty()) {
    throw UsageError("predict needs --input: image files or folders (comma-separated), or test:N / val:N");
  }
  if (subcommand == Subcommand::export_model && o.out.empty()) {
    throw UsageError("export needs --out DIR: the folder for model.safetensors, config.json and README.md");
  }
}

train::TrainerOptions trainer_options(const Run& run, const fs::path& root) {
  const auto& o = run.options;
  train::TrainerOptions t;
  t.max_epochs = o.epochs;
  t.max_steps = o.max_steps;
  t.check_val_every_n_epoch = o.check_val_every_n_epoch;
  t.limit_train_batches = parse_batch_limit(o.limit_train_batches, "limit-train-batches");
  t.limit_val_batches = parse_batch_limit(o.limit_val_batches, "limit-val-batches");
  t.limit_test_batches = parse_batch_limit(o.limit_test_batches, "limit-test-batches");
  t.fast_dev_run = o.fast_dev_run;
  t.accumulate_grad_batches = o.accumulate_grad_batches;
  if (o.gradient_clip_norm > 0.0) t.gradient_clip_norm = o.gradient_clip_norm;
  if (o.gradient_clip_value > 0.0) t.gradient_clip_value = o.gradient_clip_value;
  t.schedule_interval = train::ScheduleInterval::step;
  t.root_dir = root;
  t.communicator = run.session.size() > 1 ? run.session.comm() : MPI_COMM_NULL;
  t.handle_preemption = true;
  t.requeue_on_sigterm = o.requeue_on_sigterm;
  return t;
}

// Loads `path` (a train-classifier checkpoint) into a fresh network of its spec, collectively:
// a missing, corrupt or foreign checkpoint ends every rank with one sentence.
std::unique_ptr<nn::Sequential> load_network(const Run& run, const fs::path& path, ModelSpec& spec) {
  std::unique_ptr<nn::Sequential> network;
  run.session.run_collectively([&] {
    spec = read_checkpoint_spec(path);
    nn::Generator init(run.common.seed);
    network = build_network(spec, init);
    try {
      (void)nn::load_checkpoint(path, *network, nullptr);
    } catch (const std::runtime_error& e) {
      throw UsageError(std::string(e.what()) + "; pass another --ckpt");
    }
    nn::to_device(*network, run.device);
  });
  return network;
}

// Evaluates and prints; writes the report files (test_report.txt, test.h5, the confusion
// matrix) unless `write` is false (--fast-dev-run writes nothing).
Evaluation evaluate(const Run& run, train::Trainer& trainer, ClassifierModule& module, train::BatchSource& source,
                    const std::string& stage, const ModelSpec& spec, const std::string& checkpoint, bool write = true) {
  module.reset_confusion();
  const auto metrics = stage == "test" ? trainer.test(module, source) : trainer.validate(module, source);
  Evaluation e;
  e.stage = stage;
  e.checkpoint = checkpoint;
  e.loss = metrics.at(stage + "_loss");
  e.accuracy = metrics.at(stage + "_accuracy");
  e.class_names = spec.class_names;
  e.confusion = module.reduced_confusion(trainer.options().communicator);
  for (auto count : e.confusion) e.samples += count;
  run.console.line(e.format());
  if (write && run.session.is_root()) e.save(run.program.output_dir());
  return e;
}

std::string describe_batch(const DataSetup& setup, int ranks) {
  return "global batch " + std::to_string(setup.global_batch) + " = " + std::to_string(setup.global_batch / ranks) +
         " per rank x " + std::to_string(ranks) + " rank(s)";
}

int fit(Run& run) {
  const auto& o = run.options;
  const auto& session = run.session;
  ModelSpec spec;
  spec.model = o.model;
  spec.dropout = o.dropout;
  spec.mlp_hidden = o.mlp_hidden;
  auto setup = open_data(o, session, run.cpus_per_task, run.common.seed, spec);
  std::unique_ptr<nn::Sequential> network;
  session.run_collectively([&] {
    nn::Generator init(run.common.seed);
    network = build_network(spec, init);
    if (spec.model == "airbench94") {
      // The whitening filters from the first 5000 training images as the network sees them
      // (airbench's init_whitening_conv); every rank computes the same ones.
      const auto& train = setup.split.train;
      const std::vector<std::int64_t> first(train.begin(), train.begin() + std::min<std::ptrdiff_t>(5000, std::ssize(train)));
      std::vector<std::vector<std::uint8_t>> scratch;
      nn::init_patch_whitening(*network, evaluation_batch(spec, *setup.train_set, first, scratch));
    }
    nn::to_device(*network, run.device);
  });
  auto reducer = make_reducer(run, *network, o.accumulate_grad_batches == 1);
  if (reducer) reducer->broadcast_state(*network);
  auto optimizer = make_optimizer(o, *network);
  ClassifierModule module(*network, *optimizer, spec.classes(), reducer.get(), o.label_smoothing);

  LoaderSource train_data, val_data, test_data;
  session.run_collectively([&] {
    train_data = make_train_source(setup, spec, o, session.size(), session.rank(), run.common.seed, run.device);
    if (!setup.split.validation.empty()) {
      val_data = make_loader(setup, spec, o, Part::validation, session.size(), session.rank(), run.common.seed,
                             run.device);
    }
    test_data = make_loader(setup, spec, o, Part::test, session.size(), session.rank(), run.common.seed, run.device);
  });
  const auto steps_per_epoch =
      (train_data.source->batches_per_epoch() + o.accumulate_grad_batches - 1) / o.accumulate_grad_batches;
  const auto schedule = make_schedule(o, steps_per_epoch * o.epochs);
  auto options = trainer_options(run, run.program.output_dir());
  options.schedule = schedule.get();

  if (setup.train_set->synthetic()) {
    run.console.line("*** train-classifier: no --data given: training on a SYNTHETIC image set (drawn shapes); "
                     "accuracies below say nothing about real images ***");
  }
  run.console.line("data: " + setup.train_set->describe() + "; " + std::to_string(setup.split.train.size()) +
                   " train / " + std::to_string(setup.split.validation.size()) + " validation / " +
                   std::to_string(setup.test_set->size()) + " test images" +
                   (setup.test_is_validation ? " (the validation part: the folder has no val/ or test/)" : ""));
  run.console.line(setup.normalization_note + "; " + describe_batch(setup, session.size()) + "; " + train_data.note);
  std::int64_t trained = 0;
  for (const auto& p : optimizer->parameters()) trained += p.parameter->value.numel();
  const auto total = nn::parameter_count(*network);
  run.console.line("model: " + spec.describe() + ", " + std::to_string(total) + " parameters" +
                   (trained == total ? std::string() : " (" + std::to_string(trained) + " trained, the rest frozen)") +
                   "; " + optimizer->describe() + (o.nesterov ? " (Nesterov)" : "") + " lr " + std::to_string(o.lr) +
                   "; device " + run.context.gpu.describe() + ", precision " + o.precision +
                   (reducer ? (run.device == nn::Device::cuda ? ", NCCL" : ", MPI") + std::string(" gradient all-reduce")
                            : ""));
  run.program.log().line("fit: " + spec.describe() + ", " + describe_batch(setup, session.size()));

  const auto monitor_mode = o.monitor.find("acc") != std::string::npos ? train::MonitorMode::max : train::MonitorMode::min;
  train::ModelCheckpointOptions checkpointing;
  checkpointing.monitor = o.monitor;
  checkpointing.mode = monitor_mode;
  checkpointing.save_top_k = o.save_top_k;
  checkpointing.filename = "epoch={epoch}-" + o.monitor + "={" + o.monitor + ":.4f}";
  auto checkpoint = std::make_shared<train::ModelCheckpoint>(checkpointing);
  auto history = std::make_shared<EpochHistory>(run.console, setup.global_batch, o.epochs);
  // metrics.h5's root says what ran where, so a reader of the file alone (the CPU-vs-GPU lab's
  // report) knows the model, device and threads behind its epoch times.
  const auto parameters = static_cast<std::int64_t>(nn::parameter_count(*network));
  auto describe_run = [&run, &spec, &setup, &session, parameters](io::MetricsWriter& writer) {
    cli::write_run_attributes(writer, run.program.attributes());
    writer.set_attribute("", "model", spec.model);
    writer.set_attribute("", "parameters", parameters);
    writer.set_attribute("", "input", data::to_string(spec.input));
    writer.set_attribute("", "data", setup.train_set->describe());
    writer.set_attribute("", "synthetic_data", setup.train_set->synthetic());
    writer.set_attribute("", "train_images", static_cast<std::int64_t>(setup.split.train.size()));
    writer.set_attribute("", "global_batch", setup.global_batch);
    writer.set_attribute("", "device", run.device == nn::Device::cuda ? "cuda" : "cpu");
    writer.set_attribute("", "device_description", run.context.gpu.describe());
    writer.set_attribute("", "compute_threads", run.compute_threads);
    writer.set_attribute("", "loader_threads", setup.loader_threads);
    writer.set_attribute("", "cpus_per_task", run.cpus_per_task.value_or(0));
    writer.set_attribute("", "ranks", session.size());
  };
  std::vector<std::shared_ptr<train::Callback>> callbacks{
      std::make_shared<ModelSpecRecorder>(spec), history, checkpoint,
      std::make_shared<train::Hdf5MetricsLogger>(run.program.output_dir() / "metrics.h5", describe_run)};
  if (spec.model == "airbench94") {
    callbacks.push_back(std::make_shared<WhiteningBiasSchedule>(dynamic_cast<nn::Conv2d&>((*network)[0]).bias(), 3));
  }
  if (o.patience > 0) {
    callbacks.push_back(std::make_shared<train::EarlyStopping>(
        train::EarlyStoppingOptions{o.monitor, monitor_mode, o.patience, o.min_delta}));
  }
  if (o.tensorboard) {
    TensorBoardSetup tb;
    tb.log_dir = run.program.output_dir() / "tensorboard";
    tb.spec = spec;
    tb.histogram_every = o.histogram_every;
    tb.grid_set = setup.train_set.get();
    const auto grid = std::min<std::size_t>(static_cast<std::size_t>(std::max(0, o.grid_images)), setup.split.validation.size());
    tb.grid_indices.assign(setup.split.validation.begin(), setup.split.validation.begin() + static_cast<std::ptrdiff_t>(grid));
    tb.hparams = {{"model", o.model},           {"optimizer", o.optimizer},
                  {"lr", o.lr},                 {"batch_size", static_cast<double>(setup.global_batch)},
                  {"epochs", static_cast<double>(o.epochs)}, {"weight_decay", o.weight_decay},
                  {"label_smoothing", o.label_smoothing},   {"data", o.data},
                  {"ranks", static_cast<double>(session.size())}};
    // The library logger writes the scalars, histograms, hyperparameters and summary; the
    // classifier's images and throughput go into its file.
    auto logger = std::make_shared<train::TensorBoardLogger>(logger_options(tb, *network));
    callbacks.push_back(logger);
    callbacks.push_back(std::make_shared<train::LearningRateMonitor>(train::LoggingInterval::epoch, logger));
    callbacks.push_back(std::make_shared<ClassifierTensorBoard>(tb, logger, module, *network, *history));
  }
  train::Trainer trainer(options, callbacks);
  const std::string resume = o.ckpt.empty() ? "last" : o.ckpt;
  if (o.fast_dev_run == 0) {
    // A checkpoint of another network is refused here, naming both, before anything is loaded.
    const auto from = resume == "last" ? trainer.checkpoint_dir() / "last.h5" : fs::path(resume);
    if (resume != "last" || fs::exists(from)) {
      session.run_collectively([&] { require_same_network(read_checkpoint_spec(from), spec, "checkpoint " + from.string()); });
      run.console.line("resuming from " + from.string());
    }
  }
  trainer.fit(module, *train_data.source, val_data.source.get(), o.fast_dev_run > 0 ? std::string{} : resume);
  if (trainer.preempted_by() != 0) {
    run.console.line("train-classifier: stopped by " + std::string(trainer.preempted_by() == SIGUSR1 ? "SIGUSR1" : "SIGTERM") +
                     " at step " + std::to_string(trainer.global_step()) + "; " + trainer.requeue_message());
    return 0;
  }
  run.console.line("profile (rank 0):\n" + trainer.profile().describe());
  if (o.fast_dev_run > 0) {
    evaluate(run, trainer, module, *test_data.source, "test", spec, "the fast-dev-run weights", /*write=*/false);
    run.console.line("fast-dev-run: " + std::to_string(o.fast_dev_run) + " batch(es) of train, val and test ran; nothing written");
    return 0;
  }
  const auto& output_dir = run.program.output_dir();
  std::ostringstream summary;
  summary << "train-classifier fit: " << spec.describe() << " on " << setup.train_set->describe()
          << (setup.train_set->synthetic() ? " (SYNTHETIC)" : "") << "\n"
          << describe_batch(setup, session.size()) << ", " << trainer.global_step() << " optimizer steps\n";
  if (checkpoint->best_model_score()) {
    summary << "best " << o.monitor << " " << *checkpoint->best_model_score() << ": " << checkpoint->best_model_path().string()
            << "\n";
  }
  if (session.is_root() && !history->history().epoch.empty()) save_curves(output_dir, history->history(), o.monitor);
  if (o.test_after_fit) {
    // Lightning's trainer.test(ckpt_path="best"): the best weights, on every rank.
    const auto best = checkpoint->best_model_path().empty() ? checkpoint->last_model_path() : checkpoint->best_model_path();
    session.barrier();  // rank 0 has written it: the other ranks may read it now
    session.run_collectively([&] { (void)nn::load_checkpoint(best, *network, nullptr); });
    module.set_tta(o.tta);
    const auto test = evaluate(run, trainer, module, *test_data.source, "test", spec, best.string());
    summary << "test of " << best.string() << ": loss " << test.loss << ", accuracy " << test.accuracy << "\n";
    if (session.is_root() && o.grid_images > 0) {
      std::vector<std::int64_t> indices;
      for (std::int64_t i = 0; i < std::min<std::int64_t>(o.grid_images, setup.test_set->size()); ++i) indices.push_back(i);
      const auto grid = predict_grid(*network, spec, *setup.test_set, indices);
      io::write_file_atomically(output_dir / "predictions.png",
                                [&] {
                                  const auto png = prediction_grid_png(grid, spec.class_names, "test images: predicted (true)");
                                  return std::string(png.begin(), png.end());
                                }());
    }
  }
  run.console.line(summary.str());
  if (session.is_root()) io::write_file_atomically(output_dir / "summary.txt", summary.str());
  // What this run wrote (rank 0 writes and prints): options turn some of it off.
  std::string written;
  for (const char* name : {"summary.txt", "metrics.h5", "loss_curves.png", "accuracy_curves.png", "test_report.txt",
                           "confusion_test.png", "predictions.png", "checkpoints", "tensorboard"}) {
    if (fs::exists(output_dir / name)) written += std::string(name) + (fs::is_directory(output_dir / name) ? "/, " : ", ");
  }
  run.console.line("Results: " + fs::absolute(output_dir).string() + " (" + written + run.common.log_pattern + ")");
  return 0;
}

// The options with which validate, test and predict open the fit's images: its validation part
// and, where the user gave none, its --data and the synthetic set's size, classes and shape,
// so that `validate --ckpt best` reproduces the numbers the fit logged.
ProgramOptions with_fit_split(const Run& run, const ModelSpec& spec) {
  ProgramOptions out = run.options;
  out.val_size = spec.val_size;
  if (spec.data_spec.empty()) return out;  // a checkpoint from before the spec kept its data
  const auto given = [&](const char* name) { return run.parser != nullptr && run.parser->given(name); };
  if (!given("data")) out.data = spec.data_spec;
  if (out.data == "synthetic" && spec.data_spec == "synthetic") {
    // Each of the synthetic set's options the user did not give is the fit's.
    if (!given("synthetic-count")) out.synthetic_count = spec.synthetic_count;
    if (!given("synthetic-test-count")) out.synthetic_test_count = spec.synthetic_test_count;
    if (!given("synthetic-classes")) out.synthetic_classes = spec.synthetic_classes;
    if (!given("synthetic-shape")) out.synthetic_shape = spec.synthetic_shape;
  }
  return out;
}

// The checkpoint and the network it holds, for validate/test/predict/export; refuses a data set
// whose classes or image shape the network was not trained for.
struct LoadedModel {
  fs::path path;
  ModelSpec spec;
  std::unique_ptr<nn::Sequential> network;
};

LoadedModel load_model(const Run& run) {
  LoadedModel m;
  run.session.run_collectively(
      [&] { m.path = resolve_checkpoint(run.options.ckpt.empty() ? "best" : run.options.ckpt, run.program.output_dir()); });
  m.network = load_network(run, m.path, m.spec);
  run.console.line("checkpoint " + m.path.string() + ": " + m.spec.describe());
  return m;
}

// The data set opened for a checkpoint must be the kind it was trained on: same classes (by
// count and name) and, through the checkpoint's evaluation transforms, the network's input.
void require_data_fits(const LoadedModel& model, const DataSetup& setup) {
  ModelSpec wanted = model.spec;
  wanted.class_names = setup.train_set->class_names();
  const data::ImageTransform transform(model.spec.evaluation_transforms(), setup.train_set->channels(),
                                       setup.train_set->fixed_shape());
  wanted.input = transform.output_shape();
  require_same_network(model.spec, wanted, "checkpoint " + model.path.string());
  require_test_split_fits(model.spec, setup);
}

int evaluate_checkpoint(Run& run, Subcommand subcommand) {
  auto model = load_model(run);
  const auto& spec = model.spec;
  DataSetup setup;
  run.session.run_collectively([&] {
    setup = open_data_for(with_fit_split(run, spec), run.session, run.cpus_per_task, spec.data_seed);
    require_data_fits(model, setup);
  });
  if (setup.train_set->synthetic()) run.console.line("*** evaluating on the SYNTHETIC image set ***");
  nn::Sgd unused(nn::parameters_of(*model.network), nn::SgdOptions{});  // the module's interface needs one
  ClassifierModule module(*model.network, unused, spec.classes(), nullptr, 0.0);
  module.set_tta(run.options.tta);
  const bool test = subcommand == Subcommand::test;
  LoaderSource source;
  run.session.run_collectively([&] {
    if (!test && setup.split.validation.empty()) throw UsageError("validate: the fit held out no validation part (--val-size 0)");
    source = make_loader(setup, spec, run.options, test ? Part::test : Part::validation, run.session.size(),
                         run.session.rank(), spec.data_seed, run.device);
  });
  train::Trainer trainer(trainer_options(run, run.program.output_dir()));
  evaluate(run, trainer, module, *source.source, test ? "test" : "val", spec, model.path.string());
  return 0;
}

// predict's inputs: image files, folders of them, or test:N / val:N.
struct PredictInput {
  std::string name;
  data::ImageShape shape;
  std::vector<std::uint8_t> pixels;
};

std::vector<PredictInput> read_inputs(const Run& run, const LoadedModel& model) {
  const auto& spec = model.spec;
  std::vector<PredictInput> out;
  for (const auto& item : split_comma_list(run.options.input)) {
    if (item.rfind("test:", 0) == 0 || item.rfind("val:", 0) == 0) {
      const bool test = item[0] == 't';
      const auto count = parse_integer(item.substr(test ? 5 : 4));
      if (!count || *count < 1) throw UsageError("--input " + item + ": write test:N or val:N with N >= 1");
      auto setup = open_data_for(with_fit_split(run, spec), run.session, run.cpus_per_task, spec.data_seed);
      require_data_fits(model, setup);
      const auto& set = test ? *setup.test_set : *setup.train_set;
      const auto& indices = setup.split.validation;
      const auto n = std::min<std::int64_t>(*count, test ? set.size() : static_cast<std::int64_t>(indices.size()));
      for (std::int64_t i = 0; i < n; ++i) {
        const auto index = test ? i : indices[static_cast<std::size_t>(i)];
        std::vector<std::uint8_t> scratch;
        const auto view = set.image(index, scratch);
        PredictInput input;
        input.name = std::string(test ? "test" : "val") + "[" + std::to_string(index) + "] (true " +
                     set.class_names()[static_cast<std::size_t>(set.label(index))] + ")";
        input.shape = view.shape;
        input.pixels.assign(view.pixels, view.pixels + view.shape.bytes());
        out.push_back(std::move(input));
      }
      continue;
    }
    std::vector<fs::path> files;
    if (fs::is_directory(item)) {
      for (const auto& entry : fs::recursive_directory_iterator(item)) {
        auto ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (entry.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) throw UsageError("--input folder " + item + " holds no .png or .jpg images");
    } else if (fs::exists(item)) {
      files.push_back(item);
    } else {
      throw UsageError("--input " + item + " does not exist; give image files, folders, test:N or val:N");
    }
    for (const auto& file : files) {
      PredictInput input;
      input.name = file.string();
      const auto bytes = data::read_whole_file(file);
      input.shape = data::decode_image(bytes, file, 0, input.pixels);
      out.push_back(std::move(input));
    }
  }
  return out;
}

int predict(Run& run) {
  auto model = load_model(run);
  const auto& spec = model.spec;
  if (!run.session.is_root()) return 0;  // one process predicts; the others have nothing to do
  std::vector<PredictInput> inputs = read_inputs(run, model);
  std::ostringstream csv;
  csv << "input";
  for (int k = 1; k <= run.options.top_k; ++k) csv << ",class_" << k << ",probability_" << k;
  csv << "\n";
  data::TransformWorkspace workspace;
  for (auto& input : inputs) {
    if (input.shape.channels != spec.input.channels) {
      // Files decode to their own channel count; convert to the network's.
      const auto bytes = data::read_whole_file(input.name);
      input.shape = data::decode_image(bytes, input.name, spec.input.channels, input.pixels);
    }
    const data::ImageTransform transform(spec.evaluation_transforms(), spec.input.channels, input.shape);
    if (!(transform.output_shape() == spec.input)) {
      throw UsageError("image " + input.name + " is " + data::to_string(input.shape) + ", which the checkpoint's transforms make " +
                       data::to_string(transform.output_shape()) + ", but the network takes " + data::to_string(spec.input) +
                       "; resize the image, or train with --resize so that any size is accepted");
    }
    nn::Tensor x({1, spec.input.channels, spec.input.height, spec.input.width});
    transform.apply(data::ImageView{input.pixels.data(), input.shape}, data::ImageTransform::Choices{}, x.data(), workspace);
    const auto logits = model.network->forward(x.to(run.device), nn::Mode::eval).output.to(nn::Device::cpu);
    // Softmax probabilities, then the top k.
    const auto c = logits.size(1);
    std::vector<double> p(static_cast<std::size_t>(c));
    const double max = *std::max_element(logits.data(), logits.data() + c);
    double total = 0.0;
    for (std::int64_t j = 0; j < c; ++j) total += p[static_cast<std::size_t>(j)] = std::exp(logits.data()[j] - max);
    std::vector<std::int64_t> order(static_cast<std::size_t>(c));
    for (std::int64_t j = 0; j < c; ++j) order[static_cast<std::size_t>(j)] = j;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return p[static_cast<std::size_t>(a)] > p[static_cast<std::size_t>(b)]; });
    std::string line = input.name + ":";
    csv << '"' << input.name << '"';
    for (int k = 0; k < std::min<int>(run.options.top_k, static_cast<int>(c)); ++k) {
      const auto j = static_cast<std::size_t>(order[static_cast<std::size_t>(k)]);
      char part[128];
      std::snprintf(part, sizeof part, " %s %.1f%%", spec.class_names[j].c_str(), 100.0 * p[j] / total);
      line += part;
      csv << "," << spec.class_names[j] << "," << p[j] / total;
    }
    csv << "\n";
    std::cout << line << "\n";
  }
  io::write_file_atomically(run.program.output_dir() / "predictions.csv", csv.str());
  std::cout << "predictions.csv: " << (run.program.output_dir() / "predictions.csv").string() << std::endl;
  return 0;
}

int export_checkpoint(Run& run) {
  auto model = load_model(run);
  if (!run.session.is_root()) return 0;
  std::map<std::string, double> metrics;
  std::ifstream state(model.path.string() + ".trainer.json");
  std::string training = "Checkpoint " + model.path.filename().string() + ".";
  try {
    const auto j = nlohmann::json::parse(state);
    training += " Epoch " + std::to_string(j.at("epoch").get<std::int64_t>()) + ", optimizer step " +
                std::to_string(j.at("step").get<std::int64_t>()) + ".";
    const auto checkpoint = nlohmann::json::parse(j.at("callbacks").at("ModelCheckpoint").get<std::string>());
    if (!checkpoint.at("best_model_score").is_null()) {
      metrics[checkpoint.at("monitor").get<std::string>() + " (best)"] = checkpoint.at("best_model_score").get<double>();
    }
  } catch (const nlohmann::json::exception&) {
    // A checkpoint without callback state still exports; the card just has fewer numbers.
  }
  export_model(run.options.out, *model.network, model.spec, model.spec.data_description, metrics, training);
  run.console.line("exported " + model.spec.describe() + " to " + run.options.out +
                   " (model.safetensors, config.json, README.md)");
  return 0;
}

int train_classifier(cluster::MpiSession& session, int argc, char** argv) {
  std::optional<Subcommand> subcommand;
  session.run_collectively([&] {
    try {
      subcommand = take_subcommand(argc, argv);
    } catch (const UsageError& e) {
      throw UsageError(e.what(), kOverview);  // a missing or unknown subcommand: the overview follows
    }
  });
  if (!subcommand) {  // --help
    if (session.is_root()) std::cout << kOverview << std::endl;
    return 0;
  }
  ProgramOptions options;
  session.run_collectively([&] {
    if (const auto preset = take_preset(argc, argv)) apply_preset(*preset, options);
  });
  cli::OptionParser parser(std::string("train-classifier ") + to_string(*subcommand), kOverview, "train-classifier-%j");
  add_program_options(parser, options);
  const auto env = cluster::Environment::from_process();
  const auto slurm = cluster::SlurmEnvironment::from(env);
  cli::parse_on_all_ranks(session, parser, argc, argv, [&] { check_options(options, *subcommand); });
  const cli::Console console(session.is_root());

  const auto preference = cluster::parse_device_preference(parser.common().device);
  const auto context = cluster::RankContext::establish(session, env, preference, /*allow_sharing=*/false);
  // Slurm layout mistakes (srun missing, tasks that did not join, two tasks on one GPU) before
  // any GPU work.
  std::vector<cluster::Diagnostic> findings;
  session.run_collectively([&] { findings = cluster::require_sound_job_layout(session, context, false); });
  for (const auto& d : findings) console.line(d.text());

  int threads = options.threads > 0 ? options.threads : slurm.cpus_per_task.value_or(1);
  linalg::set_blas_threads(std::max(1, threads));
  nn::Device device = context.gpu.uses_gpu ? nn::Device::cuda : nn::Device::cpu;
  session.run_collectively([&] {
    if (device == nn::Device::cpu && options.precision == "tf32") {
      throw UsageError("--precision tf32 is a GPU math mode, and this rank computes on the CPU (" + context.gpu.reason +
                       "); use --precision fp32, or bf16 on a CPU with native bf16");
    }
    // bf16 on the CPU where oneDNN runs it natively; elsewhere a UsageError that says why.
    if (device == nn::Device::cpu && options.precision == "bf16") nn::set_cpu_precision(Precision::bf16);
    if (device == nn::Device::cuda) {
      nn::CudaOptions cuda;
      cuda.device = context.gpu.device;
      cuda.tf32 = options.precision == "tf32" ? nn::Tf32::on : nn::Tf32::off;
      cuda.precision = options.precision == "bf16" ? Precision::bf16 : Precision::float32;
      nn::configure_cuda(cuda);
    }
  });
  auto program = cli::ProgramRun::start(session, parser.common(), context);
  Run run{session, options, parser.common(), context, program, console, device, slurm.cpus_per_task, std::max(1, threads),
          &parser};
  switch (*subcommand) {
    case Subcommand::fit: return fit(run);
    case Subcommand::validate:
    case Subcommand::test: return evaluate_checkpoint(run, *subcommand);
    case Subcommand::predict: return predict(run);
    case Subcommand::export_model: return export_checkpoint(run);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cluster::run_mpi_program(argc, argv, "train-classifier", train_classifier);
}
