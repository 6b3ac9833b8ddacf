// Runs under mpirun -np 4: the trainer on 1, 2 and 4 ranks (sub-communicators of the 4) gives
// the same reduced metrics and weights for the same global batch, and a metric name missing on
// one rank ends every rank with a message naming it instead of a hang, while a rank that
// evaluated nothing adds nothing; a preemption signal on
// one rank stops all of them at the same step, and the resumed run logs the uninterrupted one's
// metrics (on 4 ranks, and on 2 from a 4-rank checkpoint); a checkpoint rank 0 cannot write ends
// every rank with its reason.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../support/mpi_gtest.hpp"
#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/nn/distributed/data_parallel.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "slurmlab/train/observers.hpp"
#include "slurmlab/train/trainer.hpp"

using namespace slurmlab;
using namespace slurmlab::train;

namespace {

constexpr std::int64_t kSamples = 64, kFeatures = 4, kClasses = 3, kGlobalBatch = 16;

struct Data {
  nn::Tensor inputs{nn::Shape{kSamples, kFeatures}};
  std::vector<std::int64_t> labels;
  Data() {
    nn::Generator g(5);
    for (auto& v : inputs.span()) v = g.uniform(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < kSamples; ++i) labels.push_back(static_cast<std::int64_t>(g.below(kClasses)));
  }
  InMemoryBatchSource source(int world, int rank, bool shuffle) const {
    return {inputs, labels, {}, data::ShardedSampler::drop_last(kSamples, kGlobalBatch, world, rank, 7, shuffle)};
  }
};

class Recorder final : public Callback {
 public:
  void on_train_epoch_end(Trainer& t) override { epochs.push_back(t.metrics()); }
  std::vector<Metrics> epochs;
};

struct Outcome {
  std::vector<float> weights;
  std::vector<Metrics> epochs;
};

// communicator == MPI_COMM_NULL: one process on the whole global batch.
Outcome train_on(MPI_Comm communicator, std::int64_t val_check_interval = 0) {
  int world = 1, rank = 0;
  if (communicator != MPI_COMM_NULL) {
    MPI_Comm_size(communicator, &world);
    MPI_Comm_rank(communicator, &rank);
  }
  const Data data;
  nn::Generator g(1);
  nn::Sequential net;
  net.add(std::make_unique<nn::Linear>(kFeatures, 8, g))
      .add(nn::tanh_layer())
      .add(std::make_unique<nn::Linear>(8, kClasses, g));
  // SGD, not Adam: Adam is invariant to the gradient's scale and would hide a wrong average.
  nn::Sgd sgd(nn::parameters_of(net), {.learning_rate = 0.1, .momentum = 0.9});
  std::unique_ptr<nn::MpiGradientReducer> reducer;
  if (communicator != MPI_COMM_NULL) reducer = std::make_unique<nn::MpiGradientReducer>(communicator);
  NetworkModule module(net, sgd, LossKind::softmax_cross_entropy, reducer.get());
  auto train = data.source(world, rank, true);
  auto validation = data.source(world, rank, false);
  auto recorder = std::make_shared<Recorder>();
  Trainer trainer(
      {.max_epochs = 3,
       .val_check_interval = val_check_interval,
       .accumulate_grad_batches = 2,
       .gradient_clip_norm = 5.0,
       .communicator = communicator},
      {recorder});
  trainer.fit(module, train, &validation);
  Outcome outcome;
  for (const auto& p : nn::parameters_of(net)) {
    const auto s = p.parameter->value.span();
    outcome.weights.insert(outcome.weights.end(), s.begin(), s.end());
  }
  outcome.epochs = recorder->epochs;
  return outcome;
}

// One Linear layer trained with SGD and an MPI reducer over MPI_COMM_WORLD.
struct OneLayerOnAllRanks {
  static nn::Sequential make_net() {
    nn::Generator g(1);
    nn::Sequential net;
    net.add(std::make_unique<nn::Linear>(kFeatures, kClasses, g));
    return net;
  }
  nn::Sequential net = make_net();
  nn::Sgd sgd{nn::parameters_of(net), {.learning_rate = 0.1}};
  nn::MpiGradientReducer reducer{MPI_COMM_WORLD};
  NetworkModule module{net, sgd, LossKind::softmax_cross_entropy, &reducer};
};

// One folder for all ranks (named with rank 0's pid), for a test whose rank 0 writes there.
std::filesystem::path shared_directory(const std::string& stem) {
  long root_pid = static_cast<long>(::getpid());
  MPI_Bcast(&root_pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  return std::filesystem::temp_directory_path() / (stem + std::to_string(root_pid));
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

}  // namespace

TEST(TrainerMpi, OneTwoAndFourRanksGiveTheSameMetricsAndWeights) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 4) GTEST_SKIP() << "needs mpirun -np 4";
  // Validation at the epoch's end, and every 2 batches (val_check_interval) within it.
  for (std::int64_t val_check_interval : {0, 2}) {
  const Outcome single = train_on(MPI_COMM_NULL, val_check_interval);
  MPI_Comm pairs = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() / 2, world_rank(), &pairs);
  const Outcome two = train_on(pairs, val_check_interval);
  MPI_Comm_free(&pairs);
  const Outcome four = train_on(MPI_COMM_WORLD, val_check_interval);
  ASSERT_TRUE(single.epochs.back().contains("val_loss"));
  for (const Outcome* parallel : {&two, &four}) {
    ASSERT_EQ(parallel->weights.size(), single.weights.size());
    // Float sums in another order (partial sums per rank, then the allreduce) over 6 steps.
    for (std::size_t i = 0; i < single.weights.size(); ++i)
      EXPECT_NEAR(parallel->weights[i], single.weights[i], 2e-6) << i;
    ASSERT_EQ(parallel->epochs.size(), single.epochs.size());
    for (std::size_t e = 0; e < single.epochs.size(); ++e) {
      ASSERT_EQ(parallel->epochs[e].size(), single.epochs[e].size());
      for (const auto& [name, value] : single.epochs[e]) {
        EXPECT_NEAR(parallel->epochs[e].at(name), value, 1e-6) << name << " epoch " << e;
      }
    }
  }
  }
}

