// Losses, optimizers, schedules and clipping against closed forms and hand-computed steps.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "nn_test_support.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "slurmlab/nn/optim/schedules.hpp"
#include "slurmlab/nn/tensor/random.hpp"

extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS, which nn links

namespace slurmlab::nn {
namespace {

TEST(Losses, MseValueAndGradient) {
  Tensor p = Tensor::from({2, 2}, {1, 2, 3, 4});
  Tensor t = Tensor::from({2, 2}, {0, 2, 5, 3});
  auto r = mse_loss(p, t);
  EXPECT_DOUBLE_EQ(r.loss, (1.0 + 0.0 + 4.0 + 1.0) / 4.0);
  EXPECT_EQ(r.grad.to_vector(), (std::vector<float>{0.5f, 0.0f, -1.0f, 0.5f}));  // 2 (p - t) / 4
}

TEST(Losses, WeightedMseIsWeightedMeanAndReducesToPlain) {
  Tensor p = Tensor::from({3, 1}, {1, 2, 3});
  Tensor t = Tensor::from({3, 1}, {0, 0, 0});
  const std::vector<float> w{1.0f, 2.0f, 0.5f};
  auto r = mse_loss(p, t, w);
  EXPECT_NEAR(r.loss, (1.0 * 1 + 2.0 * 4 + 0.5 * 9) / 3.5, 1e-12);
  EXPECT_NEAR(r.grad.at({1, 0}), 2 * 2.0 * 2 / 3.5, 1e-6);
  const std::vector<float> ones{1, 1, 1};
  EXPECT_DOUBLE_EQ(mse_loss(p, t, ones).loss, mse_loss(p, t).loss);
  EXPECT_THROW(mse_loss(p, t, std::vector<float>{1, 2}), std::invalid_argument);
}

TEST(Losses, CrossEntropyMatchesLogSoftmaxAndIsStable) {
  Tensor z = Tensor::from({2, 3}, {1.0f, 2.0f, 0.5f, 1000.0f, 1001.0f, 999.0f});
  const std::vector<std::int64_t> labels{2, 0};
  auto r = softmax_cross_entropy(z, labels);
  auto nll = [](double a, double b, double c, double pick) {
    const double m = std::max({a, b, c});
    return std::log(std::exp(a - m) + std::exp(b - m) + std::exp(c - m)) + m - pick;
  };
  const double expected = (nll(1, 2, 0.5, 0.5) + nll(1000, 1001, 999, 1000)) / 2;
  ASSERT_TRUE(std::isfinite(r.loss));
  EXPECT_NEAR(r.loss, expected, 1e-9);
  // Gradient: (softmax - one_hot) / N; rows sum to zero.
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(r.grad.at({i, 0}) + r.grad.at({i, 1}) + r.grad.at({i, 2}), 0.0, 1e-7);
  const double s = std::exp(1.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  EXPECT_NEAR(r.grad.at({0, 0}), s / 2, 1e-7);
  // Finite differences of the loss.
  Generator g(3);
  Tensor logits = testing::random_tensor({4, 5}, g, -3, 3);
  const std::vector<std::int64_t> y{0, 4, 2, 2};
  auto base = softmax_cross_entropy(logits, y);
  for (int k = 0; k < 20; ++k) {
    float& v = logits.data()[k];
    const float saved = v;
    v = saved + 1e-2f;
    const double up = softmax_cross_entropy(logits, y).loss;
    v = saved - 1e-2f;
    const double down = softmax_cross_entropy(logits, y).loss;
    v = saved;
    EXPECT_NEAR((up - down) / 2e-2, base.grad.data()[k], 1e-4);
  }
  EXPECT_THROW(softmax_cross_entropy(z, std::vector<std::int64_t>{3, 0}), std::invalid_argument);
}

TEST(Losses, LabelSmoothingIsCrossEntropyAgainstTheSmoothedTarget) {
  // Closed form: -sum_j q_j log softmax_j with q = (1 - eps) onehot + eps / C.
  Generator g(5);
  Tensor logits = testing::random_tensor({3, 4}, g, -2, 2);
  const std::vector<std::int64_t> y{1, 3, 0};
  const double eps = 0.2;
  double expected = 0.0;
  for (int i = 0; i < 3; ++i) {
    double total = 0.0;
    for (int j = 0; j < 4; ++j) total += std::exp(static_cast<double>(logits.at({i, j})));
    for (int j = 0; j < 4; ++j) {
      const double q = (j == y[static_cast<std::size_t>(i)] ? 1.0 - eps : 0.0) + eps / 4.0;
      expected -= q * (logits.at({i, j}) - std::log(total));
    }
  }
  auto r = softmax_cross_entropy(logits, y, eps);
  EXPECT_NEAR(r.loss, expected / 3.0, 1e-9);
  EXPECT_NE(r.loss, softmax_cross_entropy(logits, y).loss);
  for (int k = 0; k < 12; ++k) {  // finite differences of the smoothed loss
    float& v = logits.data()[k];
    const float saved = v;
    v = saved + 1e-2f;
    const double up = softmax_cross_entropy(logits, y, eps).loss;
    v = saved - 1e-2f;
    const double down = softmax_cross_entropy(logits, y, eps).loss;
    v = saved;
    EXPECT_NEAR((up - down) / 2e-2, r.grad.data()[k], 1e-4);
  }
  EXPECT_THROW(softmax_cross_entropy(logits, y, 1.0), std::invalid_argument);
  EXPECT_THROW(softmax_cross_entropy(logits, y, -0.1), std::invalid_argument);
}

TEST(Losses, PendingCrossEntropyOnTheCpuIsReadyWithTheLossSumAndTheCorrectCount) {
  Generator g(11);
  const Tensor logits = testing::random_tensor({6, 4}, g, -2, 2);
  const std::vector<std::int64_t> y{0, 3, 1, 1, 2, 0};
  const auto eager = softmax_cross_entropy(logits, y, 0.1);
  const auto pending = softmax_cross_entropy_pending(logits, y, {}, 0.1);
  ASSERT_TRUE(pending.sums->ready());
  const auto values = pending.sums->wait();
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0], eager.loss * 6.0);  // the sum, bit for bit what a trainer computed before
  EXPECT_EQ(values[1], static_cast<double>(correct_predictions(logits, y)));
  EXPECT_EQ(pending.grad.to_vector(), eager.grad.to_vector());
  // Labels given on the device must be the logits' device and as many as the host labels.
  DeviceLabels on_cpu(6, Device::cpu);
  std::copy(y.begin(), y.end(), on_cpu.data());
  EXPECT_EQ(softmax_cross_entropy_pending(logits, y, on_cpu).sums->wait(),
            softmax_cross_entropy_pending(logits, y).sums->wait());
  try {
    (void)softmax_cross_entropy_pending(logits, y, DeviceLabels(5, Device::cpu));
    FAIL() << "5 device labels for 6 rows were accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("5 device labels on cpu for 6 labels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DeviceLabels(0, Device::cpu), std::invalid_argument);
  const std::vector<std::int64_t> out_of_range{0, 9, 1, 1, 2, 0};
  EXPECT_THROW((void)softmax_cross_entropy_pending(logits, out_of_range), std::invalid_argument);
}

TEST(Losses, AccuracyCountsArgmax) {
  Tensor z = Tensor::from({3, 2}, {0.1f, 0.9f, 2.0f, -1.0f, 0.5f, 0.5f});
  const std::vector<std::int64_t> labels{1, 1, 0};
  EXPECT_EQ(correct_predictions(z, labels), 2);  // a tie goes to the lower index
  EXPECT_DOUBLE_EQ(accuracy(z, labels), 2.0 / 3.0);
}

// One scalar parameter with a chosen gradient per step.
struct Scalar {
  Parameter parameter{Shape{1}};
  std::vector<NamedParameter> named() { return {{"x", &parameter}}; }
  void set(float value, float grad) {
    parameter.value.data()[0] = value;
    parameter.grad.data()[0] = grad;
  }
  float value() { return parameter.value.data()[0]; }
};

TEST(Optimizers, SgdMomentumAndWeightDecayByHand) {
  Scalar s;
  s.set(1.0f, 0.5f);
  Sgd sgd(s.named(), {.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  sgd.step();  // d = 0.5 + 0.01 * 1 = 0.51; buffer = 0.51; x = 1 - 0.051
  EXPECT_NEAR(s.value(), 0.949, 1e-6);
  s.parameter.grad.data()[0] = -0.2f;
  sgd.step();  // d = -0.2 + 0.00949; buffer = 0.9*0.51 + d = 0.26849; x = 0.949 - 0.026849
  EXPECT_NEAR(s.value(), 0.949 - 0.1 * (0.9 * 0.51 + (-0.2 + 0.01 * 0.949)), 1e-6);
  Scalar plain;
  plain.set(2.0f, 3.0f);
  Sgd vanilla(plain.named(), {.learning_rate = 0.5});
  vanilla.step();
  EXPECT_FLOAT_EQ(plain.value(), 0.5f);
}

// Parameter::lr_scale is a PyTorch parameter group with lr * s and weight_decay / s: the
// gradient step scales, the decay per step does not. Two parameters, one scaled, by hand.
TEST(Optimizers, SgdLearningRateScaleIsAParameterGroup) {
  Scalar plain, scaled;
  plain.set(1.0f, 0.5f);
  scaled.set(1.0f, 0.5f);
  scaled.parameter.lr_scale = 4.0f;
  std::vector<NamedParameter> both{{"plain", &plain.parameter}, {"scaled", &scaled.parameter}};
  Sgd sgd(both, {.learning_rate = 0.1, .momentum = 0.5, .weight_decay = 0.01, .nesterov = true});
  sgd.step();
  // plain: d = 0.5 + 0.01 = 0.51, buffer 0.51, nesterov d + 0.5 * 0.51 = 0.765; x = 1 - 0.0765
  EXPECT_NEAR(plain.value(), 1.0 - 0.1 * 0.765, 1e-6);
  // scaled: lr 0.4, decay 0.0025: d = 0.5025, nesterov 1.5 * 0.5025; x = 1 - 0.4 * 0.75375
  EXPECT_NEAR(scaled.value(), 1.0 - 0.4 * 1.5 * 0.5025, 1e-6);
  // With a zero gradient the decay per step is lr * weight_decay * x for both: the same.
  Scalar p2, s2;
  p2.set(2.0f, 0.0f);
  s2.set(2.0f, 0.0f);
  s2.parameter.lr_scale = 64.0f;
  Sgd decay_only({{"p", &p2.parameter}, {"s", &s2.parameter}}, {.learning_rate = 0.1, .weight_decay = 0.01});
  decay_only.step();
  EXPECT_NEAR(p2.value(), 2.0 - 0.1 * 0.01 * 2.0, 1e-6);
  EXPECT_NEAR(s2.value(), p2.value(), 1e-6);
}

// A parameter frozen after the optimizer was made is skipped from then on (gradient, decay and
// momentum alike), as PyTorch skips a tensor whose grad is None; the others step as before.
TEST(Optimizers, ParametersFrozenLaterAreSkipped) {
  for (const bool adam : {false, true}) {
    Scalar kept, stopped;
    kept.set(1.0f, 0.5f);
    stopped.set(1.0f, 0.5f);
    std::vector<NamedParameter> both{{"kept", &kept.parameter}, {"stopped", &stopped.parameter}};
    std::unique_ptr<Optimizer> optimizer;
    if (adam) optimizer = std::make_unique<Adam>(both, AdamOptions{.learning_rate = 0.1, .weight_decay = 0.01});
    else optimizer = std::make_unique<Sgd>(both, SgdOptions{.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01});
    optimizer->step();
    EXPECT_EQ(kept.value(), stopped.value());
    const float before = stopped.value();
    stopped.parameter.frozen = true;
    optimizer->step();
    EXPECT_EQ(stopped.value(), before) << (adam ? "Adam" : "SGD");
    EXPECT_LT(kept.value(), before) << (adam ? "Adam" : "SGD");
  }
}

TEST(Optimizers, BadLearningRateScalesAreRefusedWithTheParameterName) {
  Scalar s;
  s.set(1.0f, 0.5f);
  s.parameter.lr_scale = 0.0f;
  try {
    Sgd sgd(s.named(), {.learning_rate = 0.1});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("must be positive"), std::string::npos) << e.what();
  }
  s.parameter.lr_scale = 2.0f;
  try {
    Adam adam(s.named(), {});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("use SGD"), std::string::npos) << e.what();
  }
}

TEST(Optimizers, AdamMatchesTheClosedFormSteps) {
  Scalar s;
  s.set(1.0f, 0.0f);
  Adam adam(s.named(), {.learning_rate = 0.01});
  const double grads[3] = {0.3, -0.1, 0.2};
  double x = 1.0, m = 0.0, v = 0.0;
  for (int t = 1; t <= 3; ++t) {
    s.parameter.grad.data()[0] = static_cast<float>(grads[t - 1]);
    adam.step();
    m = 0.9 * m + 0.1 * grads[t - 1];
    v = 0.999 * v + 0.001 * grads[t - 1] * grads[t - 1];
    const double m_hat = m / (1 - std::pow(0.9, t)), v_hat = v / (1 - std::pow(0.999, t));
    x -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
    EXPECT_NEAR(s.value(), x, 1e-6) << "step " << t;
  }
  EXPECT_EQ(adam.steps_taken(), 3);
  // The first step moves by lr * sign(g) whatever the gradient's scale.
  Scalar big;
  big.set(1.0f, -1000.0f);
  Adam fresh(big.named(), {.learning_rate = 0.01});
  fresh.step();
  EXPECT_NEAR(big.value(), 1.01, 1e-6);
}

// The vectorized, threaded update on a tensor large enough to be split (2^17 + 3 elements: a
// tail after the SIMD width): the same bits on 1 and 2 threads, and the plain formula per
// element (4 ulps: a target with FMA may contract either side differently).
TEST(Optimizers, AdamIsTheSameOnOneAndTwoThreadsAndFollowsTheFormulaPerElement) {
  const std::int64_t n = (1 << 17) + 3;
  Generator g(11);
  Tensor start(Shape{n}), grads(Shape{n});
  for (auto& x : start.span()) x = g.uniform(-1.0f, 1.0f);
  for (auto& x : grads.span()) x = g.uniform(-0.1f, 0.1f);
  for (int variant = 0; variant < 3; ++variant) {  // plain, L2 (coupled), AdamW (decoupled)
    const AdamOptions options{.learning_rate = 0.01, .weight_decay = variant == 0 ? 0.0 : 0.1,
                              .decoupled_weight_decay = variant == 2};
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2}) {
      openblas_set_num_threads(threads);
      Parameter p(Shape{n});
      std::copy(start.span().begin(), start.span().end(), p.value.span().begin());
      Adam adam({{"p", &p}}, options);
      for (int step = 0; step < 2; ++step) {
        std::copy(grads.span().begin(), grads.span().end(), p.grad.span().begin());
        adam.step();
      }
      results.push_back(p.value.to_vector());
    }
    openblas_set_num_threads(1);
    EXPECT_EQ(results[0], results[1]) << "variant " << variant;
    // Two steps of the formula, element by element, in float as the optimizer computes.
    const float b1 = 0.9f, b2 = 0.999f, lr = 0.01f, wd = static_cast<float>(options.weight_decay);
    for (std::int64_t k = 0; k < n; k += 997) {
      float w = start.data()[k], m = 0.0f, v = 0.0f;
      for (int t = 1; t <= 2; ++t) {
        float gk = grads.data()[k];
        if (variant == 2) w *= 1.0f - lr * wd;
        if (variant == 1) gk += wd * w;
        m = m * b1 + (1.0f - b1) * gk;
        v = v * b2 + (1.0f - b2) * gk * gk;
        const auto step_size = static_cast<float>(0.01 / (1.0 - std::pow(0.9, t)));
        const auto bc2 = static_cast<float>(std::sqrt(1.0 - std::pow(0.999, t)));
        w -= step_size * (m / (std::sqrt(v) / bc2 + 1e-8f));
      }
      EXPECT_FLOAT_EQ(results[0][static_cast<std::size_t>(k)], w) << "variant " << variant << " element " << k;
    }
  }
}

