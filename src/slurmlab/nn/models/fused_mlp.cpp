#include "slurmlab/nn/models/fused_mlp.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "slurmlab/nn/layers/rational_tanh.hpp"
#include "slurmlab/nn/layers/vector_clones.hpp"

namespace slurmlab::nn {

namespace {

// Helpers are inlined into each clone so they get its instruction set.
#if defined(__GNUC__)
#define SLURMLAB_INLINE inline __attribute__((always_inline))
#else
#define SLURMLAB_INLINE inline
#endif

struct Sizes {
  std::int64_t rows, in, hidden, out;
  bool tanh;
};

// Rows are processed in blocks, column by column: for each hidden unit a loop over the
// block's rows, which is contiguous and vectorizes (the generic layers' layout, without their
// tensors, contexts and separate passes). The block's activations stay in L1.
constexpr std::int64_t kBlock = 256;

// sum_i a[i] * b[i] with 16 partial sums, so the loop vectorizes without -ffast-math.
SLURMLAB_INLINE float dot(const float* __restrict a, const float* __restrict b, std::int64_t n) {
  float acc[16] = {};
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int l = 0; l < 16; ++l) sum += acc[l];
  return sum;
}
SLURMLAB_INLINE float total(const float* __restrict a, std::int64_t n) {
  float acc[16] = {};
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l];
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i];
  for (int l = 0; l < 16; ++l) sum += acc[l];
  return sum;
}

// Forward of rows [0, n) of a block: xt is feature-major ([in][n], stride `stride`),
// activations into act ([hidden][kBlock]), outputs into y ([out][kBlock]).
SLURMLAB_INLINE void forward_block(const Sizes& s, std::int64_t n, const float* __restrict xt, std::int64_t stride,
                                   const float* __restrict w1t, const float* __restrict b1, const float* __restrict w2,
                                   const float* __restrict b2, float* __restrict act, float* __restrict y) {
  for (std::int64_t j = 0; j < s.hidden; ++j) {
    float* __restrict a = act + j * kBlock;
    const float bias = b1[j], w0 = w1t[j];
    if (s.tanh && s.in == 1) {  // one pass (explicit AVX2/AVX-512 where the CPU has them)
      detail::tanh_affine_array(xt, w0, bias, a, static_cast<std::size_t>(n));
      continue;
    }
    for (std::int64_t r = 0; r < n; ++r) a[r] = bias + xt[r] * w0;
    for (std::int64_t k = 1; k < s.in; ++k) {
      const float w = w1t[k * s.hidden + j];
      const float* __restrict xk = xt + k * stride;
      for (std::int64_t r = 0; r < n; ++r) a[r] += xk[r] * w;
    }
    if (s.tanh) {
      detail::tanh_array(a, a, static_cast<std::size_t>(n));
    } else {
      for (std::int64_t r = 0; r < n; ++r) a[r] = a[r] > 0.0f ? a[r] : 0.0f;
    }
  }
  // y[o][r] = b2[o] + sum_j act[j][r] w2[o, j], over j in order, 16 rows at a time in registers
  // (one store a row instead of a load and a store per unit).
  for (std::int64_t o = 0; o < s.out; ++o) {
    const float* __restrict wo = w2 + o * s.hidden;
    float* __restrict yo = y + o * kBlock;
    std::int64_t r = 0;
    for (; r + 16 <= n; r += 16) {
      float sum[16];
      for (int l = 0; l < 16; ++l) sum[l] = b2[o];
      for (std::int64_t j = 0; j < s.hidden; ++j)
        for (int l = 0; l < 16; ++l) sum[l] += act[j * kBlock + r + l] * wo[j];
      for (int l = 0; l < 16; ++l) yo[r + l] = sum[l];
    }
    for (; r < n; ++r) {
      float sum = b2[o];
      for (std::int64_t j = 0; j < s.hidden; ++j) sum += act[j * kBlock + r] * wo[j];
      yo[r] = sum;
    }
  }
}

