// FusedMlp against the generic layers (make_mlp + mse_loss + Adam): same predictions, losses
// and weights after many steps, to float tolerance, for tanh and ReLU, with and without
// sample weights, several inputs and outputs; the weight/moment round trip; bad shapes.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "slurmlab/nn/models/fused_mlp.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"

using namespace slurmlab::nn;

namespace {

struct Case {
  std::int64_t in, hidden, out, rows;
  Activation activation;
  bool weighted;
};

std::vector<float> random_values(std::size_t n, Generator& g, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = scale * g.normal();
  return v;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tolerance, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tolerance) << what << " element " << i;
}

std::vector<float> values_of(Layer& net) {
  std::vector<float> all;
  for (auto& p : parameters_of(net)) {
    const auto v = p.parameter->value.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

void compare_training(const Case& c) {
  Generator init(7), data(11);
  auto reference = make_mlp(c.in, c.hidden, c.out, c.activation, init);
  AdamOptions adam;
  adam.learning_rate = 0.01;
  Adam optimizer(parameters_of(*reference), adam);
  FusedMlp fused(c.in, c.hidden, c.out, c.activation, adam);
  fused.load_from(*reference);

  const auto x = random_values(static_cast<std::size_t>(c.rows * c.in), data, 1.0f);
  const auto t = random_values(static_cast<std::size_t>(c.rows * c.out), data, 1.0f);
  std::vector<float> w;
  if (c.weighted)
    for (std::int64_t r = 0; r < c.rows; ++r) w.push_back(0.2f + data.uniform(0.0f, 2.0f));
  const auto input = Tensor::from({c.rows, c.in}, x);
  const auto target = Tensor::from({c.rows, c.out}, t);

  for (int step = 0; step < 50; ++step) {
    zero_grad(*reference);
    auto forward = reference->forward(input, Mode::train);
    const auto loss = mse_loss(forward.output, target, w);
    reference->backward(*forward.context, loss.grad);
    optimizer.step();
    const double fused_loss = fused.train_step(x, t, w);
    EXPECT_NEAR(fused_loss, loss.loss, 1e-5 * (1.0 + loss.loss)) << "step " << step;
  }
  // Weights after 50 Adam steps agree to float tolerance.
  auto copy = make_mlp(c.in, c.hidden, c.out, c.activation, init);
  Adam copy_optimizer(parameters_of(*copy), adam);
  fused.store_to(*copy, &copy_optimizer);
  expect_close(values_of(*copy), values_of(*reference), 2e-4f, "weights");
  EXPECT_EQ(copy_optimizer.steps_taken(), optimizer.steps_taken());

  // Predictions and the evaluation loss.
  std::vector<float> predicted(static_cast<std::size_t>(c.rows * c.out));
  fused.predict(x, predicted);
  const auto eval = reference->forward(input, Mode::eval);
  expect_close(predicted, eval.output.to_vector(), 2e-4f, "predictions");
  EXPECT_NEAR(fused.loss(x, t, w), mse_loss(eval.output, target, w).loss, 1e-4);
}

}  // namespace

TEST(FusedMlp, MatchesGenericLayersTanhOneFeature) {
  compare_training({1, 16, 1, 300, Activation::tanh, false});
}
TEST(FusedMlp, MatchesGenericLayersTanhWeighted) {
  compare_training({1, 16, 1, 300, Activation::tanh, true});
}
TEST(FusedMlp, MatchesGenericLayersReluOneFeature) {
  compare_training({1, 20, 1, 270, Activation::relu, false});
}
TEST(FusedMlp, MatchesGenericLayersReluSeveralFeatures) {
  compare_training({5, 13, 1, 600, Activation::relu, true});
}  // 3 blocks of 256 rows
TEST(FusedMlp, MatchesGenericLayersSeveralOutputs) {
  compare_training({3, 9, 2, 517, Activation::tanh, false});
}

// A copy (fit-regression keeps the best epoch's network so) has the weights, Adam's moments and
// step count but not the step's scratch, which it sizes on first use: it predicts and trains as
// the original does, bit for bit, on one thread and on two, and copying into a network of other
// sizes gives that network the copy's sizes.
TEST(FusedMlp, ACopyTrainsAndPredictsAsTheOriginal) {
  Generator init(5), data(6);
  auto net = make_mlp(1, 96, 1, Activation::tanh, init);
  const auto x = random_values(700, data, 1.0f), t = random_values(700, data, 1.0f);
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(std::to_string(threads) + " thread(s)");
    FusedMlp original(1, 96, 1, Activation::tanh);
    original.load_from(*net);
    original.set_threads(threads);
    for (int i = 0; i < 3; ++i) original.train_step(x, t);
    FusedMlp copy = original;
    FusedMlp assigned(1, 3, 1, Activation::relu);
    assigned = original;
    EXPECT_EQ(assigned.hidden(), 96);
    EXPECT_EQ(original.threads_for(700), threads);  // 700 x 96 rows x hidden: two threads split a step
    std::vector<float> expected(700), got(700), got_assigned(700);
    original.predict(x, expected);
    copy.predict(x, got);
    assigned.predict(x, got_assigned);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(got_assigned, expected);
    for (int i = 0; i < 3; ++i) {
      const double step = original.train_step(x, t);
      EXPECT_EQ(copy.train_step(x, t), step);
      EXPECT_EQ(assigned.train_step(x, t), step);
    }
    EXPECT_EQ(copy.steps_taken(), 6);
  }
}

