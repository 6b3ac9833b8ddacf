// Checkpoints: save, train, reload, retrain gives identical weights bit for bit; corrupt,
// truncated and mismatched files are refused with a clear message and change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "nn_test_support.hpp"
#include "slurmlab/nn/serialize/checkpoint.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"

namespace slurmlab::nn {
namespace {

namespace fs = std::filesystem;

// One folder per test: CTest runs the tests of this file as parallel processes, and one of
// them checks that its folder holds no temporary file.
fs::path scratch(const std::string& name) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = fs::path(SLURMLAB_BINARY_DIR) / "test-scratch" / "nn_checkpoint" / test->name();
  fs::create_directories(dir);
  return dir / name;
}

// A tutorial CNN with dropout and BatchNorm, Adam, and a shuffled synthetic data set: every
// piece of state a checkpoint must carry (weights, running statistics, Adam moments, the
// dropout generators, the data generator and position) influences the result.
struct TrainingRun {
  Generator init;
  std::unique_ptr<Sequential> net;
  std::unique_ptr<Optimizer> optimizer;
  Generator data_order{77};
  Tensor images;
  std::vector<std::int64_t> labels;
  TrainingPosition position;

  explicit TrainingRun(std::uint64_t seed) : init(seed) {
    net = make_tutorial_cnn(3, 10, 0.3f, init);
    optimizer = make_adamw(parameters_of(*net), 1e-3);
    Generator data(5);
    images = testing::random_tensor({32, 3, 32, 32}, data);
    for (int i = 0; i < 32; ++i) labels.push_back(static_cast<std::int64_t>(data.below(10)));
  }

  void train(int steps) {
    for (int s = 0; s < steps; ++s) {
      Tensor batch({8, 3, 32, 32});
      std::vector<std::int64_t> batch_labels;
      for (int i = 0; i < 8; ++i) {
        const auto pick = static_cast<std::int64_t>(data_order.below(32));
        std::copy_n(images.data() + pick * 3072, 3072, batch.data() + i * 3072);
        batch_labels.push_back(labels[static_cast<std::size_t>(pick)]);
      }
      optimizer->zero_grad();
      auto f = net->forward(batch, Mode::train);
      auto loss = softmax_cross_entropy(f.output, batch_labels);
      net->backward(*f.context, loss.grad);
      clip_gradient_norm(optimizer->parameters(), 1.0);
      optimizer->step();
      ++position.step;
      ++position.data_position;
    }
  }
  NamedGenerators extras() { return {{"data_order", &data_order}}; }
  std::vector<std::vector<float>> state() {
    std::vector<std::vector<float>> s;
    for (auto& p : parameters_of(*net)) s.push_back(p.parameter->value.to_vector());
    for (auto& b : buffers_of(*net)) s.push_back(b.buffer->to_vector());
    return s;
  }
};

TEST(Checkpoint, SaveTrainReloadRetrainIsBitIdentical) {
  TrainingRun run(1);
  run.train(3);
  run.position.epoch = 2;
  const auto path = scratch("determinism.h5");
  save_checkpoint(path, *run.net, run.optimizer.get(), run.position, run.extras());
  for (const auto& entry : fs::directory_iterator(path.parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << "temporary left: " << entry.path();
  }
  run.train(10);
  const auto first = run.state();

  auto restored = load_checkpoint(path, *run.net, run.optimizer.get(), run.extras());
  EXPECT_EQ(restored.epoch, 2);
  EXPECT_EQ(restored.step, 3);
  EXPECT_EQ(restored.data_position, 3);
  run.position = restored;
  run.train(10);
  EXPECT_EQ(run.state(), first) << "retraining from the checkpoint diverged";

  // A fresh process-like run with other initial weights, resumed from the file, agrees too.
  TrainingRun fresh(99);
  EXPECT_NE(fresh.state(), first);
  fresh.position = load_checkpoint(path, *fresh.net, fresh.optimizer.get(), fresh.extras());
  fresh.train(10);
  EXPECT_EQ(fresh.state(), first);
  EXPECT_EQ(fresh.optimizer->steps_taken(), 13);
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_refused(const fs::path& path, TrainingRun& run, const std::string& phrase) {
  const auto before = run.state();
  try {
    load_checkpoint(path, *run.net, run.optimizer.get(), run.extras());
    ADD_FAILURE() << "a damaged checkpoint loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(run.state(), before) << "a refused checkpoint modified the network";
}

TEST(Checkpoint, FlippedBitIsRefusedByTheChecksum) {
  TrainingRun run(2);
  run.train(1);
  const auto path = scratch("corrupt.h5");
  save_checkpoint(path, *run.net, run.optimizer.get(), run.position, run.extras());
  // Find the bytes of one weight tensor in the file and flip a bit inside them.
  auto contents = read_all(path);
  const auto named = parameters_of(*run.net)[8];
  ASSERT_EQ(named.name, "9.weight");  // 64 x 800
  const Tensor& weights = named.parameter->value;
  const std::string needle(reinterpret_cast<const char*>(weights.data()) + 400, 64);
  const auto at = contents.find(needle);
  ASSERT_NE(at, std::string::npos);
  contents[at + 10] = static_cast<char>(contents[at + 10] ^ 0x04);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;

  TrainingRun other(3);
  expect_refused(path, other, "checksum mismatch");
}

TEST(Checkpoint, TruncatedFileIsRefused) {
  TrainingRun run(4);
  const auto path = scratch("truncated.h5");
  save_checkpoint(path, *run.net, run.optimizer.get(), run.position, run.extras());
  fs::resize_file(path, fs::file_size(path) / 2);
  TrainingRun other(5);
  expect_refused(path, other, "truncated or corrupt");
}

TEST(Checkpoint, AnotherArchitectureIsRefused) {
  TrainingRun run(6);
  const auto path = scratch("cnn.h5");
  save_checkpoint(path, *run.net, run.optimizer.get(), run.position, run.extras());
  Generator g(1);
  auto mlp = make_mlp(4, 8, 2, Activation::relu, g);
  Adam adam(parameters_of(*mlp), {});
  try {
    load_checkpoint(path, *mlp, &adam);
    FAIL() << "loaded a CNN checkpoint into an MLP";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, MissingFileNamesTheFix) {
  TrainingRun run(7);
  try {
    load_checkpoint(scratch("absent.h5"), *run.net, run.optimizer.get());
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slurmlab::nn