// x row-major [rows][in] -> feature-major [in][rows] (a copy only when in > 1).
const float* feature_major(const Sizes& s, const float* x, std::vector<float>& scratch) {
  if (s.in == 1) return x;
  scratch.resize(static_cast<std::size_t>(s.rows * s.in));
  for (std::int64_t r = 0; r < s.rows; ++r)
    for (std::int64_t k = 0; k < s.in; ++k) scratch[static_cast<std::size_t>(k * s.rows + r)] = x[r * s.in + k];
  return scratch.data();
}

SLURMLAB_VECTOR_CLONES double loss_rows(const Sizes& s, const float* xt, const float* t, const float* weights,
                                        const float* w1t, const float* b1, const float* w2, const float* b2, float* act,
                                        float* y) {
  double sum = 0.0, weight_total = 0.0;
  for (std::int64_t first = 0; first < s.rows; first += kBlock) {
    const auto n = std::min(kBlock, s.rows - first);
    forward_block(s, n, xt + first, s.rows, w1t, b1, w2, b2, act, y);
    for (std::int64_t r = 0; r < n; ++r) {
      const double w = weights ? weights[first + r] : 1.0;
      weight_total += w;
      for (std::int64_t o = 0; o < s.out; ++o) {
        const double d = static_cast<double>(y[o * kBlock + r]) - t[(first + r) * s.out + o];
        sum += w * d * d;
      }
    }
  }
  return sum / (weight_total * static_cast<double>(s.out));
}

SLURMLAB_VECTOR_CLONES void predict_rows(const Sizes& s, const float* xt, const float* w1t, const float* b1,
                                         const float* w2, const float* b2, float* act, float* y, float* out) {
  for (std::int64_t first = 0; first < s.rows; first += kBlock) {
    const auto n = std::min(kBlock, s.rows - first);
    forward_block(s, n, xt + first, s.rows, w1t, b1, w2, b2, act, y);
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t o = 0; o < s.out; ++o) out[(first + r) * s.out + o] = y[o * kBlock + r];
  }
}

using Lanes = float __attribute__((vector_size(32)));

// One hidden unit's three gradient sums (second-layer weight with one output, bias, first
// input's weight) as 16 partial sums each, kept across the blocks of a step and added up once
// at its end (added up per block, their chains of 48 scalar adds were a fifth of the step).
struct UnitSums {
  Lanes w2[2], b1[2], w1[2];
};
constexpr std::size_t kUnitSumFloats = sizeof(UnitSums) / sizeof(float);

// One hidden unit's backward over a block's n rows, in one pass: with gh[r] the gradient at the
// unit's output (given, or with OneOutput go[r] * w, and then go[r] a[r] summed for the second
// layer's weight), d[r] = gh[r] f'(a[r]) is summed for the bias (and stored in gh with StoreGh,
// for the other input features), and d[r] x0[r] for the first input's weight. Vectors of 8
// rows, so that the partial sums stay in registers (as float[16] arrays GCC kept them on the
// stack); rows after the last 16 go into the first partial sums.
template <bool Tanh, bool OneOutput, bool StoreGh>
SLURMLAB_INLINE void unit_backward(const float* __restrict a, const float* __restrict go, float w,
                                   const float* __restrict x0, float* __restrict gh, std::int64_t n, UnitSums& sums) {
  UnitSums local = sums;  // in registers (a reference's arrays GCC kept in memory)
  std::int64_t r = 0;
  for (; r + 16 <= n; r += 16) {
#if defined(__GNUC__)
#pragma GCC unroll 2
#endif
    for (int h = 0; h < 2; ++h) {
      const std::int64_t at = r + 8 * h;
      Lanes ar, xr, g;
      std::memcpy(&ar, a + at, sizeof ar);
      std::memcpy(&xr, x0 + at, sizeof xr);
      if constexpr (OneOutput) {
        Lanes gor;
        std::memcpy(&gor, go + at, sizeof gor);
        g = gor * w;
        local.w2[h] += gor * ar;
      } else {
        std::memcpy(&g, gh + at, sizeof g);
      }
      Lanes d;  // g f'(a)
      if constexpr (Tanh) {
        d = g * (1.0f - ar * ar);
      } else {
        d = ar > 0.0f ? g : Lanes{};
      }
      if constexpr (StoreGh) std::memcpy(gh + at, &d, sizeof d);
      local.b1[h] += d;
      local.w1[h] += d * xr;
    }
  }
  for (; r < n; ++r) {
    const float ar = a[r];
    const float g = OneOutput ? go[r] * w : gh[r];
    if constexpr (OneOutput) local.w2[0][0] += go[r] * ar;
    const float d = Tanh ? g * (1.0f - ar * ar) : (ar > 0.0f ? g : 0.0f);
    if constexpr (StoreGh) gh[r] = d;
    local.b1[0][0] += d;
    local.w1[0][0] += d * x0[r];
  }
  sums = local;
}

