// The trainer on a tiny network: options (fast_dev_run, limits, accumulation, clipping,
// schedules), the built-in callbacks (top-k checkpoints, early stopping, HDF5 series) and
// resume, bit for bit.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "slurmlab/data/images.hpp"
#include "slurmlab/data/transforms.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "slurmlab/nn/models/fused_mlp.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/train/callbacks.hpp"
#include "slurmlab/train/fused_mlp_module.hpp"
#include "slurmlab/train/observers.hpp"
#include "slurmlab/train/preemption.hpp"
#include "slurmlab/train/trainer.hpp"

using namespace slurmlab;
using namespace slurmlab::train;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSamples = 64, kFeatures = 4, kClasses = 3;

struct Data {
  nn::Tensor inputs{nn::Shape{kSamples, kFeatures}};
  std::vector<std::int64_t> labels;
  Data() {
    nn::Generator g(5);
    for (auto& v : inputs.span()) v = g.uniform(-1.0f, 1.0f);
    // A learnable rule plus noise: the class of the largest of the first three features.
    for (std::int64_t i = 0; i < kSamples; ++i) {
      const float* x = inputs.data() + i * kFeatures;
      std::int64_t label = std::max_element(x, x + 3) - x;
      if (g.below(10) == 0) label = static_cast<std::int64_t>(g.below(3));
      labels.push_back(label);
    }
  }
  InMemoryBatchSource source(std::int64_t batch, std::uint64_t seed = 7, bool shuffle = true) const {
    return {inputs, labels, {}, data::ShardedSampler::drop_last(kSamples, batch, 1, 0, seed, shuffle)};
  }
};

// Network, optimizer and module together, built fresh (a new process state, for resume).
struct TrainingRun {
  std::unique_ptr<nn::Sequential> net;
  std::unique_ptr<nn::Optimizer> optimizer;
  std::unique_ptr<NetworkModule> module;
  explicit TrainingRun(std::uint64_t init_seed = 1, bool adam = false, double lr = 0.1, bool dropout = false) {
    nn::Generator g(init_seed);
    net = std::make_unique<nn::Sequential>();
    net->add(std::make_unique<nn::Linear>(kFeatures, 8, g)).add(nn::tanh_layer());
    if (dropout) net->add(std::make_unique<nn::Dropout>(0.25f, init_seed + 100));
    net->add(std::make_unique<nn::Linear>(8, kClasses, g));
    if (adam) {
      optimizer = std::make_unique<nn::Adam>(nn::parameters_of(*net), nn::AdamOptions{.learning_rate = lr});
    } else {
      optimizer = std::make_unique<nn::Sgd>(nn::parameters_of(*net), nn::SgdOptions{.learning_rate = lr});
    }
    module = std::make_unique<NetworkModule>(*net, *optimizer, LossKind::softmax_cross_entropy);
  }
  std::vector<float> weights() {
    std::vector<float> out;
    for (const auto& p : nn::parameters_of(*net)) {
      const auto s = p.parameter->value.span();
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }
  std::vector<float> optimizer_state() {
    std::vector<float> out;
    optimizer->visit_state([&](const std::string&, nn::Tensor& t) {
      const auto s = t.span();
      out.insert(out.end(), s.begin(), s.end());
    });
    return out;
  }
};

// A folder of its own per test (ctest runs tests in parallel).
fs::path fresh_directory() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir =
      fs::temp_directory_path() / ("slurmlab_train_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

// Counts the batches handed out.
class CountingSource final : public BatchSource {
 public:
  explicit CountingSource(BatchSource& inner) : inner_(inner) {}
  std::int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  void set_position(data::BatchPosition p) override { inner_.set_position(p); }
  TrainBatch next() override {
    ++count;
    return inner_.next();
  }
  std::int64_t count = 0;

 private:
  BatchSource& inner_;
};

// Records the metrics and learning rate at every epoch end.
class Recorder final : public Callback {
 public:
  void on_train_epoch_end(Trainer& t) override {
    epochs.push_back(t.metrics());
    rates.push_back(t.learning_rate());
  }
  std::vector<Metrics> epochs;
  std::vector<double> rates;
};

std::set<std::string> files_in(const fs::path& dir, const std::string& extension = ".h5") {
  std::set<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == extension) names.insert(e.path().filename().string());
  }
  return names;
}

}  // namespace

TEST(TrainerFit, ReportsGlobalMeansOfTheSteps) {
  const Data data;
  TrainingRun s;
  auto train_source = data.source(16);
  auto val_source = data.source(16, 9, false);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer({.max_epochs = 3}, {recorder});
  trainer.fit(*s.module, train_source, &val_source);
  ASSERT_EQ(recorder->epochs.size(), 3u);
  for (const auto& m : recorder->epochs) {
    for (const char* key : {"train_loss", "train_accuracy", "val_loss", "val_accuracy"})
      EXPECT_TRUE(m.contains(key)) << key;
  }
  // val_* is the mean over all 64 samples, computed here by hand from the final network.
  auto forward = s.net->forward(data.inputs, nn::Mode::eval);
  const double correct = static_cast<double>(nn::correct_predictions(forward.output, data.labels));
  EXPECT_NEAR(recorder->epochs.back().at("val_accuracy"), correct / kSamples, 1e-12);
  EXPECT_NEAR(recorder->epochs.back().at("val_loss"), nn::softmax_cross_entropy(forward.output, data.labels).loss,
              1e-6);
  EXPECT_LT(recorder->epochs.back().at("train_loss"), recorder->epochs.front().at("train_loss"));
  EXPECT_EQ(trainer.profile().optimizer_steps, 3 * 4);
  EXPECT_GT(trainer.profile().forward_backward, 0.0);
  EXPECT_NE(trainer.profile().describe().find("optimizer"), std::string::npos);
}

TEST(TrainerFit, FastDevRunRunsExactlyNBatchesOfEachStageAndWritesNothing) {
  const Data data;
  TrainingRun s;
  const auto dir = fresh_directory();
  auto train_inner = data.source(8);
  auto val_inner = data.source(8, 9, false);
  auto test_inner = data.source(8, 9, false);
  CountingSource train_source(train_inner), val_source(val_inner), test_source(test_inner);
  auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{.monitor = "val_loss"});
  auto logger = std::make_shared<Hdf5MetricsLogger>(dir / "metrics.h5");
  Trainer trainer({.max_epochs = 5, .fast_dev_run = 3, .root_dir = dir}, {checkpoint, logger});
  trainer.fit(*s.module, train_source, &val_source);
  trainer.test(*s.module, test_source);
  EXPECT_EQ(train_source.count, 3);
  EXPECT_EQ(val_source.count, 3);
  EXPECT_EQ(test_source.count, 3);
  EXPECT_EQ(trainer.profile().optimizer_steps, 3);
  EXPECT_TRUE(trainer.metrics().contains("test_loss"));
  EXPECT_FALSE(fs::exists(dir)) << "fast_dev_run wrote under " << dir;
}

TEST(TrainerFit, LimitBatchesByCountAndByFraction) {
  const Data data;
  for (const auto& [limit, expected] : std::vector<std::pair<BatchLimit, std::int64_t>>{
           {BatchLimit::count(3), 3}, {BatchLimit::fraction(0.5), 4}, {BatchLimit::count(100), 8}}) {
    TrainingRun s;
    auto train_inner = data.source(8);
    auto val_inner = data.source(8, 9, false);
    CountingSource train_source(train_inner), val_source(val_inner);
    Trainer trainer({.max_epochs = 2, .limit_train_batches = limit, .limit_val_batches = BatchLimit::count(2)});
    trainer.fit(*s.module, train_source, &val_source);
    EXPECT_EQ(train_source.count, 2 * expected);
    EXPECT_EQ(val_source.count, 2 * 2);
    EXPECT_EQ(trainer.profile().optimizer_steps, 2 * expected);
  }
  TrainingRun s;
  auto source = data.source(8);
  Trainer none({.limit_train_batches = BatchLimit::fraction(0.01)});
  EXPECT_THROW(none.fit(*s.module, source), UsageError);
}

TEST(TrainerFit, MaxStepsEndsMidEpoch) {
  const Data data;
  TrainingRun s;
  auto source = data.source(8);
  Trainer trainer({.max_epochs = 10, .max_steps = 11});
  trainer.fit(*s.module, source);
  EXPECT_EQ(trainer.global_step(), 11);
  EXPECT_EQ(trainer.train_batches_run(), 11);
}

TEST(TrainerFit, AccumulatingGradientsEqualsOneLargerBatch) {
  const Data data;
  TrainingRun accumulated, large;
  auto small_batches = data.source(16);
  auto large_batches = data.source(32);  // the same sampler seed: batch b of 32 = batches 2b, 2b+1 of 16
  Trainer({.max_epochs = 2, .accumulate_grad_batches = 2}).fit(*accumulated.module, small_batches);
  Trainer large_trainer({.max_epochs = 2});
  large_trainer.fit(*large.module, large_batches);
  EXPECT_EQ(large_trainer.profile().optimizer_steps, 4);
  const auto a = accumulated.weights(), b = large.weights();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6f) << i;
  EXPECT_NE(a, TrainingRun().weights());  // it did train
}

TEST(TrainerFit, ClipsGradientsByGlobalNorm) {
  // Plain SGD: the update is -lr * clipped gradient, so its global norm is lr * max_norm when
  // the gradient is larger than max_norm.
  const Data data;
  TrainingRun s(1, false, 1.0);
  const auto before = s.weights();
  auto source = data.source(64);
  Trainer({.max_steps = 1, .gradient_clip_norm = 1e-3}).fit(*s.module, source);
  const auto after = s.weights();
  double norm = 0.0;
  for (std::size_t i = 0; i < before.size(); ++i) norm += std::pow(double(after[i]) - before[i], 2);
  EXPECT_NEAR(std::sqrt(norm), 1e-3, 1e-6);
}