// step_and_zero_grad (the trainer's call) is step() then zero_grad(), bit for bit, for every
// optimizer and weight-decay variant, on a tensor split over two threads and a small one, and
// with a parameter frozen after the optimizer was made (not updated, its gradient cleared).
TEST(Optimizers, StepAndZeroGradIsStepThenZeroGrad) {
  const std::int64_t n = (1 << 17) + 3;
  Generator g(5);
  Tensor start(Shape{n}), grads(Shape{n});
  for (auto& x : start.span()) x = g.uniform(-1.0f, 1.0f);
  for (auto& x : grads.span()) x = g.uniform(-0.1f, 0.1f);
  openblas_set_num_threads(2);
  for (int variant = 0; variant < 4; ++variant) {  // Adam, Adam + L2, AdamW, SGD with momentum
    std::vector<std::vector<float>> values, states;
    for (const bool fused : {false, true}) {
      Parameter big(Shape{n}), small(Shape{7}), frozen(Shape{5});
      std::copy(start.span().begin(), start.span().end(), big.value.span().begin());
      std::copy(start.span().begin(), start.span().begin() + 7, small.value.span().begin());
      std::vector<NamedParameter> named{{"big", &big}, {"small", &small}, {"frozen", &frozen}};
      std::unique_ptr<Optimizer> optimizer;
      if (variant < 3) {
        optimizer = std::make_unique<Adam>(named, AdamOptions{.learning_rate = 0.01, .weight_decay = variant == 0 ? 0.0 : 0.1,
                                                              .decoupled_weight_decay = variant == 2});
      } else {
        optimizer = std::make_unique<Sgd>(named, SgdOptions{.learning_rate = 0.01, .momentum = 0.9});
      }
      frozen.frozen = true;
      for (int step = 0; step < 3; ++step) {
        std::copy(grads.span().begin(), grads.span().end(), big.grad.span().begin());
        std::copy(grads.span().begin(), grads.span().begin() + 7, small.grad.span().begin());
        frozen.grad.fill(1.0f);
        if (fused) {
          optimizer->step_and_zero_grad();
        } else {
          optimizer->step();
          optimizer->zero_grad();
        }
        for (Parameter* p : {&big, &small, &frozen}) {
          for (float x : p->grad.span()) ASSERT_EQ(x, 0.0f) << "variant " << variant << (fused ? ", fused" : "");
        }
      }
      values.push_back(big.value.to_vector());
      values.back().insert(values.back().end(), small.value.span().begin(), small.value.span().end());
      EXPECT_EQ(frozen.value.to_vector(), std::vector<float>(5, 0.0f));
      std::vector<float> state;
      optimizer->visit_state([&](const std::string&, Tensor& t) {
        const auto v = t.to_vector();
        state.insert(state.end(), v.begin(), v.end());
      });
      states.push_back(state);
    }
    EXPECT_EQ(values[0], values[1]) << "variant " << variant;
    EXPECT_EQ(states[0], states[1]) << "variant " << variant;
    EXPECT_NE(values[0][0], start.data()[0]) << "variant " << variant;  // it did step
  }
  openblas_set_num_threads(1);
}