namespace {

// A one-layer module whose training steps report what a test scripts (training_step).
class TinyModule : public TrainableModule {
 public:
  TinyModule() : optimizer_(nn::parameters_of(*net_), {.learning_rate = 0.1}) {}
  StepResult validation_step(const TrainBatch& batch) override { return {1.0, batch.samples(), {}}; }
  void reduce_gradients() override {}
  nn::Layer& network() override { return *net_; }
  nn::Optimizer& optimizer() override { return optimizer_; }

 private:
  static std::unique_ptr<nn::Sequential> make_net() {
    nn::Generator g(1);
    auto net = std::make_unique<nn::Sequential>();
    net->add(std::make_unique<nn::Linear>(kFeatures, kClasses, g));
    return net;
  }
  std::unique_ptr<nn::Sequential> net_ = make_net();
  nn::Sgd optimizer_;
};

// Rank 1 forgets to report "extra".
class ForgetfulModule final : public TinyModule {
 public:
  StepResult training_step(const TrainBatch& batch) override {
    StepResult result{1.0, batch.samples(), {}};
    if (world_rank() != 1) result.sums["extra"] = 1.0;
    return result;
  }
};

}  // namespace

TEST(TrainerMpi, AMetricMissingOnOneRankEndsEveryRankWithItsName) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2 || kGlobalBatch % size != 0) GTEST_SKIP() << "needs 2 or 4 ranks";
  const Data data;
  ForgetfulModule module;
  auto train = data.source(size, world_rank(), true);
  Trainer trainer({.max_epochs = 1, .communicator = MPI_COMM_WORLD});
  try {
    trainer.fit(module, train);
    FAIL() << "no error on rank " << world_rank();
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'train_extra'"), std::string::npos) << message;
    EXPECT_NE(message.find("rank(s) 1"), std::string::npos) << message;
  }
}

// A validation set smaller than the ranks' batches leaves a rank without a batch: it adds
// nothing (no names, no samples), and the others' metrics come out as if it were not there.
TEST(TrainerMpi, ARankThatEvaluatedNothingAddsNothingToTheReducedMetrics) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) GTEST_SKIP() << "needs 2 or more ranks";
  const int rank = world_rank();
  MetricAccumulator accumulator;
  if (rank != 1) accumulator.add({.loss_sum = 2.0 * (rank + 1), .samples = 4, .sums = {{"accuracy", 3.0}}});
  const auto metrics = accumulator.reduce(MPI_COMM_WORLD, "val");
  double loss_sum = 0.0;
  for (int r = 0; r < size; ++r)
    if (r != 1) loss_sum += 2.0 * (r + 1);
  const double samples = 4.0 * (size - 1);
  ASSERT_EQ(metrics.size(), 2u) << "on rank " << rank;
  EXPECT_DOUBLE_EQ(metrics.at("val_loss"), loss_sum / samples);
  EXPECT_DOUBLE_EQ(metrics.at("val_accuracy"), 0.75);
}