TEST(TrainerFit, ClipsGradientsByValue) {
  const Data data;
  TrainingRun s(1, false, 1.0);
  const auto before = s.weights();
  auto source = data.source(64);
  Trainer({.max_steps = 1, .gradient_clip_value = 1e-4}).fit(*s.module, source);
  const auto after = s.weights();
  std::int64_t at_limit = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const double change = std::abs(double(after[i]) - before[i]);
    EXPECT_LE(change, 1e-4 + 1e-7) << i;
    if (change > 0.9e-4) ++at_limit;
  }
  EXPECT_GT(at_limit, static_cast<std::int64_t>(before.size()) / 2);  // most gradients exceed 1e-4
}

TEST(TrainerFit, SchedulesTheLearningRatePerEpochOrPerStep) {
  const Data data;
  const nn::StepSchedule halving(0.1, 1, 0.5);
  for (auto interval : {ScheduleInterval::epoch, ScheduleInterval::step}) {
    TrainingRun s;
    auto source = data.source(16);  // 4 steps per epoch
    auto recorder = std::make_shared<Recorder>();
    Trainer({.max_epochs = 3, .schedule = &halving, .schedule_interval = interval}, {recorder}).fit(*s.module, source);
    ASSERT_EQ(recorder->rates.size(), 3u);
    for (int e = 0; e < 3; ++e) {
      // Per epoch: epoch e trains at 0.1 * 0.5^e. Per step: the last step of epoch e is 4e + 3.
      const double expected =
          interval == ScheduleInterval::epoch ? 0.1 * std::pow(0.5, e) : 0.1 * std::pow(0.5, 4 * e + 3);
      EXPECT_DOUBLE_EQ(recorder->rates[static_cast<std::size_t>(e)], expected);
    }
  }
}

TEST(TrainerFit, ValidatesEveryNEpochs) {
  const Data data;
  TrainingRun s;
  auto source = data.source(16);
  auto val_inner = data.source(16, 9, false);
  CountingSource val_source(val_inner);
  auto recorder = std::make_shared<Recorder>();
  Trainer({.max_epochs = 5, .check_val_every_n_epoch = 2}, {recorder}).fit(*s.module, source, &val_source);
  EXPECT_EQ(val_source.count, 2 * 4);  // after epochs 1 and 3
  EXPECT_FALSE(recorder->epochs[0].contains("val_loss"));
  EXPECT_TRUE(recorder->epochs[1].contains("val_loss"));
}

TEST(ModelCheckpointName, FillsEpochStepAndFormattedMetrics) {
  EXPECT_EQ(format_checkpoint_name("epoch={epoch}-val_loss={val_loss:.4f}", 3, 40, {{"val_loss", 0.123456}}),
            "epoch=3-val_loss=0.1235");
  EXPECT_EQ(format_checkpoint_name("{step}-{val_accuracy:.2f}", 0, 7, {{"val_accuracy", 0.5}}), "7-0.50");
  EXPECT_THROW(format_checkpoint_name("{val_los}", 0, 0, {{"val_loss", 1.0}}), UsageError);
}

TEST(ModelCheckpoint, KeepsExactlyTheTopKFilesWithTheirScores) {
  const Data data;
  for (auto mode : {MonitorMode::min, MonitorMode::max}) {
    const auto dir = fresh_directory();
    TrainingRun s(1, false, 2.0);  // a large rate, so the validation loss goes up and down
    auto source = data.source(16);
    auto val_source = data.source(16, 9, false);
    auto recorder = std::make_shared<Recorder>();
    auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{
        .monitor = "val_loss", .mode = mode, .save_top_k = 2, .filename = "epoch={epoch}-val_loss={val_loss:.4f}"});
    Trainer trainer({.max_epochs = 6, .root_dir = dir}, {recorder, checkpoint});
    trainer.fit(*s.module, source, &val_source);

    std::vector<std::pair<double, std::string>> scored;
    for (std::size_t e = 0; e < recorder->epochs.size(); ++e) {
      const double v = recorder->epochs[e].at("val_loss");
      char name[128];
      std::snprintf(name, sizeof name, "epoch=%zu-val_loss=%.4f.h5", e, v);
      scored.emplace_back(v, name);
    }
    std::stable_sort(scored.begin(), scored.end(), [mode](const auto& a, const auto& b) {
      return mode == MonitorMode::min ? a.first < b.first : a.first > b.first;
    });
    const std::set<std::string> expected{scored[0].second, scored[1].second, "last.h5"};
    EXPECT_EQ(files_in(dir / "checkpoints"), expected);
    EXPECT_EQ(files_in(dir / "checkpoints", ".json").size(), 3u);  // each with its trainer state
    EXPECT_EQ(checkpoint->best_model_path().filename().string(), scored[0].second);
    EXPECT_DOUBLE_EQ(*checkpoint->best_model_score(), scored[0].first);
    const auto kept = checkpoint->top_k();
    ASSERT_EQ(kept.size(), 2u);
    EXPECT_DOUBLE_EQ(kept[1].first, scored[1].first);
    fs::remove_all(dir);
  }
}

namespace {

// The inode of last.h5 when the epoch ends (after ModelCheckpoint wrote it): a file written
// again later (atomically: a new file renamed over it) has another inode.
class LastInode final : public Callback {
 public:
  explicit LastInode(fs::path path) : path_(std::move(path)) {}
  void on_train_epoch_end(Trainer&) override { inode = inode_of(path_); }
  static ino_t inode_of(const fs::path& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? info.st_ino : 0;
  }
  ino_t inode = 0;

 private:
  fs::path path_;
};

}  // namespace

TEST(ModelCheckpoint, LastIsWrittenOnceWhenTheFitEndsAtAnEpochsEndAndAgainAfterMaxStepsMidEpoch) {
  const Data data;
  const auto dir = fresh_directory();
  const auto last = dir / "checkpoints" / "last.h5";
  for (std::int64_t max_steps : {-1, 6}) {  // 4 batches per epoch: 6 steps end mid-epoch 2
    TrainingRun s;
    auto source = data.source(16);
    auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{.save_top_k = 0});
    auto watcher = std::make_shared<LastInode>(last);
    Trainer trainer({.max_epochs = 2, .max_steps = max_steps, .root_dir = dir}, {checkpoint, watcher});
    trainer.fit(*s.module, source);
    ASSERT_NE(watcher->inode, 0u);
    if (max_steps < 0) {
      EXPECT_EQ(LastInode::inode_of(last), watcher->inode) << "last.h5 was written again at fit end";
    } else {
      EXPECT_NE(LastInode::inode_of(last), watcher->inode) << "the mid-epoch end left an old last.h5";
      EXPECT_EQ(trainer.global_step(), 6);
    }
  }
  fs::remove_all(dir);
}

namespace {

// Validation losses from a script, one per epoch: early stopping is then a hand computation.
class ScriptedModule final : public TrainableModule {
 public:
  explicit ScriptedModule(std::vector<double> val_losses) : losses_(std::move(val_losses)) {}
  StepResult training_step(const TrainBatch& batch) override {
    return {static_cast<double>(batch.samples()), batch.samples(), {}};
  }
  StepResult validation_step(const TrainBatch& batch) override {
    const double loss = losses_.at(static_cast<std::size_t>(epoch_++));
    return {loss * static_cast<double>(batch.samples()), batch.samples(), {}};
  }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *setup_.net; }
  nn::Optimizer& optimizer() override { return *setup_.optimizer; }

 private:
  std::vector<double> losses_;
  std::int64_t epoch_ = 0;
  TrainingRun setup_;
};

}  // namespace

TEST(EarlyStopping, StopsAtTheEpochAHandComputationGives) {
  const Data data;
  // min, patience 2, min_delta 0.01 (fit-regression's rule: improve when loss < best - delta):
  // e0 1.0 best; e1 0.9 < 0.99 best; e2 0.95 wait 1; e3 0.899 (not < 0.89) wait 2 -> stop after e3.
  ScriptedModule module({1.0, 0.9, 0.95, 0.899, 0.5, 0.4, 0.3});
  auto source = data.source(64);
  auto val_source = data.source(64, 9, false);
  auto recorder = std::make_shared<Recorder>();
  auto stopping = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 2, .min_delta = 0.01});
  Trainer trainer({.max_epochs = 7}, {recorder, stopping});
  trainer.fit(module, source, &val_source);
  EXPECT_EQ(recorder->epochs.size(), 4u);
  EXPECT_EQ(stopping->stopped_epoch(), 3);
  EXPECT_DOUBLE_EQ(stopping->best_score(), 0.9);

  // max mode on the same numbers: e0 1.0 best, then nothing beats 1.0 + 0 -> stops after e2.
  ScriptedModule again({1.0, 0.9, 0.95, 0.899});
  auto max_stopping = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.mode = MonitorMode::max, .patience = 2});
  Trainer max_trainer({.max_epochs = 4}, {max_stopping});
  max_trainer.fit(again, source, &val_source);
  EXPECT_EQ(max_stopping->stopped_epoch(), 2);
}

TEST(EarlyStopping, AMonitorThatIsNoMetricIsAUsageErrorNamingIt) {
  const Data data;
  TrainingRun s;
  auto source = data.source(64);
  auto stopping = std::make_shared<EarlyStopping>(EarlyStoppingOptions{.monitor = "train_los"});
  Trainer trainer({.max_epochs = 2}, {stopping});
  try {
    trainer.fit(*s.module, source);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'train_los'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("train_loss"), std::string::npos) << e.what();
  }
}

namespace {

std::vector<double> read_series(const fs::path& file, const char* name) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  std::vector<double> values(n);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return values;
}

}  // namespace