// Forward, weighted MSE and backward for rows [begin, end), gradients summed into g_*.
SLURMLAB_VECTOR_CLONES double train_rows(const Sizes& s, const float* __restrict xt, const float* __restrict t,
                                         const float* __restrict weights, double norm, const float* __restrict w1t,
                                         const float* __restrict b1, const float* __restrict w2,
                                         const float* __restrict b2, float* __restrict g_w1t, float* __restrict g_b1,
                                         float* __restrict g_w2, float* __restrict g_b2, float* __restrict act,
                                         float* __restrict y, float* __restrict gy, float* __restrict gh,
                                         float* __restrict unit_sums, std::int64_t begin, std::int64_t end) {
  double sum = 0.0;
  std::fill_n(unit_sums, s.hidden * static_cast<std::int64_t>(kUnitSumFloats), 0.0f);
  for (std::int64_t first = begin; first < end; first += kBlock) {
    const auto n = std::min(kBlock, end - first);
    forward_block(s, n, xt + first, s.rows, w1t, b1, w2, b2, act, y);
    for (std::int64_t o = 0; o < s.out; ++o) {
      for (std::int64_t r = 0; r < n; ++r) {
        const double w = weights ? weights[first + r] : 1.0;
        const double d = static_cast<double>(y[o * kBlock + r]) - t[(first + r) * s.out + o];
        sum += w * d * d;
        gy[o * kBlock + r] = static_cast<float>(2.0 * w * d / norm);  // as nn::mse_loss
      }
      g_b2[o] += total(gy + o * kBlock, n);
    }
    for (std::int64_t j = 0; j < s.hidden; ++j) {
      const float* __restrict a = act + j * kBlock;
      const float* __restrict x0 = xt + first;
      UnitSums u;
      std::memcpy(&u, unit_sums + j * kUnitSumFloats, sizeof u);
      if (s.out == 1) {  // the usual regression: the whole unit in one pass
        if (s.tanh && s.in == 1) {
          unit_backward<true, true, false>(a, gy, w2[j], x0, gh, n, u);
        } else if (s.tanh) {
          unit_backward<true, true, true>(a, gy, w2[j], x0, gh, n, u);
        } else if (s.in == 1) {
          unit_backward<false, true, false>(a, gy, w2[j], x0, gh, n, u);
        } else {
          unit_backward<false, true, true>(a, gy, w2[j], x0, gh, n, u);
        }
      } else {
        for (std::int64_t r = 0; r < n; ++r) gh[r] = 0.0f;
        for (std::int64_t o = 0; o < s.out; ++o) {
          const float* __restrict go = gy + o * kBlock;
          g_w2[o * s.hidden + j] += dot(go, a, n);
          const float w = w2[o * s.hidden + j];
          for (std::int64_t r = 0; r < n; ++r) gh[r] += go[r] * w;
        }
        if (s.tanh) {
          unit_backward<true, false, true>(a, nullptr, 0.0f, x0, gh, n, u);
        } else {
          unit_backward<false, false, true>(a, nullptr, 0.0f, x0, gh, n, u);
        }
      }
      std::memcpy(unit_sums + j * kUnitSumFloats, &u, sizeof u);
      for (std::int64_t k = 1; k < s.in; ++k) g_w1t[k * s.hidden + j] += dot(gh, xt + k * s.rows + first, n);
    }
  }
  for (std::int64_t j = 0; j < s.hidden; ++j) {
    UnitSums u;
    std::memcpy(&u, unit_sums + j * kUnitSumFloats, sizeof u);
    float w2_sum = 0.0f, b1_sum = 0.0f, w1_sum = 0.0f;
    for (int l = 0; l < 16; ++l) {
      w2_sum += u.w2[l / 8][l % 8];
      b1_sum += u.b1[l / 8][l % 8];
      w1_sum += u.w1[l / 8][l % 8];
    }
    if (s.out == 1) g_w2[j] += w2_sum;
    g_b1[j] += b1_sum;
    g_w1t[j] += w1_sum;
  }
  return sum / norm;
}

