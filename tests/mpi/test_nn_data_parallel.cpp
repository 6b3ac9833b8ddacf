// Runs under mpirun -np 4: data-parallel SGD with gradients averaged by bucketed
// MPI_Allreduce matches single-process training on the whole global batch.
#include <gtest/gtest.h>

#include "../support/mpi_gtest.hpp"
#include <mpi.h>

#include <cmath>

#include "slurmlab/cluster/mpi_session.hpp"
#include "slurmlab/nn/data_parallel.hpp"
#include "slurmlab/nn/layers.hpp"
#include "slurmlab/nn/losses.hpp"
#include "slurmlab/nn/optim.hpp"

using namespace slurmlab;
using namespace slurmlab::nn;

namespace {

constexpr std::int64_t kSamples = 64, kGlobalBatch = 16, kSteps = 10;
constexpr std::uint64_t kShuffleSeed = 11;

// No BatchNorm or Dropout: their per-rank statistics and masks differ from one process's by
// design (as in PyTorch DDP without SyncBatchNorm), everything else must agree.
std::unique_ptr<Sequential> make_net(std::uint64_t seed) {
  Generator g(seed);
  auto net = std::make_unique<Sequential>();
  net->add(std::make_unique<Conv2d>(2, 4, 3, g, 1, 1)).add(tanh_layer()).add(std::make_unique<MaxPool2d>(2));
  net->add(std::make_unique<Flatten>()).add(std::make_unique<Linear>(4 * 4 * 4, 4, g));
  return net;
}

struct Data {
  Tensor images{Shape{kSamples, 2, 8, 8}};
  std::vector<std::int64_t> labels;
  Data() {
    Generator g(3);
    for (auto& v : images.span()) v = g.uniform(-1.0f, 1.0f);
    for (int i = 0; i < kSamples; ++i) labels.push_back(static_cast<std::int64_t>(g.below(4)));
  }
  std::pair<Tensor, std::vector<std::int64_t>> batch(const std::vector<std::int64_t>& indices) const {
    Tensor x({static_cast<std::int64_t>(indices.size()), 2, 8, 8});
    std::vector<std::int64_t> y;
    for (std::size_t i = 0; i < indices.size(); ++i) {
      std::copy_n(images.data() + indices[i] * 128, 128, x.data() + static_cast<std::int64_t>(i) * 128);
      y.push_back(labels[static_cast<std::size_t>(indices[i])]);
    }
    return {x, y};
  }
};

struct Outcome {
  std::vector<float> weights;
  std::vector<double> global_losses;  // per step, as rank 0 would log it
};

// reducer == nullptr: one process on the whole global batch.
Outcome train(Sequential& net, GradientReducer* reducer, const Data& data) {
  const int world = reducer ? reducer->world_size() : 1;
  const int rank = reducer ? reducer->rank() : 0;
  ShardedBatches sampler(kSamples, kGlobalBatch, world, rank, kShuffleSeed);
  // SGD, not Adam: Adam's update is invariant to the gradient's scale and would hide a wrong
  // averaging factor.
  Sgd sgd(parameters_of(net), {.learning_rate = 0.1, .momentum = 0.9});
  Outcome outcome;
  for (std::int64_t step = 0; step < kSteps; ++step) {
    const auto epoch = step / sampler.batches_per_epoch(), b = step % sampler.batches_per_epoch();
    auto [x, y] = data.batch(sampler.local_indices(epoch, b));
    sgd.zero_grad();
    auto f = net.forward(x, Mode::train);
    auto loss = softmax_cross_entropy(f.output, y);
    net.backward(*f.context, loss.grad);
    double metrics[2] = {loss.loss * static_cast<double>(y.size()), static_cast<double>(y.size())};
    if (reducer) {
      reducer->average_gradients(sgd.parameters());
      reducer->sum_metrics(metrics);
    }
    outcome.global_losses.push_back(metrics[0] / metrics[1]);
    sgd.step();
  }
  for (auto& p : parameters_of(net)) {
    auto v = p.parameter->value.to_vector();
    outcome.weights.insert(outcome.weights.end(), v.begin(), v.end());
  }
  return outcome;
}

void expect_matches_single_process(std::size_t bucket_bytes) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_EQ(kGlobalBatch % size, 0);
  const Data data;
  auto reference_net = make_net(1);
  const Outcome reference = train(*reference_net, nullptr, data);

  // Ranks other than 0 start from other weights: broadcast_state must fix that.
  auto net = make_net(rank == 0 ? 1 : 100 + static_cast<std::uint64_t>(rank));
  MpiGradientReducer reducer(MPI_COMM_WORLD, bucket_bytes);
  reducer.broadcast_state(*net);
  const Outcome parallel = train(*net, &reducer, data);

  // Tolerance: float sums in another order (4 partial sums, then the allreduce) over 10 SGD
  // steps; observed differences are around 1e-7.
  ASSERT_EQ(parallel.weights.size(), reference.weights.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < parallel.weights.size(); ++i) {
    const double scale = std::max(1.0, std::abs(static_cast<double>(reference.weights[i])));
    worst = std::max(worst, std::abs(static_cast<double>(parallel.weights[i]) - reference.weights[i]) / scale);
  }
  EXPECT_LT(worst, 2e-5) << "rank " << rank << " of " << size;
  for (std::int64_t s = 0; s < kSteps; ++s)
    EXPECT_NEAR(parallel.global_losses[static_cast<std::size_t>(s)], reference.global_losses[static_cast<std::size_t>(s)],
                1e-5)
        << "step " << s << ": the reduced loss is the global one";

  // All ranks hold bit-identical weights (the allreduce result is the same everywhere).
  std::vector<float> root = parallel.weights;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(root, parallel.weights) << "rank " << rank << " drifted from rank 0";
  if (size > 1) {
    EXPECT_GE(reducer.allreduce_calls(), static_cast<std::size_t>(kSteps));
  }
}

}  // namespace

TEST(DataParallel, FourRanksMatchOneProcessOnTheGlobalBatch) { expect_matches_single_process(25u << 20); }

TEST(DataParallel, SmallBucketsGiveTheSameResult) {
  // 64-byte buckets: every tensor is reduced on its own or split over buckets.
  expect_matches_single_process(64);
}

int main(int argc, char** argv) {
  cluster::MpiSession mpi(argc, argv, "test_nn_data_parallel");
  ::testing::InitGoogleTest(&argc, argv);
  return slurmlab::testing::run_all_tests_on_every_rank(mpi.is_root());
}