TEST(Hdf5MetricsLogger, WritesOneValuePerEpochAndPerValidation) {
  const Data data;
  TrainingRun s;
  const auto dir = fresh_directory();  // the logger creates it
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  auto recorder = std::make_shared<Recorder>();
  auto logger = std::make_shared<Hdf5MetricsLogger>(dir / "metrics.h5");
  Trainer({.max_epochs = 4, .check_val_every_n_epoch = 2}, {recorder, logger}).fit(*s.module, source, &val_source);
  EXPECT_EQ(read_series(dir / "metrics.h5", "epoch"), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(read_series(dir / "metrics.h5", "val_epoch"), (std::vector<double>{1, 3}));
  const auto train_loss = read_series(dir / "metrics.h5", "train_loss");
  ASSERT_EQ(train_loss.size(), 4u);
  for (std::size_t e = 0; e < 4; ++e) EXPECT_EQ(train_loss[e], recorder->epochs[e].at("train_loss"));
  EXPECT_EQ(read_series(dir / "metrics.h5", "val_accuracy").size(), 2u);
  fs::remove_all(dir);
}

TEST(TrainerResume, MidEpochResumeEqualsTheUninterruptedRunBitForBit) {
  // Adam (state), a per-step schedule, dropout (a random stream), shuffled batches, and a stop
  // in the middle of epoch 1 (step 6 of 4 per epoch).
  const Data data;
  const nn::CosineSchedule cosine(0.05, 12);
  const auto options = [&](const fs::path& dir, std::int64_t max_steps) {
    return TrainerOptions{.max_epochs = 3,
                          .max_steps = max_steps,
                          .schedule = &cosine,
                          .schedule_interval = ScheduleInterval::step,
                          .root_dir = dir};
  };
  const auto dir = fresh_directory();

  TrainingRun uninterrupted(1, true, 0.05, true);
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  auto recorded = std::make_shared<Recorder>();
  Trainer(options(dir / "a", -1), {recorded}).fit(*uninterrupted.module, source, &val_source);

  {
    TrainingRun first(1, true, 0.05, true);
    auto first_source = data.source(16);
    auto first_val = data.source(16, 9, false);
    auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{.monitor = "val_loss"});
    Trainer(options(dir / "b", 6), {checkpoint}).fit(*first.module, first_source, &first_val);
    ASSERT_TRUE(fs::exists(dir / "b" / "checkpoints" / "last.h5"));
  }
  // New objects, other initial weights and dropout seed: everything must come from the file.
  TrainingRun resumed(99, true, 0.05, true);
  auto resumed_source = data.source(16);
  auto resumed_val = data.source(16, 9, false);
  auto resumed_recorder = std::make_shared<Recorder>();
  auto checkpoint = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{.monitor = "val_loss"});
  Trainer trainer(options(dir / "b", -1), {resumed_recorder, checkpoint});
  trainer.fit(*resumed.module, resumed_source, &resumed_val, "last");

  EXPECT_EQ(trainer.global_step(), 12);
  EXPECT_EQ(trainer.train_batches_run(), 6);  // the rest of epoch 1, and epoch 2
  const auto a = uninterrupted.weights(), b = resumed.weights();
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  const auto sa = uninterrupted.optimizer_state(), sb = resumed.optimizer_state();
  ASSERT_EQ(sa.size(), sb.size());
  EXPECT_EQ(std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)), 0);
  EXPECT_EQ(uninterrupted.optimizer->steps_taken(), resumed.optimizer->steps_taken());
  // The resumed epochs log the same metrics (epoch 1's sums include its first half).
  ASSERT_EQ(resumed_recorder->epochs.size(), 2u);
  EXPECT_EQ(resumed_recorder->epochs[0], recorded->epochs[1]);
  EXPECT_EQ(resumed_recorder->epochs[1], recorded->epochs[2]);
  // The top-k state came along: the best of the three epochs across both runs.
  double best = recorded->epochs[0].at("val_loss");
  for (const auto& m : recorded->epochs) best = std::min(best, m.at("val_loss"));
  EXPECT_EQ(checkpoint->best_model_score(), best);
  fs::remove_all(dir);
}

// A run folder copied (or moved) elsewhere resumes with its own checkpoints: the top-k it prunes
// and the best path it reports are in the copy, and the original folder is left as it was; so
// is it when a new folder resumes from the original's last.h5.
TEST(TrainerResume, ACopiedRunFolderResumesWithItsOwnCheckpointsAndLeavesTheOriginalAlone) {
  const Data data;
  const auto dir = fresh_directory();
  const auto make_checkpoint = [] {
    return std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{
        .monitor = "val_loss", .save_top_k = 1, .filename = "epoch={epoch}-val_loss={val_loss:.4f}"});
  };
  {
    TrainingRun first(1, false, 2.0);
    auto source = data.source(16);
    auto val_source = data.source(16, 9, false);
    Trainer({.max_epochs = 2, .root_dir = dir / "a"}, {make_checkpoint()}).fit(*first.module, source, &val_source);
  }
  fs::copy(dir / "a", dir / "b", fs::copy_options::recursive);
  const auto original = files_in(dir / "a" / "checkpoints");
  TrainingRun resumed(1, false, 2.0);
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  auto checkpoint = make_checkpoint();
  Trainer trainer({.max_epochs = 6, .root_dir = dir / "b"}, {checkpoint});
  trainer.fit(*resumed.module, source, &val_source, "last");
  EXPECT_EQ(files_in(dir / "a" / "checkpoints"), original) << "the original folder's checkpoints changed";
  EXPECT_EQ(checkpoint->best_model_path().parent_path(), dir / "b" / "checkpoints");
  EXPECT_TRUE(fs::exists(checkpoint->best_model_path()));
  for (const auto& [score, path] : checkpoint->top_k()) EXPECT_EQ(path.parent_path(), dir / "b" / "checkpoints");
  EXPECT_EQ(files_in(dir / "b" / "checkpoints").size(), 2u);  // the best and last
  // Resumed into a new folder from the original's last.h5: the original's best is read (it is
  // the best until a better epoch comes) but never deleted.
  TrainingRun elsewhere(1, false, 2.0);
  auto source_c = data.source(16);
  auto val_c = data.source(16, 9, false);
  auto checkpoint_c = make_checkpoint();
  Trainer trainer_c({.max_epochs = 6, .root_dir = dir / "c"}, {checkpoint_c});
  trainer_c.fit(*elsewhere.module, source_c, &val_c, (dir / "a" / "checkpoints" / "last.h5").string());
  EXPECT_EQ(files_in(dir / "a" / "checkpoints"), original) << "the original folder's checkpoints changed";
  EXPECT_TRUE(fs::exists(checkpoint_c->best_model_path())) << checkpoint_c->best_model_path();
  fs::remove_all(dir);
}

TEST(TrainerResume, RefusesACheckpointWithoutTrainerStateAndStartsFreshWithoutLast) {
  const Data data;
  const auto dir = fresh_directory();
  TrainingRun s;
  auto source = data.source(16);
  Trainer trainer({.max_epochs = 1, .root_dir = dir});
  trainer.fit(*s.module, source, nullptr, "last");  // no last.h5: a fresh start
  EXPECT_EQ(trainer.global_step(), 4);
  fs::create_directories(dir);
  nn::save_checkpoint(dir / "bare.h5", *s.net, s.optimizer.get(), {});
  EXPECT_THROW(trainer.fit(*s.module, source, nullptr, (dir / "bare.h5").string()), std::runtime_error);
  fs::remove_all(dir);
}

namespace {

class FailingModule final : public TrainableModule {
 public:
  StepResult training_step(const TrainBatch&) override { throw std::runtime_error("boom"); }
  StepResult validation_step(const TrainBatch&) override { return {}; }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *setup_.net; }
  nn::Optimizer& optimizer() override { return *setup_.optimizer; }

 private:
  TrainingRun setup_;
};

class ExceptionWitness final : public Callback {
 public:
  void on_exception(Trainer&, const std::exception& e) override { message = e.what(); }
  std::string message;
};

}  // namespace

TEST(TrainerFit, AnExceptionReachesTheCallbacksAndPropagates) {
  const Data data;
  FailingModule module;
  auto source = data.source(16);
  auto witness = std::make_shared<ExceptionWitness>();
  Trainer trainer({}, {witness});
  EXPECT_THROW(trainer.fit(module, source), std::runtime_error);
  EXPECT_EQ(witness->message, "boom");
}

namespace {

// Sends this process `signal` at its n-th training batch, as Slurm would.
class SignalAtBatch final : public Callback {
 public:
  SignalAtBatch(int signal, std::int64_t batch) : signal_(signal), batch_(batch) {}
  void on_train_batch_end(Trainer&, const StepResult&) override {
    if (++seen_ == batch_) std::raise(signal_);
  }