Parameter& parameter_named(Layer& mlp, const std::string& name) {
  Parameter* found = nullptr;
  for (auto& p : parameters_of(mlp))
    if (p.name == name) found = p.parameter;
  if (!found)
    throw std::invalid_argument("FusedMlp: the network has no parameter '" + name + "' (not a make_mlp network)");
  return *found;
}

void check_size(const Tensor& tensor, std::size_t expected, const std::string& name) {
  if (static_cast<std::size_t>(tensor.numel()) != expected) {
    throw std::invalid_argument("FusedMlp: '" + name + "' has " + std::to_string(tensor.numel()) +
                                " elements, expected " + std::to_string(expected));
  }
}

// Copies a [rows][cols] tensor into [cols][rows] storage and back.
void transpose_into(const float* from, float* to, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) to[c * rows + r] = from[r * cols + c];
}

}  // namespace

FusedMlp::FusedMlp(std::int64_t in, std::int64_t hidden, std::int64_t out, Activation activation, AdamOptions adam)
    : in_(in), hidden_(hidden), out_(out), activation_(activation), adam_(adam) {
  if (in < 1 || hidden < 1 || out < 1) throw std::invalid_argument("FusedMlp: sizes must be at least 1");
  if (activation != Activation::tanh && activation != Activation::relu) {
    throw std::invalid_argument("FusedMlp: only tanh and ReLU are fused; use make_mlp for " + to_string(activation));
  }
  const auto n1 = static_cast<std::size_t>(in * hidden), nh = static_cast<std::size_t>(hidden),
             n2 = static_cast<std::size_t>(out * hidden), no = static_cast<std::size_t>(out);
  for (auto* v : {&w1t_, &g_w1t_, &m_w1t_, &v_w1t_}) v->assign(n1, 0.0f);
  for (auto* v : {&b1_, &g_b1_, &m_b1_, &v_b1_}) v->assign(nh, 0.0f);
  for (auto* v : {&w2_, &g_w2_, &m_w2_, &v_w2_}) v->assign(n2, 0.0f);
  for (auto* v : {&b2_, &g_b2_, &m_b2_, &v_b2_}) v->assign(no, 0.0f);
}

FusedMlp::Scratch& FusedMlp::scratch() const {
  const auto hidden = static_cast<std::size_t>((hidden_ + 1) * kBlock + hidden_ * kUnitSumFloats);
  if (scratch_.hidden.size() != hidden) {
    scratch_.hidden.assign(hidden, 0.0f);
    scratch_.grad.assign(static_cast<std::size_t>(2 * out_ * kBlock), 0.0f);
  }
  return scratch_;
}

