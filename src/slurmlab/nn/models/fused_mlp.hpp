#pragma once
// FusedMlp: Linear(in, hidden) - tanh|ReLU - Linear(hidden, out) trained with weighted MSE
// and Adam in one pass over the rows, for networks so small (fit-regression's 1 -> 16 -> 1)
// that the generic layers' per-call tensors, contexts and separate loops cost more than the
// arithmetic. It walks the rows in L1-sized blocks, forward, loss and backward per block with
// every loop running over contiguous rows (vectorized, AVX2 clone on x86-64), then one Adam
// update.
//
// It is the same network as make_mlp(in, hidden, out, activation) with nn::mse_loss and
// nn::Adam (PyTorch's update rule, same float32 operation order); tests compare them step by
// step to float tolerance. Weights and Adam moments go to and from those objects by their
// PyTorch names (0.weight, 0.bias, 2.weight, 2.bias), so nn::save_checkpoint writes it.
#include <cstdint>
#include <span>
#include <vector>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/optim/optim.hpp"

namespace slurmlab::nn {

class FusedMlp {
 public:
  // Only relu and tanh (throws std::invalid_argument otherwise). Weights start at zero:
  // copy them from a make_mlp network with load_from.
  FusedMlp(std::int64_t in, std::int64_t hidden, std::int64_t out, Activation activation, AdamOptions adam = {});

  std::int64_t in() const { return in_; }
  std::int64_t hidden() const { return hidden_; }
  std::int64_t out() const { return out_; }

  // Weights (and, with an optimizer, Adam's moments and step count) from / to a make_mlp
  // network of the same sizes and an nn::Adam over its parameters.
  void load_from(Layer& mlp, Adam* optimizer = nullptr);
  void store_to(Layer& mlp, Adam* optimizer = nullptr) const;

  // x: rows x in (row-major), predictions: rows x out.
  void predict(std::span<const float> x, std::span<float> predictions) const;
  // Weighted MSE as nn::mse_loss computes it (empty weights: plain MSE), without training.
  double loss(std::span<const float> x, std::span<const float> target, std::span<const float> weights = {}) const;
  // One optimizer step on this batch; returns the batch loss before the update.
  double train_step(std::span<const float> x, std::span<const float> target, std::span<const float> weights = {});

  // Threads a training step may use (1 or 2; more count as 2). Default 1: the caller says
  // how many cores it owns (fit-regression: --threads, from SLURM_CPUS_PER_TASK), since
  // OpenMP's own default (every core of the machine) makes a step wait for a descheduled
  // thread whenever other processes share the cores.
  void set_threads(int threads);
  int threads() const { return threads_; }
  // The threads a step over `rows` rows uses: 2 only with set_threads(2) and enough work per
  // step (rows x hidden at least kSplitWork, measured) to repay waking the second thread.
  int threads_for(std::int64_t rows) const;
  static constexpr std::int64_t kSplitWork = 64 * 1024;

  std::int64_t steps_taken() const { return steps_; }
  double learning_rate() const { return adam_.learning_rate; }
  void set_learning_rate(double rate) { adam_.learning_rate = rate; }

 private:
  void check_batch(std::size_t x_size, std::size_t target_size, std::size_t weight_size) const;
  void adam_update(std::vector<float>& value, const std::vector<float>& grad, std::vector<float>& m,
                   std::vector<float>& v, float step_size, float bias_correction2_sqrt) const;

  std::int64_t in_, hidden_, out_;
  Activation activation_;
  AdamOptions adam_;
  std::int64_t steps_ = 0;
  int threads_ = 1;
  // w1t_ is the first weight transposed ([in][hidden]) so per-row loops run over hidden.
  std::vector<float> w1t_, b1_, w2_, b2_;
  std::vector<float> g_w1t_, g_b1_, g_w2_, g_b2_;
  std::vector<float> m_w1t_, m_b1_, m_w2_, m_b2_, v_w1t_, v_b1_, v_w2_, v_b2_;
  // The second core's gradients and scratch when a step splits its rows in two (zeroed by
  // resize every step).
  struct HalfStep {
    std::vector<float> g_w1t, g_b1, g_w2, g_b2, hidden, grad;
    void resize(std::size_t w1t, std::size_t b1, std::size_t w2, std::size_t b2, std::size_t h, std::size_t gr) {
      g_w1t.assign(w1t, 0.0f);
      g_b1.assign(b1, 0.0f);
      g_w2.assign(w2, 0.0f);
      g_b2.assign(b2, 0.0f);
      hidden.resize(h);
      grad.resize(gr);
    }
  };
  // A step's working memory, not state: a copy of a FusedMlp (fit-regression keeps the best
  // epoch's, copied at every epoch that improves: about 20 KB of scratch each time for its
  // default 16-wide net, twice that with two threads) starts without it; scratch() sizes it.
  struct Scratch {
    std::vector<float> hidden, grad, input;  // activations, gh and the units' sums; y and gy; x by feature
    HalfStep second_half;
    Scratch() = default;
    Scratch(const Scratch&) {}
    Scratch& operator=(const Scratch&) { return *this; }
  };
  Scratch& scratch() const;
  mutable Scratch scratch_;
};

}  // namespace slurmlab::nn