 private:
  int signal_;
  std::int64_t batch_, seen_ = 0;
};

// A stand-in for scontrol that records its arguments.
fs::path fake_scontrol(const fs::path& dir) {
  fs::create_directories(dir);
  const auto script = dir / "scontrol";
  std::ofstream(script) << "#!/bin/sh\necho \"$@\" > " << (dir / "requeued").string() << "\n";
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

// Slurm's job variables for one test, removed after.
struct SlurmJobVariables {
  explicit SlurmJobVariables(const char* job_id) {
    ::setenv("SLURM_JOB_ID", job_id, 1);
    ::unsetenv("SLURM_ARRAY_JOB_ID");
    ::unsetenv("SLURM_ARRAY_TASK_ID");
  }
  ~SlurmJobVariables() { ::unsetenv("SLURM_JOB_ID"); }
};

}  // namespace

TEST(TrainerPreemption, Sigusr1CheckpointsRequeuesAndTheRequeuedRunEndsWithTheUninterruptedWeights) {
  const Data data;
  const auto dir = fresh_directory();
  const auto scontrol = fake_scontrol(dir / "bin");
  const SlurmJobVariables job("4242");
  TrainingRun uninterrupted(1, true, 0.05, true);
  auto source = data.source(16);
  Trainer({.max_epochs = 3}).fit(*uninterrupted.module, source);

  {
    TrainingRun first(1, true, 0.05, true);
    auto first_source = data.source(16);
    Trainer trainer({.max_epochs = 3, .root_dir = dir, .handle_preemption = true, .scontrol = scontrol.string()},
                    {std::make_shared<SignalAtBatch>(SIGUSR1, 6)});
    trainer.fit(*first.module, first_source);
    EXPECT_EQ(trainer.preempted_by(), SIGUSR1);
    EXPECT_EQ(trainer.global_step(), 6);  // stopped at the step boundary after the signal
    EXPECT_EQ(trainer.requeue_message(), "requeued job 4242");
    EXPECT_EQ(read_text(dir / "bin" / "requeued"), "requeue 4242");
    ASSERT_TRUE(fs::exists(dir / "checkpoints" / "last.h5"));
  }
  TrainingRun requeued(99, true, 0.05, true);
  auto requeued_source = data.source(16);
  Trainer trainer({.max_epochs = 3, .root_dir = dir, .handle_preemption = true});
  trainer.fit(*requeued.module, requeued_source, nullptr, "last");
  EXPECT_EQ(trainer.preempted_by(), 0);
  const auto a = uninterrupted.weights(), b = requeued.weights();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  fs::remove_all(dir);
}

TEST(TrainerPreemption, SigtermCheckpointsAndSaysWhyItDidNotRequeue) {
  const Data data;
  const auto dir = fresh_directory();
  const SlurmJobVariables job("77");
  {
    // SIGTERM alone: a checkpoint, no requeue.
    TrainingRun run;
    auto source = data.source(16);
    Trainer trainer({.max_epochs = 3,
                     .root_dir = dir / "term",
                     .handle_preemption = true,
                     .scontrol = fake_scontrol(dir / "bin").string()},
                    {std::make_shared<SignalAtBatch>(SIGTERM, 2)});
    trainer.fit(*run.module, source);
    EXPECT_EQ(trainer.preempted_by(), SIGTERM);
    EXPECT_TRUE(fs::exists(dir / "term" / "checkpoints" / "last.h5"));
    EXPECT_FALSE(fs::exists(dir / "bin" / "requeued"));
    EXPECT_NE(trainer.requeue_message().find("not requeued"), std::string::npos);
  }
  // Asked to requeue, but scontrol is missing (a container): one sentence, checkpoint written.
  TrainingRun run;
  auto source = data.source(16);
  Trainer trainer({.max_epochs = 3,
                   .root_dir = dir / "missing",
                   .handle_preemption = true,
                   .requeue_on_sigterm = true,
                   .scontrol = (dir / "no-such-dir" / "scontrol").string()},
                  {std::make_shared<SignalAtBatch>(SIGTERM, 2)});
  trainer.fit(*run.module, source);
  EXPECT_TRUE(fs::exists(dir / "missing" / "checkpoints" / "last.h5"));
  EXPECT_NE(trainer.requeue_message().find("could not be started"), std::string::npos) << trainer.requeue_message();
  fs::remove_all(dir);
}

// scontrol's outcomes as requeue_job reads them: exit 0 requeued; ended by SIGTERM, as
// slurmstepd ends every process of the step once the requeue it asked for is accepted (seen on
// the local Slurm), requeued too, saying so; a refusal (exit 1) not requeued, with the fix.
TEST(TrainerPreemption, RequeueReadsScontrolsExitAndTheStepBeingStopped) {
  const auto dir = fresh_directory();
  fs::create_directories(dir);
  const auto script = [&](const std::string& name, const std::string& body) {
    const auto path = dir / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  };
  const auto ok = requeue_job("4242", script("exits-0", "exit 0"));
  EXPECT_TRUE(ok.requeued);
  EXPECT_EQ(ok.message, "requeued job 4242");
  const auto stopped = requeue_job("4242", script("stopped", "kill -TERM $$"));
  EXPECT_TRUE(stopped.requeued);
  EXPECT_EQ(stopped.message.rfind("requeued job 4242 (Slurm stopped this step for the requeue", 0), 0u) << stopped.message;
  EXPECT_NE(stopped.message.find("signal 15"), std::string::npos) << stopped.message;
  const auto refused = requeue_job("4242", script("refuses", "echo 'Requested operation is disabled' >&2; exit 1"));
  EXPECT_FALSE(refused.requeued);
  EXPECT_NE(refused.message.find("failed (exit 1; does the job allow requeue, sbatch --requeue?)"), std::string::npos)
      << refused.message;
}

TEST(TrainerPreemption, AnArrayTaskRequeuesItselfNotTheArray) {
  cluster::SlurmEnvironment slurm;
  slurm.job_id = "105";
  EXPECT_EQ(requeue_job_id(slurm), "105");
  slurm.array_job_id = "100";
  slurm.array_task_id = "5";
  EXPECT_EQ(requeue_job_id(slurm), "100_5");
  EXPECT_EQ(requeue_job_id(cluster::SlurmEnvironment{}), "");
}

namespace {
// A linear classifier of 1x8x8 images into 2 classes with SGD: the smallest network the loader
// sources can train.
nn::Sequential flatten_linear_64_to_2(nn::Generator& g) {
  nn::Sequential net;
  net.add(std::make_unique<nn::Flatten>()).add(std::make_unique<nn::Linear>(64, 2, g));
  return net;
}
struct TinyClassifier {
  nn::Generator g{1};
  nn::Sequential net = flatten_linear_64_to_2(g);
  nn::Sgd sgd{nn::parameters_of(net), {.learning_rate = 0.1}};
  NetworkModule module{net, sgd, LossKind::softmax_cross_entropy};
};
}  // namespace

TEST(LoaderBatchSource, FeedsTheTrainerTheLoadersBatches) {
  const auto images = data::make_synthetic_images({.count = 32, .classes = 2, .shape = {1, 8, 8}, .seed = 4});
  const auto sampler = data::ShardedSampler::drop_last(32, 8, 1, 0, 3);
  data::BatchLoader loader(*images, sampler, data::ImageTransform({}, 1, images->fixed_shape()), {.workers = 1});
  LoaderBatchSource source(loader);
  EXPECT_EQ(source.batches_per_epoch(), 4);
  source.set_position({1, 2});
  const auto batch = source.next();
  EXPECT_EQ(batch.inputs.shape(), (nn::Shape{8, 1, 8, 8}));
  std::vector<std::int64_t> expected_labels;
  for (auto i : sampler.local_indices(1, 2)) expected_labels.push_back(images->label(i));
  EXPECT_EQ(batch.labels, expected_labels);

  TinyClassifier tiny;
  auto& module = tiny.module;
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer({.max_epochs = 2}, {recorder});
  trainer.fit(module, source);
  EXPECT_EQ(trainer.global_step(), 8);
  ASSERT_EQ(recorder->epochs.size(), 2u);
  EXPECT_TRUE(std::isfinite(recorder->epochs[1].at("train_loss")));
}

namespace {
// DeviceImageSet's contract kept in host memory (ImageTransform::apply per sample, as the CUDA
// kernel is checked against in tests/gpu), so DeviceBatchSource's own work (indices, epochs,
// labels, padding counts, positions) is tested without a GPU; it counts its calls.
class HostImageSet final : public data::DeviceImageSet {
 public:
  HostImageSet(const data::ImageDataset& dataset, data::ImageTransform transform)
      : dataset_(dataset), transform_(std::move(transform)) {}
  std::int64_t device_bytes() const override { return 0; }
  int device() const override { return 0; }
  std::string describe() const override { return "host stand-in"; }
  const data::ImageTransform& transform() const override { return transform_; }
  void transform_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed, float* images,
                       std::int64_t* labels) override {
    ++calls;
    const auto floats = transform_.output_floats();
    for (std::size_t i = 0; i < indices.size(); ++i) {
      transform_.apply(dataset_.image(indices[i], scratch_), seed, epoch, indices[i],
                       images + static_cast<std::int64_t>(i) * floats, workspace_);
      if (labels != nullptr) labels[i] = dataset_.label(indices[i]);
    }
  }
  void enqueue_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed, float* images,
                     std::int64_t* labels, void*) override {
    transform_batch(indices, epoch, seed, images, labels);
  }
  void transform_batch_to_host(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                               std::span<float> images, std::span<std::int64_t> labels) override {
    transform_batch(indices, epoch, seed, images.data(), labels.data());
  }
  int calls = 0;

 private:
  const data::ImageDataset& dataset_;
  data::ImageTransform transform_;
  data::TransformWorkspace workspace_;
  std::vector<std::uint8_t> scratch_;
};
}  // namespace

TEST(DeviceBatchSource, GivesTheLoadersBatchesOnEveryRankEpochAndResumePosition) {
  // 30 images in global batches of 8 over 2 ranks: each epoch's last batch padded; augmentation
  // on (random crop with padding, flip), so epochs and seeds matter.
  const auto images = data::make_synthetic_images({.count = 30, .classes = 3, .shape = {3, 12, 12}, .seed = 5});
  data::TransformOptions augment;
  augment.crop = data::ImageSize{10, 10};
  augment.crop_padding = 2;
  augment.horizontal_flip = true;
  const data::ImageTransform transform(augment, 3, images->fixed_shape());
  for (int rank = 0; rank < 2; ++rank) {
    const data::ShardedSampler sampler(30, 8, 2, rank, 9, data::LastBatch::pad, /*shuffle=*/true);
    data::BatchLoader loader(*images, sampler, transform, {.workers = 1, .seed = 13});
    LoaderBatchSource reference(loader);
    HostImageSet set(*images, transform);
    DeviceBatchSource source(set, *images, sampler, 13, nn::Device::cpu);
    ASSERT_EQ(source.batches_per_epoch(), reference.batches_per_epoch());
    const auto expect_same = [&](const std::string& where) {
      const auto expected = reference.next();
      const auto batch = source.next();
      EXPECT_EQ(batch.labels, expected.labels) << where;
      // The labels the set wrote beside the images (on the GPU, in place for the loss).
      ASSERT_EQ(batch.device_labels.size(), std::ssize(expected.labels)) << where;
      EXPECT_EQ(std::vector<std::int64_t>(batch.device_labels.data(), batch.device_labels.data() + batch.device_labels.size()),
                expected.labels)
          << where;
      EXPECT_EQ(batch.counted, expected.counted) << where;
      ASSERT_EQ(batch.inputs.shape(), expected.inputs.shape()) << where;
      EXPECT_EQ(batch.inputs.to_vector(), expected.inputs.to_vector()) << where;
    };
    // Two whole epochs in order (the last batch of each padded: counted < rows on one rank).
    for (std::int64_t b = 0; b < 2 * source.batches_per_epoch(); ++b) {
      expect_same("rank " + std::to_string(rank) + " batch " + std::to_string(b));
    }
    // A resume in the middle of epoch 1 gives what the uninterrupted run gave there.
    source.set_position({1, 2});
    reference.set_position({1, 2});
    expect_same("rank " + std::to_string(rank) + " resumed at epoch 1 batch 2");
    EXPECT_EQ(set.calls, 2 * source.batches_per_epoch() + 1);
  }
}