void FusedMlp::load_from(Layer& mlp, Adam* optimizer) {
  auto& w1 = parameter_named(mlp, "0.weight");
  auto& b1 = parameter_named(mlp, "0.bias");
  auto& w2 = parameter_named(mlp, "2.weight");
  auto& b2 = parameter_named(mlp, "2.bias");
  check_size(w1.value, w1t_.size(), "0.weight");
  check_size(b1.value, b1_.size(), "0.bias");
  check_size(w2.value, w2_.size(), "2.weight");
  check_size(b2.value, b2_.size(), "2.bias");
  transpose_into(w1.value.data(), w1t_.data(), hidden_, in_);
  std::copy_n(b1.value.data(), b1_.size(), b1_.begin());
  std::copy_n(w2.value.data(), w2_.size(), w2_.begin());
  std::copy_n(b2.value.data(), b2_.size(), b2_.begin());
  if (!optimizer) return;
  optimizer->visit_state([&](const std::string& name, Tensor& state) {
    const bool second = name.ends_with(".exp_avg_sq");
    const auto base = name.substr(0, name.rfind(".exp_avg"));
    if (base == "0.weight") {
      transpose_into(state.data(), (second ? v_w1t_ : m_w1t_).data(), hidden_, in_);
    } else {
      auto& target = base == "0.bias"     ? (second ? v_b1_ : m_b1_)
                     : base == "2.weight" ? (second ? v_w2_ : m_w2_)
                                          : (second ? v_b2_ : m_b2_);
      check_size(state, target.size(), name);
      std::copy_n(state.data(), target.size(), target.begin());
    }
  });
  steps_ = optimizer->steps_taken();
  adam_.learning_rate = optimizer->learning_rate();
}

void FusedMlp::store_to(Layer& mlp, Adam* optimizer) const {
  auto& w1 = parameter_named(mlp, "0.weight");
  auto& b1 = parameter_named(mlp, "0.bias");
  auto& w2 = parameter_named(mlp, "2.weight");
  auto& b2 = parameter_named(mlp, "2.bias");
  check_size(w1.value, w1t_.size(), "0.weight");
  check_size(w2.value, w2_.size(), "2.weight");
  transpose_into(w1t_.data(), w1.value.data(), in_, hidden_);
  std::copy(b1_.begin(), b1_.end(), b1.value.data());
  std::copy(w2_.begin(), w2_.end(), w2.value.data());
  std::copy(b2_.begin(), b2_.end(), b2.value.data());
  if (!optimizer) return;
  optimizer->visit_state([&](const std::string& name, Tensor& state) {
    const bool second = name.ends_with(".exp_avg_sq");
    const auto base = name.substr(0, name.rfind(".exp_avg"));
    if (base == "0.weight") {
      transpose_into((second ? v_w1t_ : m_w1t_).data(), state.data(), in_, hidden_);
    } else {
      const auto& source = base == "0.bias"     ? (second ? v_b1_ : m_b1_)
                           : base == "2.weight" ? (second ? v_w2_ : m_w2_)
                                                : (second ? v_b2_ : m_b2_);
      std::copy(source.begin(), source.end(), state.data());
    }
  });
  optimizer->set_steps_taken(steps_);
  optimizer->set_learning_rate(adam_.learning_rate);
}

void FusedMlp::set_threads(int threads) {
  if (threads < 1) throw std::invalid_argument("FusedMlp: threads must be at least 1");
  threads_ = std::min(threads, 2);
}

int FusedMlp::threads_for(std::int64_t rows) const {
  return threads_ >= 2 && rows >= 2 * kBlock && rows * hidden_ >= kSplitWork ? 2 : 1;
}