namespace {

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

}  // namespace

TEST(TrainerMpi, ASignalOnOneRankStopsEveryRankAtTheSameStep) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (kGlobalBatch % size != 0) GTEST_SKIP() << "needs 1, 2 or 4 ranks";
  const auto dir = shared_directory("slurmlab_train_mpi_");
  const Data data;
  OneLayerOnAllRanks run;
  auto& module = run.module;
  auto train = data.source(size, world_rank(), true);
  std::vector<std::shared_ptr<Callback>> callbacks;
  if (world_rank() == size - 1) callbacks.push_back(std::make_shared<SignalAtBatch>(SIGTERM, 3));
  Trainer trainer({.max_epochs = 3, .root_dir = dir, .communicator = MPI_COMM_WORLD, .handle_preemption = true},
                  callbacks);
  trainer.fit(module, train);
  EXPECT_EQ(trainer.preempted_by(), SIGTERM);
  EXPECT_EQ(trainer.global_step(), 3);
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_TRUE(std::filesystem::exists(dir / "checkpoints" / "last.h5"));
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

namespace {

// A module whose training loss turns NaN at its n-th step on one rank only.
class NanOnOneRank final : public TinyModule {
 public:
  NanOnOneRank(int rank, std::int64_t n) : rank_(rank), n_(n) {}
  StepResult training_step(const TrainBatch& batch) override {
    StepResult result{1.0, batch.samples(), {}};
    if (world_rank() == rank_ && ++steps_ >= n_) result.loss_sum = std::nan("");
    return result;
  }

 private:
  int rank_;
  std::int64_t n_, steps_ = 0;
};

}  // namespace