TEST(NetworkModule, MseReportsTheMeanSquaredErrorPerSample) {
  // y = 2x on 8 samples; a 1->1 linear layer; val_loss is the plain MSE of the network.
  nn::Tensor x({8, 1}), y({8, 1});
  for (int i = 0; i < 8; ++i) {
    x.data()[i] = static_cast<float>(i) / 8.0f;
    y.data()[i] = 2.0f * x.data()[i];
  }
  nn::Generator g(2);
  nn::Sequential net;
  net.add(std::make_unique<nn::Linear>(1, 1, g));
  nn::Sgd sgd(nn::parameters_of(net), {.learning_rate = 0.5});
  NetworkModule module(net, sgd, LossKind::mse);
  InMemoryBatchSource source(x, {}, y, data::ShardedSampler::drop_last(8, 4, 1, 0, 1));
  InMemoryBatchSource validation(x, {}, y, data::ShardedSampler::drop_last(8, 4, 1, 0, 1, false));
  Trainer trainer({.max_epochs = 20});
  trainer.fit(module, source, &validation);
  const auto out = net.forward(x, nn::Mode::eval).output;
  EXPECT_NEAR(trainer.metrics().at("val_loss"), nn::mse_loss(out, y).loss, 1e-7);
  EXPECT_LT(trainer.metrics().at("val_loss"), 0.05);
}

// ---- Trainer options of the second slice: val_check_interval, overfit_batches, predict,
// stop_on_nonfinite_loss, the profile in metrics.h5. ----

namespace {

// The mean softmax cross-entropy of `net` over all rows of `source`'s epoch-0 batches
// [first, first + count), computed here with nn's loss directly (not through the trainer).
double mean_loss_over(nn::Layer& net, BatchSource& source, std::int64_t first, std::int64_t count) {
  source.set_position({0, first});
  double sum = 0.0;
  std::int64_t rows = 0;
  for (std::int64_t b = 0; b < count; ++b) {
    const auto batch = source.next();
    const auto out = net.forward(batch.inputs, nn::Mode::eval).output;
    sum += nn::softmax_cross_entropy(out, batch.labels).loss * static_cast<double>(batch.samples());
    rows += batch.samples();
  }
  return sum / static_cast<double>(rows);
}

// At every validation end: the trainer's val_loss and an independent evaluation of the
// network on the whole validation source, at that moment.
class ValidationWitness final : public Callback {
 public:
  ValidationWitness(nn::Layer& net, BatchSource& validation, std::int64_t batches)
      : net_(net), validation_(validation), batches_(batches) {}
  void on_validation_end(Trainer& t) override {
    reported.push_back(t.metrics().at("val_loss"));
    independent.push_back(mean_loss_over(net_, validation_, 0, batches_));
    at_batch.push_back(t.batch_in_epoch());
  }
  std::vector<double> reported, independent;
  std::vector<std::int64_t> at_batch;

 private:
  nn::Layer& net_;
  BatchSource& validation_;
  std::int64_t batches_;
};

// Records where the trainer asked a source to be and how many batches it took.
class PositionRecorder final : public BatchSource {
 public:
  explicit PositionRecorder(BatchSource& inner) : inner_(inner) {}
  std::int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  void set_position(data::BatchPosition p) override {
    current_ = p;
    inner_.set_position(p);
  }
  TrainBatch next() override {
    served.push_back(current_);
    current_.batch += 1;
    return inner_.next();
  }
  std::vector<data::BatchPosition> served;

 private:
  BatchSource& inner_;
  data::BatchPosition current_;
};

}  // namespace

TEST(TrainerFit, ValCheckIntervalValidatesEveryNBatchesOnTheWeightsOfThatMoment) {
  const Data data;
  TrainingRun s;
  auto source = data.source(8);  // 8 batches per epoch
  auto val_source = data.source(16, 9, false);
  auto witness_source = data.source(16, 9, false);
  auto witness = std::make_shared<ValidationWitness>(*s.net, witness_source, 4);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer({.max_epochs = 2, .val_check_interval = 3}, {witness, recorder});
  trainer.fit(*s.module, source, &val_source);
  // After batches 3 and 6 of each epoch (indices 2 and 5); 8 is no multiple of 3.
  EXPECT_EQ(witness->at_batch, (std::vector<std::int64_t>{2, 5, 2, 5}));
  ASSERT_EQ(witness->reported.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(witness->reported[i], witness->independent[i], 1e-6) << i;
  EXPECT_NE(witness->reported[0], witness->reported[1]);  // the weights moved between them
  // The epoch end sees the epoch's last validation.
  ASSERT_EQ(recorder->epochs.size(), 2u);
  EXPECT_EQ(recorder->epochs[0].at("val_loss"), witness->reported[1]);
  EXPECT_EQ(recorder->epochs[1].at("val_loss"), witness->reported[3]);

  TrainingRun t;
  auto small = data.source(16);  // 4 batches
  Trainer too_far({.val_check_interval = 5});
  EXPECT_THROW(too_far.fit(*t.module, small, &val_source), UsageError);
}

TEST(TrainerFit, ValCheckIntervalAtAnEpochsLastBatchWithALoader) {
  // Validation after the last batch of the epoch (every 4 of 4 batches): the training loader is
  // not moved to the position past its epoch's end (BatchLoader refuses it); the next epoch
  // starts as usual.
  const auto images = data::make_synthetic_images({.count = 32, .classes = 2, .shape = {1, 8, 8}, .seed = 4});
  const data::ImageTransform plain({}, 1, images->fixed_shape());
  data::BatchLoader loader(*images, data::ShardedSampler::drop_last(32, 8, 1, 0, 3), plain, {.workers = 1});
  data::BatchLoader val_loader(*images, data::ShardedSampler(32, 8, 1, 0, 3, data::LastBatch::pad, false), plain, {});
  LoaderBatchSource source(loader), validation(val_loader);
  TinyClassifier tiny;
  auto& module = tiny.module;
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer({.max_epochs = 2, .val_check_interval = 4}, {recorder});
  ASSERT_NO_THROW(trainer.fit(module, source, &validation));
  EXPECT_EQ(trainer.global_step(), 8);
  ASSERT_EQ(recorder->epochs.size(), 2u);
  EXPECT_TRUE(std::isfinite(recorder->epochs[1].at("val_loss")));
}

TEST(TrainerFit, OverfitBatchesTrainsAndValidatesOnTheSameFirstBatchesEveryEpoch) {
  const Data data;
  TrainingRun s(1, true, 0.05);
  auto inner = data.source(8);  // shuffled, 8 batches per epoch
  PositionRecorder source(inner);
  auto val_inner = data.source(8, 9, false);
  CountingSource val_source(val_inner);  // must not be used
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer({.max_epochs = 40, .overfit_batches = BatchLimit::count(2)}, {recorder});
  trainer.fit(*s.module, source, &val_source);
  EXPECT_EQ(val_source.count, 0);
  EXPECT_EQ(trainer.profile().optimizer_steps, 80);
  // Training: epoch 0's batches 0 and 1, every epoch; validation reads the same two.
  std::size_t train_reads = 0;
  for (const auto& p : source.served) {
    EXPECT_EQ(p.epoch, 0);
    EXPECT_LT(p.batch, 2);
    train_reads += 1;
  }
  EXPECT_EQ(train_reads, 40u * 2 + 40u * 2);
  // val_loss is the loss on those two training batches, and it is driven down.
  auto check = data.source(8);
  EXPECT_NEAR(recorder->epochs.back().at("val_loss"), mean_loss_over(*s.net, check, 0, 2), 1e-6);
  EXPECT_LT(recorder->epochs.back().at("val_loss"), 0.25 * recorder->epochs.front().at("val_loss"));
}

TEST(TrainerPredict, ReturnsTheNetworksOutputPerBatchWithoutPaddingRows) {
  const Data data;
  TrainingRun s;
  // 64 samples in batches of 24: 3 batches, the last padded to 24 with 8 repeated rows.
  InMemoryBatchSource source(data.inputs, data.labels, {}, data::ShardedSampler::pad(kSamples, 24, 1, 0, 3, false));
  Trainer trainer({});
  const auto predictions = trainer.predict(*s.module, source);
  ASSERT_EQ(predictions.size(), 3u);
  EXPECT_EQ(predictions[0].shape(), (nn::Shape{24, kClasses}));
  EXPECT_EQ(predictions[2].shape(), (nn::Shape{16, kClasses}));
  // Row by row what the network gives the sample (unshuffled: batch b row i is sample 24b + i).
  const auto all = s.net->forward(data.inputs, nn::Mode::eval).output;
  for (std::int64_t b = 0; b < 3; ++b) {
    const auto& p = predictions[static_cast<std::size_t>(b)];
    for (std::int64_t i = 0; i < p.size(0); ++i) {
      for (std::int64_t c = 0; c < kClasses; ++c) {
        EXPECT_FLOAT_EQ(p.data()[i * kClasses + c], all.data()[(24 * b + i) * kClasses + c]);
      }
    }
  }
  Trainer limited({.limit_predict_batches = BatchLimit::count(2)});
  EXPECT_EQ(limited.predict(*s.module, source).size(), 2u);
}

namespace {

// A module whose training loss turns NaN at its n-th training step.
class NanAfter final : public TrainableModule {
 public:
  explicit NanAfter(std::int64_t n) : n_(n) {}
  StepResult training_step(const TrainBatch& batch) override {
    auto r = setup_.module->training_step(batch);
    if (++steps_ >= n_) r.loss_sum = std::nan("");
    return r;
  }
  StepResult validation_step(const TrainBatch& batch) override { return setup_.module->validation_step(batch); }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *setup_.net; }
  nn::Optimizer& optimizer() override { return *setup_.optimizer; }

 private:
  TrainingRun setup_;
  std::int64_t n_, steps_ = 0;
};

}  // namespace