TEST(FusedMlp, OptimizerStateRoundTripsThroughAdam) {
  Generator init(3);
  auto net = make_mlp(2, 5, 1, Activation::tanh, init);
  Adam optimizer(parameters_of(*net), {});
  FusedMlp a(2, 5, 1, Activation::tanh);
  a.load_from(*net);
  const std::vector<float> x{0.1f, -0.3f, 0.7f, 1.2f, -0.5f, 0.2f}, t{0.5f, -0.1f, 0.9f};
  for (int i = 0; i < 5; ++i) a.train_step(x, t);
  a.store_to(*net, &optimizer);
  FusedMlp b(2, 5, 1, Activation::tanh);
  b.load_from(*net, &optimizer);
  // Same state: the next steps are identical bit for bit.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.train_step(x, t), b.train_step(x, t));
  EXPECT_EQ(a.steps_taken(), 10);
}

TEST(FusedMlp, RefusesBadShapesAndActivations) {
  EXPECT_THROW(FusedMlp(1, 4, 1, Activation::gelu), std::invalid_argument);
  EXPECT_THROW(FusedMlp(0, 4, 1, Activation::tanh), std::invalid_argument);
  FusedMlp net(2, 4, 1, Activation::tanh);
  const std::vector<float> x{1, 2, 3}, t{1};
  EXPECT_THROW(net.train_step(x, t), std::invalid_argument);
  const std::vector<float> x2{1, 2}, w{1, 1};
  EXPECT_THROW(net.train_step(x2, t, w), std::invalid_argument);
  Generator init(1);
  auto wrong = make_mlp(3, 4, 1, Activation::tanh, init);
  EXPECT_THROW(net.load_from(*wrong), std::invalid_argument);
}

TEST(FusedMlp, TwoCoresAgreeWithOneAndRepeatBitForBit) {
  // 1400 rows (the benchmark size) split over two threads: the same training to
  // float tolerance as one thread, and identical from run to run at a fixed thread count.
  Generator data(3);
  const auto x = random_values(1400, data, 1.0f);
  const auto t = random_values(1400, data, 1.0f);
  auto train = [&](int threads) {
    Generator init(5);
    auto mlp = make_mlp(1, 64, 1, Activation::tanh, init);
    FusedMlp fused(1, 64, 1, Activation::tanh, {.learning_rate = 1e-2});
    fused.set_threads(threads);
    EXPECT_EQ(fused.threads_for(1400), threads);  // 1400 x 64 is above the split threshold
    fused.load_from(*mlp);
    std::vector<double> losses;
    for (int step = 0; step < 30; ++step) losses.push_back(fused.train_step(x, t));
    return losses;
  };
  const auto one = train(1);
  const auto two = train(2);
  const auto again = train(2);
  ASSERT_EQ(one.size(), two.size());
  for (std::size_t i = 0; i < one.size(); ++i)
    EXPECT_NEAR(two[i], one[i], 1e-5 * std::max(1.0, std::fabs(one[i]))) << i;
  EXPECT_EQ(two, again);
  EXPECT_LT(two.back(), two.front());  // it trains
  // Inside a caller's parallel region OpenMP gives the step a team of one: it still does
  // both halves (the same numbers as two threads), not half the rows.
  const int saved_levels = omp_get_max_active_levels();
  omp_set_max_active_levels(1);
  std::vector<double> nested;
#pragma omp parallel num_threads(2)
  {
    if (omp_get_thread_num() == 0) nested = train(2);
  }
  omp_set_max_active_levels(saved_levels);
  EXPECT_EQ(nested, two);
}

TEST(FusedMlp, OneThreadUnlessTheCallerOwnsTwoAndTheStepIsBigEnough) {
  // OpenMP's default (every core) is not asked: on a shared machine a step that waits for a
  // descheduled second thread is ten times slower than one thread (docs/benchmarks.md).
  FusedMlp net(1, 16, 1, Activation::tanh);
  EXPECT_EQ(net.threads(), 1);
  EXPECT_EQ(net.threads_for(100000), 1);
  net.set_threads(8);
  EXPECT_EQ(net.threads(), 2);  // a step splits in two at most
  EXPECT_EQ(net.threads_for(FusedMlp::kSplitWork / 16 + 1), 2);
  EXPECT_EQ(net.threads_for(FusedMlp::kSplitWork / 16 - 1), 1);  // too little work to repay the wake-up
  EXPECT_EQ(net.threads_for(300), 1);                            // under two blocks of rows
  EXPECT_THROW(net.set_threads(0), std::invalid_argument);
}