void FusedMlp::check_batch(std::size_t x_size, std::size_t target_size, std::size_t weight_size) const {
  if (x_size == 0 || x_size % static_cast<std::size_t>(in_) != 0) {
    throw std::invalid_argument("FusedMlp: " + std::to_string(x_size) + " inputs are not a positive multiple of " +
                                std::to_string(in_) + " features");
  }
  const auto rows = x_size / static_cast<std::size_t>(in_);
  if (target_size != rows * static_cast<std::size_t>(out_)) {
    throw std::invalid_argument("FusedMlp: " + std::to_string(target_size) + " targets for " + std::to_string(rows) +
                                " rows");
  }
  if (weight_size != 0 && weight_size != rows) {
    throw std::invalid_argument("FusedMlp: " + std::to_string(weight_size) + " sample weights for " +
                                std::to_string(rows) + " rows");
  }
}

void FusedMlp::predict(std::span<const float> x, std::span<float> predictions) const {
  check_batch(x.size(), predictions.size(), 0);
  const Sizes s{static_cast<std::int64_t>(x.size()) / in_, in_, hidden_, out_, activation_ == Activation::tanh};
  auto& scratch = this->scratch();
  const float* xt = feature_major(s, x.data(), scratch.input);
  predict_rows(s, xt, w1t_.data(), b1_.data(), w2_.data(), b2_.data(), scratch.hidden.data(), scratch.grad.data(),
               predictions.data());
}

double FusedMlp::loss(std::span<const float> x, std::span<const float> target, std::span<const float> weights) const {
  check_batch(x.size(), target.size(), weights.size());
  const Sizes s{static_cast<std::int64_t>(x.size()) / in_, in_, hidden_, out_, activation_ == Activation::tanh};
  auto& scratch = this->scratch();
  const float* xt = feature_major(s, x.data(), scratch.input);
  return loss_rows(s, xt, target.data(), weights.empty() ? nullptr : weights.data(), w1t_.data(), b1_.data(),
                   w2_.data(), b2_.data(), scratch.hidden.data(), scratch.grad.data());
}

void FusedMlp::adam_update(std::vector<float>& value, const std::vector<float>& grad, std::vector<float>& m,
                           std::vector<float>& v, float step_size, float bias_correction2_sqrt) const {
  // nn::Adam::step's float32 operations in the same order (weight decay as Adam, not AdamW,
  // or decoupled as AdamW).
  const auto b1 = static_cast<float>(adam_.beta1), b2 = static_cast<float>(adam_.beta2);
  const auto eps = static_cast<float>(adam_.eps);
  const auto wd = static_cast<float>(adam_.weight_decay);
  const auto decay_factor = static_cast<float>(1.0 - adam_.learning_rate * adam_.weight_decay);
  for (std::size_t k = 0; k < value.size(); ++k) {
    float g = grad[k];
    if (adam_.decoupled_weight_decay) {
      value[k] *= decay_factor;
    } else if (wd != 0.0f) {
      g += wd * value[k];
    }
    m[k] = m[k] * b1 + (1.0f - b1) * g;
    v[k] = v[k] * b2 + (1.0f - b2) * g * g;
    const float denom = std::sqrt(v[k]) / bias_correction2_sqrt + eps;
    value[k] -= step_size * (m[k] / denom);
  }
}