TEST(TrainerFit, StopOnNonfiniteLossNamesTheStepAndTheMetricBeforeStepping) {
  const Data data;
  {
    NanAfter module(6);
    auto source = data.source(16);  // 4 batches per epoch: the 6th is epoch 1, batch 1
    auto witness = std::make_shared<ExceptionWitness>();
    Trainer trainer({.max_epochs = 3, .stop_on_nonfinite_loss = true}, {witness});
    try {
      trainer.fit(module, source);
      FAIL() << "a NaN loss did not stop the fit";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("train_loss is nan at batch 1 of the epoch on rank 0 before step 6 (epoch 1)"),
                std::string::npos)
          << what;
      EXPECT_EQ(witness->message, what);
    }
    EXPECT_EQ(trainer.profile().optimizer_steps, 5);  // the NaN step was not taken
  }
  // Off (the default): the NaN trains on, as in Lightning without detect_anomaly.
  NanAfter module(6);
  auto source = data.source(16);
  Trainer trainer({.max_epochs = 3});
  EXPECT_NO_THROW(trainer.fit(module, source));
  EXPECT_EQ(trainer.profile().optimizer_steps, 12);
}

TEST(Hdf5MetricsLogger, WritesTheProfileAtTheFitsEnd) {
  const Data data;
  TrainingRun s;
  const auto dir = fresh_directory();
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  Trainer trainer({.max_epochs = 2}, {std::make_shared<Hdf5MetricsLogger>(dir / "metrics.h5")});
  const auto start = std::chrono::steady_clock::now();
  trainer.fit(*s.module, source, &val_source);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0.0;
  for (const char* phase : {"profile/data_wait", "profile/forward_backward", "profile/reduce", "profile/optimizer",
                            "profile/evaluation", "profile/callbacks"}) {
    const auto v = read_series(dir / "metrics.h5", phase);
    ASSERT_EQ(v.size(), 1u) << phase;
    EXPECT_GE(v[0], 0.0) << phase;
    total += v[0];
  }
  EXPECT_EQ(read_series(dir / "metrics.h5", "profile/forward_backward")[0], trainer.profile().forward_backward);
  EXPECT_GT(read_series(dir / "metrics.h5", "profile/forward_backward")[0], 0.0);
  EXPECT_LE(total, wall);
  EXPECT_EQ(read_series(dir / "metrics.h5", "profile/optimizer_steps"), (std::vector<double>{8}));
  fs::remove_all(dir);
}

namespace {

// A module that takes known times: each training step sleeps `train`, each validation step
// `validation` (on top of the tiny network's own work).
class SlowModule final : public TrainableModule {
 public:
  SlowModule(std::chrono::milliseconds train, std::chrono::milliseconds validation)
      : train_(train), validation_(validation) {}
  StepResult training_step(const TrainBatch& batch) override {
    std::this_thread::sleep_for(train_);
    return setup_.module->training_step(batch);
  }
  StepResult validation_step(const TrainBatch& batch) override {
    std::this_thread::sleep_for(validation_);
    return setup_.module->validation_step(batch);
  }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *setup_.net; }
  nn::Optimizer& optimizer() override { return *setup_.optimizer; }

 private:
  TrainingRun setup_;
  std::chrono::milliseconds train_, validation_;
};

}  // namespace

TEST(Hdf5MetricsLogger, RecordsEachEpochsTrainingAndWholeWallTime) {
  // 4 training batches of 15 ms and 4 validation batches of 25 ms per epoch: the training
  // part takes at least 60 ms, the whole epoch at least 100 ms more; the epochs fit inside
  // the fit's wall time (per-epoch values, not running sums).
  const Data data;
  SlowModule module(std::chrono::milliseconds(15), std::chrono::milliseconds(25));
  const auto dir = fresh_directory();
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  int described = 0;
  auto logger = std::make_shared<Hdf5MetricsLogger>(dir / "metrics.h5", [&](io::MetricsWriter& writer) {
    ++described;
    writer.set_attribute("", "parameters", std::int64_t{59});
  });
  Trainer trainer({.max_epochs = 3}, {logger});
  const auto start = std::chrono::steady_clock::now();
  trainer.fit(module, source, &val_source);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto file = dir / "metrics.h5";
  EXPECT_EQ(read_series(file, "time/epoch"), (std::vector<double>{0, 1, 2}));
  const auto train_seconds = read_series(file, "time/train_seconds");
  const auto epoch_seconds = read_series(file, "time/epoch_seconds");
  ASSERT_EQ(train_seconds.size(), 3u);
  ASSERT_EQ(epoch_seconds.size(), 3u);
  double total = 0.0;
  for (std::size_t e = 0; e < 3; ++e) {
    EXPECT_GE(train_seconds[e], 4 * 0.015) << "epoch " << e;
    EXPECT_GE(epoch_seconds[e] - train_seconds[e], 4 * 0.025) << "epoch " << e << ": validation not in the epoch time";
    total += epoch_seconds[e];
  }
  EXPECT_LE(total, wall);
  EXPECT_EQ(described, 1);
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_GT(H5Aexists_by_name(f, "time/train_seconds", "unit", H5P_DEFAULT), 0);
  EXPECT_GT(H5Aexists_by_name(f, "time/epoch_seconds", "unit", H5P_DEFAULT), 0);
  std::int64_t parameters = 0;
  const hid_t a = H5Aopen_by_name(f, "/", "parameters", H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(a, 0);
  EXPECT_GE(H5Aread(a, H5T_NATIVE_INT64, &parameters), 0);
  EXPECT_EQ(parameters, 59);
  H5Aclose(a);
  H5Fclose(f);
  fs::remove_all(dir);
}

// ---- Observers: TensorBoardLogger, LearningRateMonitor, ProgressBar. ----

namespace {

// A reader of the event files written by io::EventWriter, independent of it: TFRecord framing
// and the protobuf wire format decoded here by hand (tensorboard's Event/Summary field numbers).
struct Field {
  int number = 0;
  std::uint64_t integer = 0;  // varint, fixed32 or fixed64 bits
  std::string bytes;          // length-delimited
};

std::vector<Field> decode(const std::string& message) {
  std::vector<Field> out;
  std::size_t at = 0;
  auto varint = [&] {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const auto byte = static_cast<unsigned char>(message.at(at++));
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
  };
  while (at < message.size()) {
    const auto key = varint();
    Field f;
    f.number = static_cast<int>(key >> 3);
    switch (key & 7) {
      case 0:
        f.integer = varint();
        break;
      case 1:
        std::memcpy(&f.integer, message.data() + at, 8);
        at += 8;
        break;
      case 5: {
        std::uint32_t v = 0;
        std::memcpy(&v, message.data() + at, 4);
        f.integer = v;
        at += 4;
        break;
      }
      case 2: {
        const auto n = varint();
        f.bytes = message.substr(at, n);
        at += n;
        break;
      }
      default:
        ADD_FAILURE() << "wire type " << (key & 7);
        return out;
    }
    out.push_back(f);
  }
  return out;
}

struct SummaryValue {
  std::int64_t step = 0;
  std::string tag;
  std::optional<float> scalar;
  std::optional<double> histogram_count, histogram_sum;
  bool text = false;
};

// Every summary value of every event file under `dir`, in file order.
std::vector<SummaryValue> read_events(const fs::path& dir) {
  std::vector<SummaryValue> values;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::size_t at = 0;
    while (at + 12 <= file.size()) {
      std::uint64_t length = 0;
      std::memcpy(&length, file.data() + at, 8);
      const std::string event = file.substr(at + 12, length);
      at += 16 + length;
      std::int64_t step = 0;
      for (const auto& f : decode(event)) {
        if (f.number == 2) step = static_cast<std::int64_t>(f.integer);
        if (f.number != 5) continue;
        for (const auto& v : decode(f.bytes)) {
          if (v.number != 1) continue;
          SummaryValue sv;
          sv.step = step;
          for (const auto& part : decode(v.bytes)) {
            if (part.number == 1) sv.tag = part.bytes;
            if (part.number == 2) {
              float x = 0;
              const auto bits = static_cast<std::uint32_t>(part.integer);
              std::memcpy(&x, &bits, 4);
              sv.scalar = x;
            }
            if (part.number == 5) {  // HistogramProto: num = 3, sum = 4 (doubles)
              for (const auto& h : decode(part.bytes)) {
                double d = 0;
                std::memcpy(&d, &h.integer, 8);
                if (h.number == 3) sv.histogram_count = d;
                if (h.number == 4) sv.histogram_sum = d;
              }
            }
            if (part.number == 8) sv.text = true;
          }
          values.push_back(sv);
        }
      }
    }
  }
  return values;
}

std::vector<const SummaryValue*> with_tag(const std::vector<SummaryValue>& values, const std::string& tag) {
  std::vector<const SummaryValue*> out;
  for (const auto& v : values)
    if (v.tag == tag) out.push_back(&v);
  return out;
}

}  // namespace