TEST(Optimizers, AdamWDecaysDecoupledAdamAddsL2) {
  Scalar a, b;
  a.set(2.0f, 0.0f);
  b.set(2.0f, 0.0f);
  auto adamw = make_adamw(a.named(), 0.1, 0.5);
  Adam adam_l2(b.named(), {.learning_rate = 0.1, .weight_decay = 0.5});
  adamw->step();
  adam_l2.step();
  // AdamW: x = 2 * (1 - 0.05) = 1.9, then a zero gradient moves nothing.
  EXPECT_NEAR(a.value(), 1.9, 1e-6);
  // Adam with L2: gradient 0.5 * 2 = 1, first step moves by lr.
  EXPECT_NEAR(b.value(), 1.9, 1e-6);
  a.set(1.0f, 1.0f);
  adamw->step();
  EXPECT_LT(a.value(), 1.0f * (1 - 0.05f));
}

TEST(Schedules, StepCosineWarmup) {
  StepSchedule step(0.1, 10, 0.5);
  EXPECT_DOUBLE_EQ(step.at(0), 0.1);
  EXPECT_DOUBLE_EQ(step.at(9), 0.1);
  EXPECT_DOUBLE_EQ(step.at(10), 0.05);
  EXPECT_DOUBLE_EQ(step.at(25), 0.025);
  CosineSchedule cosine(1.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(cosine.at(0), 1.0);
  EXPECT_NEAR(cosine.at(50), 0.55, 1e-12);
  EXPECT_NEAR(cosine.at(25), 0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(cosine.at(100), 0.1);
  EXPECT_DOUBLE_EQ(cosine.at(500), 0.1);
  WarmupSchedule warm(4, std::make_unique<CosineSchedule>(1.0, 10));
  EXPECT_DOUBLE_EQ(warm.at(0), 0.25);
  EXPECT_DOUBLE_EQ(warm.at(3), 1.0);
  EXPECT_DOUBLE_EQ(warm.at(4), 1.0);
  EXPECT_NEAR(warm.at(9), 0.5, 1e-12);
}

// airbench94's get_lr: 100 steps, peak at int(0.23 * 100) = 23.
TEST(Schedules, TriangleIsAirbenchsWarmupAndWarmdown) {
  TriangleSchedule triangle(2.0, 100, 0.23, 0.2, 0.07);
  EXPECT_DOUBLE_EQ(triangle.at(0), 2.0 * 0.2);
  EXPECT_NEAR(triangle.at(10), 2.0 * (0.2 * (1 - 10.0 / 23) + 10.0 / 23), 1e-12);
  EXPECT_DOUBLE_EQ(triangle.at(23), 2.0);
  EXPECT_NEAR(triangle.at(60), 2.0 * ((1 - 37.0 / 77) + 0.07 * 37.0 / 77), 1e-12);
  EXPECT_NEAR(triangle.at(100), 2.0 * 0.07, 1e-12);
  EXPECT_NEAR(triangle.at(150), 2.0 * 0.07, 1e-12);
  EXPECT_THROW(TriangleSchedule(1.0, 0, 0.2, 0.1, 0.1), std::invalid_argument);
}

TEST(Clipping, GlobalNormScalesEveryGradientTogether) {
  Parameter a(Shape{2}), b(Shape{1});
  a.grad.data()[0] = 3.0f;
  a.grad.data()[1] = 0.0f;
  b.grad.data()[0] = 4.0f;
  std::vector<NamedParameter> params{{"a", &a}, {"b", &b}};
  EXPECT_NEAR(clip_gradient_norm(params, 10.0), 5.0, 1e-9);
  EXPECT_FLOAT_EQ(b.grad.data()[0], 4.0f);  // under the limit: untouched
  EXPECT_NEAR(clip_gradient_norm(params, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.grad.data()[0], 0.6, 1e-6);
  EXPECT_NEAR(b.grad.data()[0], 0.8, 1e-6);
}

TEST(Clipping, ScaleAndClampEveryGradientElement) {
  Parameter a(Shape{3}), b(Shape{2});
  const float nan = std::nanf("");
  const std::vector<float> start_a{3.0f, -0.5f, -7.0f}, start_b{nan, 1.5f};
  std::copy(start_a.begin(), start_a.end(), a.grad.data());
  std::copy(start_b.begin(), start_b.end(), b.grad.data());
  std::vector<NamedParameter> params{{"a", &a}, {"b", &b}};
  scale_gradients(params, 0.25f);
  EXPECT_EQ(a.grad.to_vector(), (std::vector<float>{0.75f, -0.125f, -1.75f}));
  EXPECT_TRUE(std::isnan(b.grad.data()[0]));
  EXPECT_EQ(b.grad.data()[1], 0.375f);
  clamp_gradients(params, 1.0f);
  EXPECT_EQ(a.grad.to_vector(), (std::vector<float>{0.75f, -0.125f, -1.0f}));
  EXPECT_TRUE(std::isnan(b.grad.data()[0]));  // as std::clamp and PyTorch's clamp
  EXPECT_EQ(b.grad.data()[1], 0.375f);
  EXPECT_THROW(clamp_gradients(params, 0.0f), std::invalid_argument);
}

TEST(Training, AdamFitsALineWithAnMlp) {
  // End to end: a 1-16-1 tanh MLP fits y = 2x - 1 on [-1, 1] to a small error.
  Generator g(5);
  Sequential mlp;
  mlp.add(std::make_unique<Linear>(1, 16, g)).add(tanh_layer()).add(std::make_unique<Linear>(16, 1, g));
  Tensor x({64, 1}), y({64, 1});
  for (int i = 0; i < 64; ++i) {
    x.data()[i] = -1.0f + 2.0f * static_cast<float>(i) / 63.0f;
    y.data()[i] = 2.0f * x.data()[i] - 1.0f;
  }
  Adam adam(parameters_of(mlp), {.learning_rate = 0.02});
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    adam.zero_grad();
    auto f = mlp.forward(x, Mode::train);
    auto loss = mse_loss(f.output, y);
    if (step == 0) first = loss.loss;
    last = loss.loss;
    mlp.backward(*f.context, loss.grad);
    adam.step();
  }
  EXPECT_LT(last, 1e-3);
  EXPECT_LT(last, first / 100);
}

}  // namespace
}  // namespace slurmlab::nn