double FusedMlp::train_step(std::span<const float> x, std::span<const float> target, std::span<const float> weights) {
  check_batch(x.size(), target.size(), weights.size());
  const Sizes s{static_cast<std::int64_t>(x.size()) / in_, in_, hidden_, out_, activation_ == Activation::tanh};
  double weight_total = 0.0;
  if (weights.empty()) {
    weight_total = static_cast<double>(s.rows);
  } else {
    for (float w : weights) weight_total += w;
  }
  if (!(weight_total > 0.0)) throw std::invalid_argument("FusedMlp: sample weights must sum to a positive number");
  const double norm = weight_total * static_cast<double>(out_);
  for (auto* g : {&g_w1t_, &g_b1_, &g_w2_, &g_b2_}) std::fill(g->begin(), g->end(), 0.0f);
  auto& scratch = this->scratch();
  const float* xt = feature_major(s, x.data(), scratch.input);
  const float* w = weights.empty() ? nullptr : weights.data();
  // Two cores take half the rows each when the caller allows two threads and the step has
  // enough work, each into its own gradients and scratch; the halves are added in a fixed
  // order, so a run is reproducible for a given thread count.
  const bool split = threads_for(s.rows) == 2;
  double loss = 0.0;
  if (!split) {
    loss = train_rows(s, xt, target.data(), w, norm, w1t_.data(), b1_.data(), w2_.data(), b2_.data(), g_w1t_.data(),
                      g_b1_.data(), g_w2_.data(), g_b2_.data(), scratch.hidden.data(), scratch.grad.data(),
                      scratch.grad.data() + out_ * kBlock, scratch.hidden.data() + hidden_ * kBlock,
                      scratch.hidden.data() + (hidden_ + 1) * kBlock, 0, s.rows);
  } else {
    auto& other = scratch.second_half;
    other.resize(g_w1t_.size(), g_b1_.size(), g_w2_.size(), g_b2_.size(), scratch.hidden.size(), scratch.grad.size());
    const std::int64_t middle = s.rows / 2;
    double part[2] = {0.0, 0.0};
#pragma omp parallel num_threads(2)
    {
      // A team of one (OMP_DYNAMIC, a thread limit, a caller's parallel region) does both
      // halves in turn, each into its own buffers as two threads would: the same numbers.
      const bool alone = omp_get_num_threads() < 2;
      if (omp_get_thread_num() == 0) {
        part[0] =
            train_rows(s, xt, target.data(), w, norm, w1t_.data(), b1_.data(), w2_.data(), b2_.data(), g_w1t_.data(),
                       g_b1_.data(), g_w2_.data(), g_b2_.data(), scratch.hidden.data(), scratch.grad.data(),
                       scratch.grad.data() + out_ * kBlock, scratch.hidden.data() + hidden_ * kBlock,
                       scratch.hidden.data() + (hidden_ + 1) * kBlock, 0, middle);
      }
      if (omp_get_thread_num() == 1 || alone) {
        part[1] = train_rows(s, xt, target.data(), w, norm, w1t_.data(), b1_.data(), w2_.data(), b2_.data(),
                             other.g_w1t.data(), other.g_b1.data(), other.g_w2.data(), other.g_b2.data(),
                             other.hidden.data(), other.grad.data(), other.grad.data() + out_ * kBlock,
                             other.hidden.data() + hidden_ * kBlock, other.hidden.data() + (hidden_ + 1) * kBlock,
                             middle, s.rows);
      }
    }
    loss = part[0] + part[1];
    auto add = [](std::vector<float>& into, const std::vector<float>& from) {
      for (std::size_t i = 0; i < into.size(); ++i) into[i] += from[i];
    };
    add(g_w1t_, other.g_w1t);
    add(g_b1_, other.g_b1);
    add(g_w2_, other.g_w2);
    add(g_b2_, other.g_b2);
  }
  ++steps_;
  const double bias_correction1 = 1.0 - std::pow(adam_.beta1, static_cast<double>(steps_));
  const double bias_correction2 = 1.0 - std::pow(adam_.beta2, static_cast<double>(steps_));
  const auto step_size = static_cast<float>(adam_.learning_rate / bias_correction1);
  const auto bc2 = static_cast<float>(std::sqrt(bias_correction2));
  adam_update(w1t_, g_w1t_, m_w1t_, v_w1t_, step_size, bc2);
  adam_update(b1_, g_b1_, m_b1_, v_b1_, step_size, bc2);
  adam_update(w2_, g_w2_, m_w2_, v_w2_, step_size, bc2);
  adam_update(b2_, g_b2_, m_b2_, v_b2_, step_size, bc2);
  return loss;
}

}  // namespace slurmlab::nn