TEST(TensorBoardLogger, WritesStepAndEpochScalarsHistogramsTextAndHparamsWithTheFinalMetrics) {
  const Data data;
  TrainingRun s;
  const auto dir = fresh_directory();
  auto source = data.source(16);  // 4 batches per epoch
  auto val_source = data.source(16, 9, false);
  auto recorder = std::make_shared<Recorder>();
  auto logger = std::make_shared<TensorBoardLogger>(TensorBoardLoggerOptions{
      .log_every_n_steps = 3,
      .histogram_every_n_epochs = 2,
      .hparams = {{"lr", 0.1}, {"model", std::string("tiny")}},
      .text = {{"model/summary", "| layer | shape |"}}});
  Trainer trainer({.max_epochs = 3, .root_dir = dir}, {recorder, logger});
  trainer.fit(*s.module, source, &val_source);
  EXPECT_EQ(logger->writer(), nullptr);  // closed at the fit's end
  const auto events = read_events(dir / "tensorboard");

  // Every metric at every epoch end, with the trainer's value (float32 in the file).
  for (const char* metric : {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}) {
    const auto series = with_tag(events, TensorBoardLogger::epoch_tag(metric));
    ASSERT_EQ(series.size(), 3u) << metric;
    for (std::size_t e = 0; e < 3; ++e) {
      EXPECT_EQ(series[e]->step, static_cast<std::int64_t>(e));
      EXPECT_EQ(*series[e]->scalar, static_cast<float>(recorder->epochs[e].at(metric))) << metric << " " << e;
    }
  }
  EXPECT_EQ(TensorBoardLogger::epoch_tag("val_loss"), "val/loss_epoch");
  // Per step: batches 3, 6, 9 and 12 of 12, at the global step of that moment (before its step).
  const auto steps = with_tag(events, "train/loss_step");
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0]->step, 2);
  EXPECT_EQ(steps[3]->step, 11);
  EXPECT_EQ(with_tag(events, "train/accuracy_step").size(), 4u);
  // Final metrics beside the hparams, after the session start and before its end.
  EXPECT_EQ(*with_tag(events, "final/val_loss").at(0)->scalar, static_cast<float>(trainer.metrics().at("val_loss")));
  const auto start = with_tag(events, "_hparams_/session_start_info");
  const auto end = with_tag(events, "_hparams_/session_end_info");
  ASSERT_EQ(start.size(), 1u);
  ASSERT_EQ(end.size(), 1u);
  EXPECT_LT(start[0], steps[0]);
  EXPECT_GT(end[0], with_tag(events, "final/val_loss").at(0));
  ASSERT_EQ(with_tag(events, "model/summary").size(), 1u);
  EXPECT_TRUE(with_tag(events, "model/summary")[0]->text);
  // Histograms at epochs 0 and 2: every weight, and the first step's gradient of the epoch.
  const auto parameters = nn::parameters_of(*s.net);
  for (const auto& p : parameters) {
    const auto weights = with_tag(events, "weights/" + p.name);
    ASSERT_EQ(weights.size(), 2u) << p.name;
    EXPECT_EQ(weights[0]->step, 0);
    EXPECT_EQ(weights[1]->step, 2);
    EXPECT_EQ(*weights[1]->histogram_count, static_cast<double>(p.parameter->value.numel()));
    ASSERT_EQ(with_tag(events, "gradients/" + p.name).size(), 2u) << p.name;
  }
  // The epoch-0 gradient is the first batch's: recomputed here on a fresh copy of the network.
  TrainingRun fresh;
  auto first = data.source(16);
  first.set_position({0, 0});
  (void)fresh.module->training_step(first.next());
  const auto fresh_parameters = nn::parameters_of(*fresh.net);
  for (std::size_t i = 0; i < fresh_parameters.size(); ++i) {
    double sum = 0.0;
    for (float g : fresh_parameters[i].parameter->grad.span()) sum += g;
    const auto logged = with_tag(events, "gradients/" + fresh_parameters[i].name).at(0);
    EXPECT_EQ(logged->step, 0);
    EXPECT_NEAR(*logged->histogram_sum, sum, 1e-6) << fresh_parameters[i].name;
  }
  fs::remove_all(dir);
}

TEST(TensorBoardLogger, WritesNothingUnderFastDevRunAndEndsTheSessionAsAFailureOnAnException) {
  const Data data;
  const auto dir = fresh_directory();
  {
    TrainingRun s;
    auto source = data.source(16);
    auto logger = std::make_shared<TensorBoardLogger>();
    Trainer({.fast_dev_run = 2, .root_dir = dir}, {logger}).fit(*s.module, source);
    EXPECT_FALSE(fs::exists(dir / "tensorboard"));
  }
  NanAfter module(3);
  auto source = data.source(16);
  auto logger = std::make_shared<TensorBoardLogger>();
  Trainer trainer({.max_epochs = 2, .stop_on_nonfinite_loss = true, .root_dir = dir}, {logger});
  EXPECT_THROW(trainer.fit(module, source), std::runtime_error);
  const auto events = read_events(dir / "tensorboard");
  EXPECT_EQ(with_tag(events, "_hparams_/session_end_info").size(), 1u);
  EXPECT_TRUE(with_tag(events, "final/train_loss").empty());
  fs::remove_all(dir);
}

TEST(LearningRateMonitor, RecordsTheScheduledRatePerEpochOrPerStepAndLogsIt) {
  const Data data;
  const nn::StepSchedule halving(0.1, 1, 0.5);
  const auto dir = fresh_directory();
  for (auto interval : {LoggingInterval::epoch, LoggingInterval::step}) {
    TrainingRun s;
    auto source = data.source(16);  // 4 steps per epoch
    const auto log_dir = dir / (interval == LoggingInterval::epoch ? "epoch" : "step");
    auto logger = std::make_shared<TensorBoardLogger>(TensorBoardLoggerOptions{.log_dir = log_dir});
    auto monitor = std::make_shared<LearningRateMonitor>(interval, logger);
    Trainer({.max_epochs = 3,
             .schedule = &halving,
             .schedule_interval = interval == LoggingInterval::epoch ? ScheduleInterval::epoch : ScheduleInterval::step},
            {logger, monitor})
        .fit(*s.module, source);
    const auto n = interval == LoggingInterval::epoch ? 3 : 12;
    ASSERT_EQ(monitor->values().size(), static_cast<std::size_t>(n));
    const auto logged = with_tag(read_events(log_dir), "train/lr");
    ASSERT_EQ(logged.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      // Epoch i trains at 0.1 * 0.5^i; step i at 0.1 * 0.5^i (StepSchedule with step_size 1).
      EXPECT_EQ(monitor->values()[static_cast<std::size_t>(i)].first, i);
      EXPECT_DOUBLE_EQ(monitor->values()[static_cast<std::size_t>(i)].second, 0.1 * std::pow(0.5, i));
      EXPECT_EQ(logged[static_cast<std::size_t>(i)]->step, i);
      EXPECT_FLOAT_EQ(*logged[static_cast<std::size_t>(i)]->scalar, static_cast<float>(0.1 * std::pow(0.5, i)));
    }
  }
  fs::remove_all(dir);
}

TEST(ProgressBar, OneLinePerIntervalInABatchLogAndABarOnATerminal) {
  const Data data;
  // A clock that moves one second per reading: every update is one interval later.
  auto seconds = std::make_shared<int>(0);
  const auto clock = [seconds] { return std::chrono::steady_clock::time_point(std::chrono::seconds((*seconds)++)); };
  for (bool terminal : {false, true}) {
    TrainingRun s;
    auto source = data.source(16);  // 4 batches per epoch
    auto val_source = data.source(16, 9, false);
    std::ostringstream out;
    auto bar = std::make_shared<ProgressBar>(ProgressBarOptions{
        .label = "fit", .terminal = terminal, .interval = std::chrono::milliseconds(1000), .out = &out, .clock = clock});
    Trainer({.max_epochs = 2}, {bar}).fit(*s.module, source, &val_source);
    const auto text = out.str();
    if (terminal) {
      EXPECT_NE(text.find('\r'), std::string::npos) << text;
      EXPECT_NE(text.find("8/8"), std::string::npos) << text;
    } else {
      EXPECT_EQ(text.find('\r'), std::string::npos) << text;
      // One line per batch (each an interval apart) and the final one.
      EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 9) << text;
      EXPECT_NE(text.find("[fit] 3/8 batch"), std::string::npos) << text;
      EXPECT_NE(text.find("epoch 2/2  train_loss "), std::string::npos) << text;  // the last epoch's losses
      EXPECT_NE(text.find("val_loss "), std::string::npos) << text;
    }
  }
}

// ---- FusedMlpModule: nn::FusedMlp on the trainer. ----

TEST(FusedMlpModule, TrainsAsTheFusedMlpsOwnStepsAndResumesFromItsCheckpoint) {
  // y = sin(3x) on 32 rows, batches of 8 in order; 1 -> 8 tanh -> 1, Adam.
  nn::Tensor x({32, 1}), y({32, 1});
  for (int i = 0; i < 32; ++i) {
    x.data()[i] = static_cast<float>(i) / 16.0f - 1.0f;
    y.data()[i] = std::sin(3.0f * x.data()[i]);
  }
  const nn::AdamOptions adam{.learning_rate = 0.02};
  const auto source = [&] { return InMemoryBatchSource(x, {}, y, data::ShardedSampler::drop_last(32, 8, 1, 0, 1, false)); };
  struct Fused {
    std::unique_ptr<nn::Sequential> layers;
    std::unique_ptr<nn::Adam> optimizer;
    std::unique_ptr<nn::FusedMlp> net;
    std::unique_ptr<FusedMlpModule> module;
    Fused(std::uint64_t seed, const nn::AdamOptions& options) {
      nn::Generator init(seed);
      layers = nn::make_mlp(1, 8, 1, nn::Activation::tanh, init);
      optimizer = std::make_unique<nn::Adam>(nn::parameters_of(*layers), options);
      net = std::make_unique<nn::FusedMlp>(1, 8, 1, nn::Activation::tanh, options);
      net->load_from(*layers);
      module = std::make_unique<FusedMlpModule>(*net, *layers, *optimizer, 2.0);
    }
    std::vector<float> predict(const nn::Tensor& inputs) const {
      std::vector<float> out(static_cast<std::size_t>(inputs.size(0)));
      net->predict(inputs.span(), out);
      return out;
    }
  };
  // The reference: FusedMlp's own steps, batch by batch.
  Fused reference(3, adam);
  double last_epoch_loss = 0.0;
  for (int epoch = 0; epoch < 5; ++epoch) {
    last_epoch_loss = 0.0;
    for (int b = 0; b < 4; ++b) {
      last_epoch_loss += reference.net->train_step(x.span().subspan(8 * b, 8), y.span().subspan(8 * b, 8)) / 4.0;
    }
  }
  Fused trained(3, adam);
  auto train = source();
  auto val = source();
  const auto dir = fresh_directory();
  Trainer trainer({.max_epochs = 5, .root_dir = dir}, {std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{})});
  trainer.fit(*trained.module, train, &val);
  EXPECT_EQ(trained.predict(x), reference.predict(x));  // bit for bit
  EXPECT_NEAR(trainer.metrics().at("train_loss"), 2.0 * last_epoch_loss, 1e-12);  // loss_scale 2
  EXPECT_NEAR(trainer.metrics().at("val_loss"), 2.0 * reference.net->loss(x.span(), y.span()), 1e-12);
  const auto predicted = trainer.predict(*trained.module, val);
  ASSERT_EQ(predicted.size(), 4u);
  const auto expected = reference.predict(x);
  for (int b = 0; b < 4; ++b) {
    for (int i = 0; i < 8; ++i) EXPECT_EQ(predicted[b].data()[i], expected[static_cast<std::size_t>(8 * b + i)]);
  }

  // Three epochs, then a fresh process state (other initial weights) resumes to five: equal.
  {
    Fused first(3, adam);
    auto first_train = source();
    Trainer({.max_epochs = 3, .root_dir = dir / "resume"}, {std::make_shared<ModelCheckpoint>(ModelCheckpointOptions{})})
        .fit(*first.module, first_train);
  }
  Fused resumed(77, adam);
  auto resumed_train = source();
  Trainer({.max_epochs = 5, .root_dir = dir / "resume"}).fit(*resumed.module, resumed_train, nullptr, "last");
  EXPECT_EQ(resumed.predict(x), reference.predict(x));
  EXPECT_EQ(resumed.net->steps_taken(), 20);

  // The update happens inside training_step: options acting between are refused.
  Fused refused(3, adam);
  auto refused_train = source();
  Trainer accumulating({.accumulate_grad_batches = 2});
  EXPECT_THROW(accumulating.fit(*refused.module, refused_train), UsageError);
  Trainer clipping({.gradient_clip_norm = 1.0});
  EXPECT_THROW(clipping.fit(*refused.module, refused_train), UsageError);
  fs::remove_all(dir);
}