TEST(TrainerMpi, ANanLossOnOneRankEndsEveryRankWithTheSameSentence) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2 || kGlobalBatch % size != 0) GTEST_SKIP() << "needs 2 or 4 ranks";
  const Data data;
  NanOnOneRank module(size - 1, 3);
  auto train = data.source(size, world_rank(), true);
  Trainer trainer({.max_epochs = 2, .stop_on_nonfinite_loss = true, .communicator = MPI_COMM_WORLD});
  std::string message;
  try {
    trainer.fit(module, train);
    FAIL() << "no error on rank " << world_rank();
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  const std::string expected =
      "train_loss is nan at batch 2 of the epoch on rank " + std::to_string(size - 1) + " before step 3 (epoch 0)";
  EXPECT_EQ(message.rfind(expected, 0), 0u) << message;
  EXPECT_EQ(trainer.profile().optimizer_steps, 2);  // every rank stopped before the NaN step
  // The same sentence on every rank: rank 0's, compared.
  std::vector<char> root(message.begin(), message.end());
  int length = static_cast<int>(root.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  root.resize(static_cast<std::size_t>(length));
  MPI_Bcast(root.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  EXPECT_EQ(std::string(root.begin(), root.end()), message);
}

TEST(TrainerMpi, ObserversWriteOneEventFileAndPrintOnRankZeroOnly) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (kGlobalBatch % size != 0) GTEST_SKIP() << "needs 1, 2 or 4 ranks";
  const auto dir = shared_directory("slurmlab_observers_mpi_");
  const Data data;
  OneLayerOnAllRanks run;
  auto& module = run.module;
  auto train = data.source(size, world_rank(), true);
  auto validation = data.source(size, world_rank(), false);
  std::ostringstream printed;
  auto logger = std::make_shared<TensorBoardLogger>(TensorBoardLoggerOptions{.histogram_every_n_epochs = 1});
  auto monitor = std::make_shared<LearningRateMonitor>(LoggingInterval::epoch, logger);
  auto bar = std::make_shared<ProgressBar>(ProgressBarOptions{.terminal = false, .out = &printed});
  Trainer trainer({.max_epochs = 2, .root_dir = dir, .communicator = MPI_COMM_WORLD}, {logger, monitor, bar});
  trainer.fit(module, train, &validation);
  EXPECT_EQ(monitor->values().size(), 2u);  // every rank keeps the values
  if (world_rank() == 0) {
    EXPECT_NE(printed.str().find("[train] 8/8 batch"), std::string::npos) << printed.str();
  } else {
    EXPECT_EQ(printed.str(), "");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "tensorboard")) {
    EXPECT_EQ(entry.path().filename().string().rfind("events.out.tfevents.", 0), 0u);
    ++files;
  }
  EXPECT_EQ(files, 1u);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

// A run preempted mid-epoch and resumed on the same ranks logs exactly what the uninterrupted
// run logs, the interrupted epoch included: each rank continues its own partial epoch sums, and
// BatchNorm's running statistics (which differ between ranks while training) are rank 0's at
// every evaluation, in both runs.
TEST(TrainerMpi, AResumedRunLogsTheUninterruptedRunsMetricsForEveryEpoch) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (kGlobalBatch % size != 0) GTEST_SKIP() << "needs 1, 2 or 4 ranks";
  const auto dir = shared_directory("slurmlab_train_mpi_resume_");
  const Data data;
  const auto run = [&](std::uint64_t init_seed, std::int64_t signal_at_batch, const std::string& resume_from) {
    nn::Generator g(init_seed);
    nn::Sequential net;
    net.add(std::make_unique<nn::Linear>(kFeatures, 8, g))
        .add(std::make_unique<nn::BatchNorm>(8, 0))
        .add(nn::tanh_layer())
        .add(std::make_unique<nn::Linear>(8, kClasses, g));
    nn::Sgd sgd(nn::parameters_of(net), {.learning_rate = 0.1, .momentum = 0.9});
    nn::MpiGradientReducer reducer(MPI_COMM_WORLD);
    NetworkModule module(net, sgd, LossKind::softmax_cross_entropy, &reducer);
    auto train = data.source(size, world_rank(), true);
    auto validation = data.source(size, world_rank(), false);
    auto recorder = std::make_shared<Recorder>();
    std::vector<std::shared_ptr<Callback>> callbacks{recorder};
    if (signal_at_batch > 0 && world_rank() == 0) callbacks.push_back(std::make_shared<SignalAtBatch>(SIGTERM, signal_at_batch));
    Trainer trainer({.max_epochs = 3,
                     .root_dir = dir / (signal_at_batch > 0 || !resume_from.empty() ? "b" : "a"),
                     .communicator = MPI_COMM_WORLD,
                     .handle_preemption = signal_at_batch > 0},
                    callbacks);
    trainer.fit(module, train, &validation, resume_from);
    Outcome outcome;
    for (const auto& p : nn::parameters_of(net)) {
      const auto s = p.parameter->value.span();
      outcome.weights.insert(outcome.weights.end(), s.begin(), s.end());
    }
    outcome.epochs = recorder->epochs;
    return outcome;
  };
  const auto uninterrupted = run(1, 0, "");
  ASSERT_EQ(uninterrupted.epochs.size(), 3u);
  // 4 batches per epoch: stop after the 6th, in the middle of epoch 2 of 3.
  const auto first = run(1, 6, "");
  ASSERT_EQ(first.epochs.size(), 1u);
  // Other initial weights: everything must come from the checkpoint.
  const auto resumed = run(77, 0, "last");
  ASSERT_EQ(resumed.epochs.size(), 2u);
  EXPECT_EQ(resumed.epochs[0], uninterrupted.epochs[1]);
  EXPECT_EQ(resumed.epochs[1], uninterrupted.epochs[2]);
  EXPECT_EQ(resumed.weights, uninterrupted.weights);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

class SaveAtEpochEnd final : public Callback {
 public:
  explicit SaveAtEpochEnd(std::filesystem::path path) : path_(std::move(path)) {}
  void on_train_epoch_end(Trainer& t) override { t.save_checkpoint(path_); }

 private:
  std::filesystem::path path_;
};

// Rank 0 cannot write the checkpoint (its folder would be below a regular file): every rank
// ends with rank 0's reason instead of waiting for, or reading, a file that never came.
TEST(TrainerMpi, ACheckpointRankZeroCannotWriteEndsEveryRankWithItsReason) {
  const auto blocker = shared_directory("slurmlab_train_mpi_file_");
  if (world_rank() == 0) std::ofstream(blocker) << "a file, not a folder\n";
  MPI_Barrier(MPI_COMM_WORLD);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Data data;
  OneLayerOnAllRanks run;
  auto& module = run.module;
  auto train = data.source(size, world_rank(), true);
  Trainer trainer({.max_epochs = 2, .communicator = MPI_COMM_WORLD},
                  {std::make_shared<SaveAtEpochEnd>(blocker / "checkpoints" / "last.h5")});
  std::string message;
  try {
    trainer.fit(module, train);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(blocker.string()), std::string::npos) << message;
  EXPECT_EQ(trainer.current_epoch(), 0);  // the first epoch's end, on every rank
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove(blocker);
}

// A checkpoint written by 4 ranks resumes on 2: the interrupted epoch's partial sums of all 4
// come along on rank 0, the global batch is the same, so the resumed run logs the uninterrupted
// 4-rank run's metrics and ends with its weights, up to float reduction order.
TEST(TrainerMpi, ACheckpointOfFourRanksResumesOnTwo) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 4) GTEST_SKIP() << "needs 4 ranks";
  const auto dir = shared_directory("slurmlab_train_mpi_regroup_");
  const Data data;
  const auto run = [&](MPI_Comm communicator, std::uint64_t init_seed, std::int64_t signal_at_batch,
                       const std::string& resume_from, const std::string& folder) {
    int world = 1, rank = 0;
    MPI_Comm_size(communicator, &world);
    MPI_Comm_rank(communicator, &rank);
    nn::Generator g(init_seed);
    nn::Sequential net;
    net.add(std::make_unique<nn::Linear>(kFeatures, 8, g))
        .add(nn::tanh_layer())
        .add(std::make_unique<nn::Linear>(8, kClasses, g));
    nn::Sgd sgd(nn::parameters_of(net), {.learning_rate = 0.1, .momentum = 0.9});
    nn::MpiGradientReducer reducer(communicator);
    NetworkModule module(net, sgd, LossKind::softmax_cross_entropy, &reducer);
    auto train = data.source(world, rank, true);
    auto recorder = std::make_shared<Recorder>();
    std::vector<std::shared_ptr<Callback>> callbacks{recorder};
    if (signal_at_batch > 0 && rank == 0)
      callbacks.push_back(std::make_shared<SignalAtBatch>(SIGTERM, signal_at_batch));
    Trainer trainer({.max_epochs = 3, .root_dir = dir / folder, .communicator = communicator,
                     .handle_preemption = signal_at_batch > 0},
                    callbacks);
    trainer.fit(module, train, nullptr, resume_from);
    Outcome outcome;
    for (const auto& p : nn::parameters_of(net)) {
      const auto values = p.parameter->value.span();
      outcome.weights.insert(outcome.weights.end(), values.begin(), values.end());
    }
    outcome.epochs = recorder->epochs;
    return outcome;
  };
  const auto uninterrupted = run(MPI_COMM_WORLD, 1, 0, "", "a");
  ASSERT_EQ(uninterrupted.epochs.size(), 3u);
  ASSERT_EQ(run(MPI_COMM_WORLD, 1, 6, "", "b").epochs.size(), 1u);  // stopped in epoch 2 of 3
  MPI_Comm pair = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() < 2 ? 0 : MPI_UNDEFINED, world_rank(), &pair);
  if (pair != MPI_COMM_NULL) {
    const auto resumed = run(pair, 77, 0, "last", "b");
    MPI_Comm_free(&pair);
    ASSERT_EQ(resumed.epochs.size(), 2u);
    for (std::size_t e = 0; e < 2; ++e) {
      for (const auto& [name, value] : uninterrupted.epochs[e + 1]) {
        ASSERT_TRUE(resumed.epochs[e].contains(name)) << name;
        EXPECT_NEAR(resumed.epochs[e].at(name), value, 1e-6 * std::abs(value) + 1e-9) << name << " in epoch " << e + 2;
      }
    }
    ASSERT_EQ(resumed.weights.size(), uninterrupted.weights.size());
    for (std::size_t i = 0; i < resumed.weights.size(); ++i)
      EXPECT_NEAR(resumed.weights[i], uninterrupted.weights[i], 2e-6) << i;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

int main(int argc, char** argv) {
  cluster::MpiSession mpi(argc, argv, "test_train_mpi");
  ::testing::InitGoogleTest(&argc, argv);
  return slurmlab::testing::run_all_tests_on_every_rank(mpi.is_root());
}
