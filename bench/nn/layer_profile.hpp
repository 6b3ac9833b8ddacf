// The per-layer split of a training step, shared by nn_train_step (CPU) and nn_gpu_train_step:
// forward through every leaf layer in order (Sequentials flattened), the loss, then backward in
// reverse, each call timed on its own over `repeats` steps after 3 warm-up steps; prints one
// JSON line per layer with the medians. `sync` runs before each clock reading (a GPU's
// synchronisation; nothing on the CPU), so each layer's time is its own work, launches included.
// Layer by layer, nothing is folded or run in place: on the CPU, Sequential's step runs a ReLU or
// tanh inside the layer beside it or in place, so its time is less than the sum of these rows.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "slurmlab/nn/layers/layer.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"

namespace slurmlab::nn::bench {

inline void flatten(Layer& layer, std::vector<Layer*>& leaves) {
  if (auto* sequential = dynamic_cast<Sequential*>(&layer)) {
    for (std::size_t i = 0; i < sequential->size(); ++i) flatten((*sequential)[i], leaves);
  } else {
    leaves.push_back(&layer);
  }
}

inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `target` defined: mean squared error against it; otherwise cross-entropy against `labels`.
inline void profile_layers(Sequential& net, const Tensor& x, const Tensor& target, const std::vector<std::int64_t>& labels,
                           int repeats, const std::function<void()>& sync = [] {}) {
  std::vector<Layer*> leaves;
  flatten(net, leaves);
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  std::vector<std::vector<double>> forward(leaves.size()), backward(leaves.size());
  for (int r = 0; r < repeats + 3; ++r) {
    std::vector<Forward> saved;
    Tensor h = x;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      sync();
      const auto start = clock::now();
      saved.push_back(leaves[i]->forward(h, Mode::train));
      sync();
      const auto stop = clock::now();
      h = saved.back().output;
      if (r >= 3) forward[i].push_back(ms(start, stop));
    }
    auto loss = target.defined() ? mse_loss(h, target) : softmax_cross_entropy(h, labels);
    Tensor grad = loss.grad;
    for (std::size_t i = leaves.size(); i-- > 0;) {
      sync();
      const auto start = clock::now();
      grad = leaves[i]->backward(*saved[i].context, grad);
      sync();
      const auto stop = clock::now();
      if (r >= 3) backward[i].push_back(ms(start, stop));
    }
  }
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    std::printf("{\"layer\": %zu, \"describe\": \"%s\", \"forward_ms\": %.3f, \"backward_ms\": %.3f}\n", i,
                leaves[i]->describe().c_str(), median_of(forward[i]), median_of(backward[i]));
  }
}

}  // namespace slurmlab::nn::bench