// ---- Lightning's Slurm failures, end to end through the trainer. ----

TEST(TrainerPreemption, Sigusr1InAJobArrayRequeuesOnlyThisTaskAndWithoutScontrolStillCheckpoints) {
  const Data data;
  const auto dir = fresh_directory();
  const SlurmJobVariables job("105");
  ::setenv("SLURM_ARRAY_JOB_ID", "100", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "5", 1);
  {
    // Lightning #15022: `scontrol requeue 105` would requeue the whole array 100.
    TrainingRun run;
    auto source = data.source(16);
    Trainer trainer({.max_epochs = 2,
                     .root_dir = dir / "array",
                     .handle_preemption = true,
                     .scontrol = fake_scontrol(dir / "bin").string()},
                    {std::make_shared<SignalAtBatch>(SIGUSR1, 3)});
    trainer.fit(*run.module, source);
    EXPECT_EQ(trainer.preempted_by(), SIGUSR1);
    EXPECT_EQ(read_text(dir / "bin" / "requeued"), "requeue 100_5");
    EXPECT_EQ(trainer.requeue_message(), "requeued job 100_5");
  }
  {
    // Lightning #21404: no scontrol in the container. One sentence; the checkpoint is there
    // and resumes.
    TrainingRun run;
    auto source = data.source(16);
    Trainer trainer({.max_epochs = 2,
                     .root_dir = dir / "container",
                     .handle_preemption = true,
                     .scontrol = (dir / "no-such-dir" / "scontrol").string()},
                    {std::make_shared<SignalAtBatch>(SIGUSR1, 3)});
    trainer.fit(*run.module, source);
    EXPECT_EQ(trainer.preempted_by(), SIGUSR1);
    EXPECT_NE(trainer.requeue_message().find("could not be started"), std::string::npos) << trainer.requeue_message();
    EXPECT_NE(trainer.requeue_message().find("resubmit"), std::string::npos) << trainer.requeue_message();
    ASSERT_TRUE(fs::exists(dir / "container" / "checkpoints" / "last.h5"));
    TrainingRun resumed(42);
    auto resumed_source = data.source(16);
    Trainer again({.max_epochs = 2, .root_dir = dir / "container"});
    again.fit(*resumed.module, resumed_source, nullptr, "last");
    EXPECT_EQ(again.global_step(), 8);
  }
  ::unsetenv("SLURM_ARRAY_JOB_ID");
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  fs::remove_all(dir);
}

namespace {

// A step whose values arrive later, as on a GPU: loss_sum and sums read NaN until
// resolved(), which records the order in which steps were waited for.
StepResult pending_step(StepResult ready, std::int64_t index, std::vector<std::int64_t>& waited) {
  StepResult pending{std::nan(""), ready.samples, {}};
  for (const auto& [name, value] : ready.sums) pending.sums[name] = std::nan("");
  pending.complete = [ready, index, &waited](StepResult& out) {
    waited.push_back(index);
    out.loss_sum = ready.loss_sum;
    out.sums = ready.sums;
  };
  return pending;
}

// The module of a TrainingRun whose steps return pending values; counts what was waited for.
class DeferringModule final : public TrainableModule {
 public:
  StepResult training_step(const TrainBatch& batch) override {
    return pending_step(run_.module->training_step(batch), created_++, waited_);
  }
  StepResult validation_step(const TrainBatch& batch) override {
    return pending_step(run_.module->validation_step(batch), created_++, waited_);
  }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *run_.net; }
  nn::Optimizer& optimizer() override { return *run_.optimizer; }
  void wait_for_device() override { ++device_waits_; }
  std::int64_t created() const { return created_; }
  const std::vector<std::int64_t>& waited() const { return waited_; }
  std::int64_t device_waits() const { return device_waits_; }

 private:
  TrainingRun run_;
  std::int64_t created_ = 0, device_waits_ = 0;
  std::vector<std::int64_t> waited_;
};

// At each epoch end: whether every step so far had been waited for.
class SettledAtEpochEnd final : public Callback {
 public:
  explicit SettledAtEpochEnd(const DeferringModule& module) : module_(module) {}
  void on_train_epoch_end(Trainer&) override {
    settled.push_back(static_cast<std::int64_t>(module_.waited().size()) == module_.created());
  }
  std::vector<bool> settled;

 private:
  const DeferringModule& module_;
};

}  // namespace

TEST(MetricAccumulator, PendingStepsAreWaitedForTwoStepsLateAndAddedInStepOrder) {
  // 1e16 + 1 - 1e16 is 0 and 1e16 - 1e16 + 1 is 1 in double: the sums show the order of addition.
  const std::vector<double> losses{1e16, 1.0, -1e16, 2.0, 0.5, 3.0};
  MetricAccumulator ready, deferred;
  std::vector<std::int64_t> waited;
  for (std::size_t i = 0; i < losses.size(); ++i) {
    const StepResult step{losses[i], 2, {{"accuracy", static_cast<double>(i)}}};
    ready.add(step);
    // Steps 0, 1, 3 and 4 pending, 2 and 5 ready: a ready step waits its turn behind pending ones.
    deferred.add(i == 2 || i == 5 ? step : pending_step(step, static_cast<std::int64_t>(i), waited));
    EXPECT_EQ(deferred.pending_steps(), std::min<std::size_t>(i + 1, MetricAccumulator::kLag)) << i;
    EXPECT_FALSE(deferred.empty());
  }
  EXPECT_EQ(waited, (std::vector<std::int64_t>{0, 1, 3}));  // step 4 is still in the queue
  const auto expected = ready.reduce(MPI_COMM_NULL, "train");
  const auto got = deferred.reduce(MPI_COMM_NULL, "train");
  EXPECT_EQ(waited, (std::vector<std::int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(deferred.pending_steps(), 0u);
  EXPECT_EQ(got.at("train_loss"), expected.at("train_loss"));  // bit for bit
  EXPECT_EQ(got.at("train_loss"), (1e16 + 1.0 - 1e16 + 2.0 + 0.5 + 3.0) / 12.0);
  EXPECT_EQ(got.at("train_accuracy"), expected.at("train_accuracy"));

  // serialize() and totals() wait too; clear() drops pending steps without waiting.
  MetricAccumulator other;
  waited.clear();
  other.add(pending_step({4.0, 1, {}}, 7, waited));
  EXPECT_EQ(other.totals().loss_sum, 4.0);
  other.add(pending_step({5.0, 1, {}}, 8, waited));
  EXPECT_NE(other.serialize().find("\"loss_sum\":9.0"), std::string::npos) << other.serialize();
  other.add(pending_step({6.0, 1, {}}, 9, waited));
  other.clear();
  EXPECT_EQ(waited, (std::vector<std::int64_t>{7, 8}));
  EXPECT_TRUE(other.empty());
}

TEST(TrainerFit, PendingStepValuesGiveTheSameMetricsAndAreAllWaitedForAtEachEpochsEnd) {
  const Data data;
  TrainingRun eager;
  auto source = data.source(16);
  auto val_source = data.source(16, 9, false);
  auto recorder = std::make_shared<Recorder>();
  Trainer({.max_epochs = 3}, {recorder}).fit(*eager.module, source, &val_source);

  DeferringModule module;
  auto deferred_recorder = std::make_shared<Recorder>();
  auto settled = std::make_shared<SettledAtEpochEnd>(module);
  Trainer trainer({.max_epochs = 3}, {deferred_recorder, settled});
  trainer.fit(module, source, &val_source);
  ASSERT_EQ(deferred_recorder->epochs.size(), 3u);
  EXPECT_EQ(deferred_recorder->epochs, recorder->epochs);  // every metric, bit for bit
  EXPECT_EQ(settled->settled, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(module.device_waits(), 3);  // before each epoch's time is taken
  std::vector<std::int64_t> in_order(static_cast<std::size_t>(module.created()));
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(module.waited(), in_order);
  EXPECT_NE(trainer.profile().describe().find("device wait"), std::string::npos);
}

TEST(TrainerFit, StopOnNonfiniteLossWaitsForPendingValuesBeforeStepping) {
  const Data data;
  // NaN from the 6th step on, known only once waited for.
  class PendingNan final : public TrainableModule {
   public:
    StepResult training_step(const TrainBatch& batch) override {
      auto ready = inner_.training_step(batch);
      return pending_step(ready, ++steps_, waited_);
    }
    StepResult validation_step(const TrainBatch& batch) override { return inner_.validation_step(batch); }
    void reduce_gradients() override {}
    nn::Layer& network() override { return inner_.network(); }
    nn::Optimizer& optimizer() override { return inner_.optimizer(); }

   private:
    NanAfter inner_{6};
    std::int64_t steps_ = 0;
    std::vector<std::int64_t> waited_;
  } module;
  auto source = data.source(16);
  Trainer trainer({.max_epochs = 3, .stop_on_nonfinite_loss = true});
  try {
    trainer.fit(module, source);
    FAIL() << "a pending NaN loss did not stop the fit";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("train_loss is nan at batch 1 of the epoch on rank 0 before step 6"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(trainer.profile().optimizer_steps, 5);
}
