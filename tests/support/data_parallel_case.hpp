#pragma once
// The data-parallel equivalence case shared by the MPI test (tests/mpi, CPU, bucketed
// MPI_Allreduce) and the NCCL test (tests/gpu): a small conv net, 64 fixed samples and 10
// SGD steps over DistributedSampler-style shards of a global batch of 16. Trained with a
// reducer on each rank's shard it must match one process on the whole global batch.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "slurmlab/data/sampler.hpp"
#include "slurmlab/nn/distributed/data_parallel.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"

namespace slurmlab::testing::data_parallel {

inline constexpr std::int64_t kSamples = 64, kGlobalBatch = 16, kSteps = 10;
inline constexpr std::uint64_t kShuffleSeed = 11;

// No BatchNorm or Dropout: their per-rank statistics and masks differ from one process's by
// design (as in PyTorch DDP without SyncBatchNorm), everything else must agree.
inline std::unique_ptr<nn::Sequential> make_net(std::uint64_t seed) {
  nn::Generator g(seed);
  auto net = std::make_unique<nn::Sequential>();
  net->add(std::make_unique<nn::Conv2d>(2, 4, 3, g, 1, 1)).add(nn::tanh_layer()).add(std::make_unique<nn::MaxPool2d>(2));
  net->add(std::make_unique<nn::Flatten>()).add(std::make_unique<nn::Linear>(4 * 4 * 4, 4, g));
  return net;
}

struct Data {
  nn::Tensor images{nn::Shape{kSamples, 2, 8, 8}};
  std::vector<std::int64_t> labels;
  Data() {
    nn::Generator g(3);
    for (auto& v : images.span()) v = g.uniform(-1.0f, 1.0f);
    for (int i = 0; i < kSamples; ++i) labels.push_back(static_cast<std::int64_t>(g.below(4)));
  }
  std::pair<nn::Tensor, std::vector<std::int64_t>> batch(const std::vector<std::int64_t>& indices) const {
    nn::Tensor x({static_cast<std::int64_t>(indices.size()), 2, 8, 8});
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

// reducer == nullptr: one process on the whole global batch. `device`: where the batches go
// (the net must already be there).
inline Outcome train(nn::Sequential& net, nn::GradientReducer* reducer, const Data& data,
                     nn::Device device = nn::Device::cpu) {
  const int world = reducer ? reducer->world_size() : 1;
  const int rank = reducer ? reducer->rank() : 0;
  auto sampler = data::ShardedSampler::drop_last(kSamples, kGlobalBatch, world, rank, kShuffleSeed);
  // SGD, not Adam: Adam's update is invariant to the gradient's scale and would hide a wrong
  // averaging factor.
  nn::Sgd sgd(nn::parameters_of(net), {.learning_rate = 0.1, .momentum = 0.9});
  Outcome outcome;
  for (std::int64_t step = 0; step < kSteps; ++step) {
    const auto epoch = step / sampler.batches_per_epoch(), b = step % sampler.batches_per_epoch();
    auto [x, y] = data.batch(sampler.local_indices(epoch, b));
    sgd.zero_grad();
    auto f = net.forward(device == nn::Device::cpu ? x : x.to(device), nn::Mode::train);
    auto loss = nn::softmax_cross_entropy(f.output, y);
    net.backward(*f.context, loss.grad);
    double metrics[2] = {loss.loss * static_cast<double>(y.size()), static_cast<double>(y.size())};
    if (reducer) {
      reducer->average_gradients(sgd.parameters());
      reducer->sum_metrics(metrics);
    }
    outcome.global_losses.push_back(metrics[0] / metrics[1]);
    sgd.step();
  }
  for (auto& p : nn::parameters_of(net)) {
    auto v = p.parameter->value.to_vector();
    outcome.weights.insert(outcome.weights.end(), v.begin(), v.end());
  }
  return outcome;
}

}  // namespace slurmlab::testing::data_parallel
