// Every layer: forward against a naive loop reference, finite-difference gradients for the
// input and every parameter, typed over the backend list (nn_test_support.hpp).
#include <cblas.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <cmath>
#include <utility>
#include <vector>

#include "../support/moments.hpp"
#include "nn_test_support.hpp"
#include "slurmlab/core/splitmix64.hpp"
#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/rational_tanh.hpp"
#include "slurmlab/nn/layers/vector_math.hpp"

extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS, which nn links
extern "C" int openblas_thread_timeout(void);

namespace slurmlab::nn {
namespace {

using testing::avoid_zero;
using testing::distinct_tensor;
using testing::expect_close;
using testing::random_tensor;

template <typename B>
class LayerTest : public ::testing::Test {
 protected:
  static constexpr Device device = B::device;
  void SetUp() override { SLURMLAB_SKIP_WITHOUT_DEVICE(device); }
  // Runs forward on the backend and brings the output back to the host; the layer's
  // parameters and buffers visit the backend for the call and return to the host.
  static Tensor run(Layer& layer, const Tensor& host_input, Mode mode = Mode::train) {
    to_device(layer, device);
    Tensor output = layer.forward(host_input.to(device), mode).output.to(Device::cpu);
    to_device(layer, Device::cpu);
    return output;
  }
  static void check_gradients(Layer& layer, Tensor input, Generator& generator,
                              testing::GradientCheckOptions options = {}) {
    options.device = device;
    testing::check_gradients(layer, std::move(input), generator, options);
  }
  Generator generator{1234};
};
TYPED_TEST_SUITE(LayerTest, testing::Backends);

TYPED_TEST(LayerTest, LinearMatchesLoopsAndGradients) {
  // (7, 5) takes the SGEMM path; one input or one output feature take the direct loops.
  struct Case {
    int in, out;
    bool bias = true;
  };
  // The last case has no bias: the CUDA backend then takes a cuBLASLt plan without epilogue.
  // 70 features: the direct loops' 32-column blocks plus a remainder. 11 rows: one block of
  // eight rows of the one-output product and three rows after it.
  constexpr int rows = 11;
  for (auto [in, out, bias] : {Case{7, 5}, Case{1, 6}, Case{19, 1}, Case{1, 1}, Case{6, 4, false}, Case{1, 70},
                               Case{70, 1}, Case{1, 40, false}}) {
    Linear layer(in, out, this->generator, bias);
    Tensor x = random_tensor({rows, in}, this->generator);
    Tensor y = this->run(layer, x);
    Tensor expected({rows, out});
    for (int n = 0; n < rows; ++n)
      for (int o = 0; o < out; ++o) {
        double sum = bias ? layer.bias().value.at({o}) : 0.0;
        for (int i = 0; i < in; ++i) sum += static_cast<double>(x.at({n, i})) * layer.weight().value.at({o, i});
        expected.at({n, o}) = static_cast<float>(sum);
      }
    expect_close(y, expected, 1e-5, layer.describe());
    this->check_gradients(layer, x, this->generator);
  }
}

TYPED_TEST(LayerTest, LinearInitialisationIsPyTorchDefault) {
  Linear layer(400, 300, this->generator);
  const float bound = 1.0f / std::sqrt(400.0f);
  double sum = 0.0, squares = 0.0;
  for (float w : layer.weight().value.span()) {
    ASSERT_LE(std::abs(w), bound);
    sum += w;
    squares += static_cast<double>(w) * w;
  }
  const double n = static_cast<double>(layer.weight().value.numel());
  EXPECT_NEAR(sum / n, 0.0, 0.01 * bound);
  // Variance of U(-b, b) is b^2/3.
  EXPECT_NEAR(squares / n, bound * bound / 3.0, 0.02 * bound * bound);
  for (float b : layer.bias().value.span()) ASSERT_LE(std::abs(b), bound);
}

double naive_conv(const Tensor& x, Conv2d& conv, int n, int o, int oy, int ox, int k, int stride, int pad) {
  const auto& w = conv.weight().value;
  double sum = conv.bias().value.numel() > 0 ? conv.bias().value.at({o}) : 0.0;
  for (int c = 0; c < x.size(1); ++c)
    for (int ky = 0; ky < k; ++ky)
      for (int kx = 0; kx < k; ++kx) {
        const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        if (iy < 0 || ix < 0 || iy >= x.size(2) || ix >= x.size(3)) continue;
        sum += static_cast<double>(x.at({n, c, iy, ix})) * w.at({o, c, ky, kx});
      }
  return sum;
}

TYPED_TEST(LayerTest, Conv2dMatchesDirectConvolution) {
  struct Case {
    int c, o, k, stride, pad, h, w;
    bool bias = true;
  };
  // The last case has no bias (ResNet's convolutions), a path of its own on every backend.
  for (const Case& cs : {Case{3, 4, 3, 1, 1, 7, 6}, Case{2, 5, 5, 2, 2, 9, 9}, Case{3, 2, 2, 3, 0, 8, 7},
                         Case{2, 3, 3, 2, 1, 6, 5, false}}) {
    Conv2d conv(cs.c, cs.o, cs.k, this->generator, cs.stride, cs.pad, cs.bias);
    Tensor x = random_tensor({2, cs.c, cs.h, cs.w}, this->generator);
    Tensor y = this->run(conv, x);
    const int oh = (cs.h + 2 * cs.pad - cs.k) / cs.stride + 1, ow = (cs.w + 2 * cs.pad - cs.k) / cs.stride + 1;
    ASSERT_EQ(y.shape(), (Shape{2, cs.o, oh, ow}));
    Tensor expected(y.shape());
    for (int n = 0; n < 2; ++n)
      for (int o = 0; o < cs.o; ++o)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox)
            expected.at({n, o, oy, ox}) = static_cast<float>(naive_conv(x, conv, n, o, oy, ox, cs.k, cs.stride, cs.pad));
    expect_close(y, expected, 1e-5, conv.describe());
    this->check_gradients(conv, x, this->generator);
  }
}

TYPED_TEST(LayerTest, ActivationsMatchFormulasAndGradients) {
  Tensor x = random_tensor({3, 11}, this->generator, -3.0f, 3.0f);
  avoid_zero(x, 0.05f);
  for (Activation kind : {Activation::relu, Activation::tanh, Activation::gelu, Activation::silu}) {
    ActivationLayer layer(kind);
    Tensor y = this->run(layer, x);
    Tensor expected(x.shape());
    for (std::size_t i = 0; i < x.span().size(); ++i) {
      const double v = x.span()[i];
      double r = 0.0;
      switch (kind) {
        case Activation::relu: r = v > 0 ? v : 0; break;
        case Activation::tanh: r = std::tanh(v); break;
        case Activation::gelu: r = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); break;
        case Activation::silu: r = v / (1.0 + std::exp(-v)); break;
      }
      expected.span()[i] = static_cast<float>(r);
    }
    expect_close(y, expected, 1e-6, layer.describe());
    // Step below the 0.05 margin, so no ReLU difference crosses the kink.
    this->check_gradients(layer, x, this->generator, {.step = 1e-2f});
  }
}

TYPED_TEST(LayerTest, FlattenKeepsDataAndBatchAxis) {
  Flatten flatten;
  Tensor x = random_tensor({2, 3, 4, 5}, this->generator);
  Tensor y = this->run(flatten, x);
  ASSERT_EQ(y.shape(), (Shape{2, 60}));
  EXPECT_EQ(y.to_vector(), x.to_vector());
  this->check_gradients(flatten, x, this->generator);
}

TYPED_TEST(LayerTest, ScaleMultipliesValuesAndGradients) {
  Scale scale(1.0f / 9.0f);
  Tensor x = random_tensor({3, 5}, this->generator);
  Tensor y = this->run(scale, x);
  for (std::size_t i = 0; i < x.span().size(); ++i) EXPECT_FLOAT_EQ(y.span()[i], x.span()[i] / 9.0f);
  EXPECT_EQ(scale.describe(), "Scale(0.111111)");
  this->check_gradients(scale, x, this->generator);
}

// The pooling windows the tests cover: the 2x2 fast path, overlapping 3x3 windows, padding.
struct PoolCase {
  int k, stride, pad;
};
constexpr PoolCase kPoolCases[] = {{2, 2, 0}, {3, 2, 1}, {3, 2, 0}};

TYPED_TEST(LayerTest, MaxPoolMatchesWindowsAndGradients) {
  for (const PoolCase& cs : kPoolCases) {
    MaxPool2d pool(cs.k, cs.stride, cs.pad);
    Tensor x = distinct_tensor({2, 3, 7, 8}, this->generator);
    Tensor y = this->run(pool, x);
    const int oh = (7 + 2 * cs.pad - cs.k) / cs.stride + 1, ow = (8 + 2 * cs.pad - cs.k) / cs.stride + 1;
    ASSERT_EQ(y.shape(), (Shape{2, 3, oh, ow}));
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 3; ++c)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            float best = -1e30f;
            for (int ky = 0; ky < cs.k; ++ky)
              for (int kx = 0; kx < cs.k; ++kx) {
                const int iy = oy * cs.stride - cs.pad + ky, ix = ox * cs.stride - cs.pad + kx;
                if (iy >= 0 && ix >= 0 && iy < 7 && ix < 8) best = std::max(best, x.at({n, c, iy, ix}));
              }
            ASSERT_EQ(y.at({n, c, oy, ox}), best);
          }
    // Values are 0.02 apart: a 0.005 step never changes a window's winner.
    this->check_gradients(pool, x, this->generator, {.step = 5e-3f});
  }
}

// A NaN anywhere in a window reaches that window's output (PyTorch's CPU kernel and cuDNN's
// CUDNN_PROPAGATE_NAN), not only as the window's first value: the trainer's NaN check must see
// a diverged activation. Windows without it stay finite.
TYPED_TEST(LayerTest, MaxPoolPropagatesANaNAnywhereInItsWindow) {
  for (const PoolCase& cs : kPoolCases) {
    MaxPool2d pool(cs.k, cs.stride, cs.pad);
    Tensor x = distinct_tensor({1, 2, 8, 8}, this->generator);
    x.at({0, 1, 1, 1}) = std::numeric_limits<float>::quiet_NaN();  // inside window (0, 0), never its first value
    Tensor y = this->run(pool, x);
    const int oh = (8 + 2 * cs.pad - cs.k) / cs.stride + 1;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < oh; ++ox) {
        const int y0 = oy * cs.stride - cs.pad, x0 = ox * cs.stride - cs.pad;
        const bool covers = y0 <= 1 && 1 < y0 + cs.k && x0 <= 1 && 1 < x0 + cs.k;
        EXPECT_EQ(std::isnan(y.at({0, 1, oy, ox})), covers) << "k=" << cs.k << " pad=" << cs.pad << " at " << oy << "," << ox;
        EXPECT_FALSE(std::isnan(y.at({0, 0, oy, ox})));
      }
  }
}

TYPED_TEST(LayerTest, AvgPoolMatchesWindowsAndGradients) {
  AvgPool2d pool(3, 2);
  Tensor x = random_tensor({2, 2, 9, 8}, this->generator);
  Tensor y = this->run(pool, x);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 4, 3}));
  Tensor expected(y.shape());
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int oy = 0; oy < 4; ++oy)
        for (int ox = 0; ox < 3; ++ox) {
          double sum = 0;
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) sum += x.at({n, c, oy * 2 + ky, ox * 2 + kx});
          expected.at({n, c, oy, ox}) = static_cast<float>(sum / 9);
        }
  expect_close(y, expected, 1e-6, "AvgPool2d");
  this->check_gradients(pool, x, this->generator);
}

// A window larger than the (padded) input is a usage error on every backend, not one output
// row from a truncating division.
TYPED_TEST(LayerTest, PoolingRejectsAWindowLargerThanTheInput) {
  MaxPool2d max_pool(3, 1, 0);
  AvgPool2d average_pool(3, 1);
  Tensor x = random_tensor({1, 2, 2, 5}, this->generator);
  EXPECT_THROW(this->run(max_pool, x), std::invalid_argument);
  EXPECT_THROW(this->run(average_pool, x), std::invalid_argument);
  MaxPool2d padded(3, 1, 1);  // 2 + 2 * 1 >= 3: fits
  EXPECT_EQ(this->run(padded, x).shape(), (Shape{1, 2, 2, 5}));
}

TYPED_TEST(LayerTest, AdaptiveAvgPoolUsesPyTorchBins) {
  AdaptiveAvgPool2d pool(3, 2);
  Tensor x = random_tensor({2, 2, 7, 5}, this->generator);
  Tensor y = this->run(pool, x);
  // Rows of 7 into 3 bins: [0,3), [2,5), [4,7); columns of 5 into 2 bins: [0,3), [2,5).
  const int rows[3][2] = {{0, 3}, {2, 5}, {4, 7}};
  const int cols[2][2] = {{0, 3}, {2, 5}};
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int oy = 0; oy < 3; ++oy)
        for (int ox = 0; ox < 2; ++ox) {
          double sum = 0;
          for (int iy = rows[oy][0]; iy < rows[oy][1]; ++iy)
            for (int ix = cols[ox][0]; ix < cols[ox][1]; ++ix) sum += x.at({n, c, iy, ix});
          EXPECT_NEAR(y.at({n, c, oy, ox}), sum / 9.0, 1e-6);
        }
  this->check_gradients(pool, x, this->generator);
  AdaptiveAvgPool2d identity(7, 5);
  EXPECT_EQ(this->run(identity, x).to_vector(), x.to_vector());
}

TYPED_TEST(LayerTest, BatchNormTrainEvalAndRunningStatistics) {
  for (int spatial : {1, 2}) {
    BatchNorm bn(3, spatial);
    Shape shape = spatial == 2 ? Shape{4, 3, 2, 3} : Shape{5, 3};
    Tensor x = random_tensor(shape, this->generator, -2.0f, 3.0f);
    for (auto& g : bn.weight().value.span()) g = this->generator.uniform(0.5f, 1.5f);
    for (auto& b : bn.bias().value.span()) b = this->generator.uniform(-0.5f, 0.5f);
    Tensor y = this->run(bn, x, Mode::train);
    const std::int64_t per_channel = x.numel() / 3;
    const std::int64_t s = per_channel / shape[0];
    for (int c = 0; c < 3; ++c) {
      double mean = 0, var = 0;
      for (int n = 0; n < shape[0]; ++n)
        for (int i = 0; i < s; ++i) mean += x.data()[(n * 3 + c) * s + i];
      mean /= static_cast<double>(per_channel);
      for (int n = 0; n < shape[0]; ++n)
        for (int i = 0; i < s; ++i) var += std::pow(x.data()[(n * 3 + c) * s + i] - mean, 2);
      const double biased = var / static_cast<double>(per_channel);
      const double unbiased = var / static_cast<double>(per_channel - 1);
      for (int n = 0; n < shape[0]; ++n)
        for (int i = 0; i < s; ++i) {
          const auto k = (n * 3 + c) * s + i;
          const double expected = bn.weight().value.data()[c] * (x.data()[k] - mean) / std::sqrt(biased + 1e-5) +
                                  bn.bias().value.data()[c];
          EXPECT_NEAR(y.data()[k], expected, 1e-5);
        }
      EXPECT_NEAR(bn.running_mean().data()[c], 0.1 * mean, 1e-6);
      EXPECT_NEAR(bn.running_var().data()[c], 0.9 + 0.1 * unbiased, 1e-6);
    }
    EXPECT_EQ(bn.batches_tracked().data()[0], 1.0f);
    // Eval mode: running statistics, and no update.
    Tensor mean_before = bn.running_mean().clone();
    Tensor e = this->run(bn, x, Mode::eval);
    EXPECT_EQ(bn.running_mean().to_vector(), mean_before.to_vector());
    for (int n = 0; n < shape[0]; ++n)
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < s; ++i) {
          const auto k = (n * 3 + c) * s + i;
          const double expected = bn.weight().value.data()[c] * (x.data()[k] - bn.running_mean().data()[c]) /
                                      std::sqrt(bn.running_var().data()[c] + 1e-5) +
                                  bn.bias().value.data()[c];
          EXPECT_NEAR(e.data()[k], expected, 1e-5);
        }
    this->check_gradients(bn, x, this->generator, {.step = 1e-2f, .tolerance = 3e-3});
    this->check_gradients(bn, x, this->generator, {.step = 1e-2f, .mode = Mode::eval});
  }
}

TYPED_TEST(LayerTest, DropoutMasksScalesAndIsSeeded) {
  Dropout dropout(0.3f, 99);
  Tensor x = random_tensor({50, 40}, this->generator, 0.5f, 1.5f);
  auto result = dropout.forward(x.to(this->device), Mode::train);
  Tensor y = result.output.to(Device::cpu);
  int zeros = 0;
  for (std::size_t i = 0; i < y.span().size(); ++i) {
    if (y.span()[i] == 0.0f) {
      ++zeros;
    } else {
      ASSERT_FLOAT_EQ(y.span()[i], x.span()[i] / 0.7f);
    }
  }
  // 2000 Bernoulli(0.3) draws: mean 600, standard deviation about 20.5.
  EXPECT_NEAR(zeros, 600, 100);
  // Backward applies the same mask (the op is linear, so exactly).
  Tensor g = random_tensor(x.shape(), this->generator);
  Tensor dx = dropout.backward(*result.context, g.to(this->device)).to(Device::cpu);
  for (std::size_t i = 0; i < dx.span().size(); ++i)
    ASSERT_FLOAT_EQ(dx.span()[i], y.span()[i] == 0.0f ? 0.0f : g.span()[i] / 0.7f);
  // Same seed, same masks; eval is the identity.
  Dropout twin(0.3f, 99);
  EXPECT_EQ(this->run(twin, x).to_vector(), y.to_vector());
  EXPECT_EQ(this->run(dropout, x, Mode::eval).to_vector(), x.to_vector());
}

TYPED_TEST(LayerTest, SequentialAndResidualComposeGradients) {
  auto body = std::make_unique<Sequential>();
  body->add(std::make_unique<Conv2d>(2, 2, 3, this->generator, 1, 1)).add(tanh_layer());
  Sequential net;
  net.add(std::make_unique<Residual>(std::move(body)))
      .add(std::make_unique<Residual>(std::make_unique<Conv2d>(2, 3, 3, this->generator, 1, 1),
                                      std::make_unique<Conv2d>(2, 3, 1, this->generator)))
      .add(std::make_unique<Flatten>())
      .add(std::make_unique<Linear>(3 * 5 * 4, 2, this->generator));
  std::vector<std::string> names;
  for (auto& p : parameters_of(net)) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.body.0.weight", "0.body.0.bias", "1.body.weight", "1.body.bias",
                                             "1.shortcut.weight", "1.shortcut.bias", "3.weight", "3.bias"}));
  Tensor x = random_tensor({2, 2, 5, 4}, this->generator);
  this->check_gradients(net, x, this->generator);
}

TYPED_TEST(LayerTest, ResidualAddsIdentityOrShortcut) {
  Conv2d conv(2, 2, 3, this->generator, 1, 1);
  Tensor x = random_tensor({2, 2, 5, 4}, this->generator);
  Tensor body = this->run(conv, x);
  auto conv_copy = std::make_unique<Conv2d>(2, 2, 3, this->generator, 1, 1);
  conv_copy->weight().value.copy_from(conv.weight().value);
  conv_copy->bias().value.copy_from(conv.bias().value);
  Residual residual(std::move(conv_copy));
  Tensor y = this->run(residual, x);
  for (std::size_t i = 0; i < y.span().size(); ++i) ASSERT_FLOAT_EQ(y.span()[i], body.span()[i] + x.span()[i]);
}

TEST(Generator, SplitMix64MatchesThePublishedSequenceOfSeed1234567) {
  // Vigna's splitmix64.c seeded with 1234567 (Rosetta Code, "Pseudo-random numbers/Splitmix64").
  const std::uint64_t published[] = {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                     4593380528125082431ULL, 16408922859458223821ULL};
  for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(splitmix64(1234567 + kGoldenGamma * (i + 1)), published[i]) << i;
}

TEST(Generator, FillUniformIsTheKeysSplitMixStreamOnAnyThreadCount) {
  const std::int64_t n = (1 << 17) + 5;  // above the threading threshold, not a multiple of it
  std::vector<std::vector<float>> fills;
  for (int threads : {1, 2}) {
    openblas_set_num_threads(threads);
    Generator generator(42);
    std::vector<float> values(n);
    generator.fill_uniform(values, -0.5f, 1.5f);
    Generator reference(42);
    reference.next();  // the one draw fill_uniform takes: both generators continue alike
    EXPECT_EQ(generator.next(), reference.next());
    fills.push_back(std::move(values));
  }
  openblas_set_num_threads(1);
  EXPECT_EQ(fills[0], fills[1]);
  const std::uint64_t key = Generator(42).next();
  std::vector<double> as_double;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto bits = splitmix64(key + kGoldenGamma * static_cast<std::uint64_t>(i + 1)) >> 40;
    ASSERT_EQ(fills[0][i], -0.5f + 2.0f * (static_cast<float>(bits) / 16777216.0f)) << i;
    as_double.push_back(fills[0][i]);
  }
  // U(-0.5, 1.5): mean 0.5, variance 4/12, every value inside [low, high).
  const auto m = slurmlab::testing::moments(as_double);
  EXPECT_NEAR(m.mean, 0.5, 5 * m.standard_error_of_mean());
  EXPECT_NEAR(m.variance, 4.0 / 12.0, 5 * m.standard_error_of_variance());
  EXPECT_GE(*std::min_element(fills[0].begin(), fills[0].end()), -0.5f);
  EXPECT_LT(*std::max_element(fills[0].begin(), fills[0].end()), 1.5f);
}

TEST(Tensor, AllocatorReusesFreedBuffers) {
  auto& allocator = CachingAllocator::for_device(Device::cpu);
  { Tensor warm({1000, 37}); }
  const auto before = allocator.statistics();
  for (int i = 0; i < 10; ++i) {
    Tensor t({1000, 37});
    t.fill(1.0f);
  }
  const auto after = allocator.statistics();
  EXPECT_EQ(after.fresh_allocations, before.fresh_allocations);
  EXPECT_EQ(after.reused_allocations, before.reused_allocations + 10);
}

TEST(Tensor, ReshapeSharesStorageAndChecksCounts) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor v = t.reshape({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_TRUE(v.same_storage(t));
  EXPECT_EQ(v.at({2, 1}), 6.0f);
  EXPECT_THROW(t.reshape({4, 2}), std::invalid_argument);
  Tensor c = t.clone();
  c.fill(0.0f);
  EXPECT_EQ(t.at({1, 2}), 6.0f);
}

// A network whose input is data skips the first layer's input-gradient product: backward
// returns no tensor, and every parameter gradient is the one a full backward gives (the
// skipped product feeds nothing). Both the Conv2d first layer of the CNN (nested one level
// down, as AlexNet's features are) and a Linear first layer.
TEST(Layers, NoInputGradientSkipsOnlyTheInputGradient) {
  enum class First { conv, linear, one_feature };
  for (const First first : {First::conv, First::linear, First::one_feature}) {
    SCOPED_TRACE(first == First::conv ? "Conv2d first" : first == First::linear ? "Linear first" : "Linear(1, 40) first");
    const bool conv_first = first == First::conv;
    auto build = [&] {
      Generator init(7);
      auto inner = std::make_unique<Sequential>();
      if (conv_first) {
        inner->add(std::make_unique<Conv2d>(3, 4, 3, init)).add(relu()).add(std::make_unique<Flatten>());
        inner->add(std::make_unique<Linear>(4 * 6 * 6, 5, init));
      } else if (first == First::linear) {
        inner->add(std::make_unique<Linear>(12, 6, init)).add(relu()).add(std::make_unique<Linear>(6, 5, init));
      } else {  // the regression MLP's shape: the direct loops, not SGEMM
        inner->add(std::make_unique<Linear>(1, 40, init)).add(tanh_layer()).add(std::make_unique<Linear>(40, 5, init));
      }
      auto net = std::make_unique<Sequential>();
      net->add("inner", std::move(inner));
      return net;
    };
    Generator data(3);
    const Tensor x = conv_first ? random_tensor({2, 3, 8, 8}, data) : random_tensor({2, first == First::linear ? 12 : 1}, data);
    const Tensor grad_y = random_tensor({2, 5}, data);
    auto full = build();
    auto skipping = build();
    skipping->set_input_grad_needed(false);
    const Tensor grad_x = full->backward(*full->forward(x, Mode::train).context, grad_y);
    ASSERT_TRUE(grad_x.defined());
    EXPECT_FALSE(skipping->backward(*skipping->forward(x, Mode::train).context, grad_y).defined());
    const auto expected = parameters_of(*full), actual = parameters_of(*skipping);
    ASSERT_EQ(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(expected[i].parameter->grad.to_vector(), actual[i].parameter->grad.to_vector()) << expected[i].name;
    }
    // Needed again (say, for a saliency map): the gradient comes back.
    skipping->set_input_grad_needed(true);
    zero_grad(*skipping);
    const Tensor again = skipping->backward(*skipping->forward(x, Mode::train).context, grad_y);
    ASSERT_TRUE(again.defined());
    EXPECT_EQ(again.to_vector(), grad_x.to_vector());
  }
}

// Sequential runs a ReLU or tanh that follows a Linear or Conv2d in place on the CPU (no second
// buffer), and a one-output Linear's backward applies the derivative of the ReLU or tanh before
// it in the same pass (Linear::backward_through): the output, the input gradient and every parameter gradient are the same bits as
// running the children one by one through Layer::forward/backward (which never does), the
// caller's input and gradient are left as they were, and the backward hook still sees every
// child, last first.
TEST(Layers, InPlaceActivationsGiveTheLayerByLayerResults) {
  struct Net {
    const char* what;
    std::function<void(Sequential&, Generator&)> build;
    Shape input, output;
  };
  const std::vector<Net> nets = {
      {"Linear+ReLU", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Linear>(9, 40, g)).add(relu()).add(std::make_unique<Linear>(40, 3, g)).add(relu());
       }, {5, 9}, {5, 3}},
      // A Linear with one output folds the tanh or ReLU before it into its backward
      // (70 and 40 features: 32-column blocks and a remainder).
      {"Linear(1, 70)+Tanh", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Linear>(1, 70, g)).add(tanh_layer()).add(std::make_unique<Linear>(70, 1, g));
       }, {33, 1}, {33, 1}},
      {"Linear+ReLU into one output", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Linear>(9, 40, g)).add(relu()).add(std::make_unique<Linear>(40, 1, g));
       }, {21, 9}, {21, 1}},
      // A Linear with one input applies the tanh or ReLU after it to its outputs as it makes
      // them (90 = 5 x 16 + 8 + 2: the 16- and 8-float vectors and a masked remainder).
      {"Linear(1, 90, bias=False)+Tanh, Linear(1, 37)+ReLU", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Linear>(1, 90, g, false)).add(tanh_layer()).add(std::make_unique<Linear>(90, 1, g));
         n.add(std::make_unique<Linear>(1, 37, g)).add(relu()).add(std::make_unique<Linear>(37, 1, g));
       }, {17, 1}, {17, 1}},
      {"Conv2d+ReLU", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Conv2d>(2, 3, 3, g, 1, 1)).add(relu()).add(std::make_unique<Flatten>());
         n.add(std::make_unique<Linear>(3 * 5 * 5, 4, g)).add(tanh_layer());
       }, {2, 2, 5, 5}, {2, 4}},
      // The tutorial CNN's BatchNorm then ReLU, and a ResNet block's Residual then ReLU.
      {"BatchNorm2d+ReLU, Residual+ReLU", [](Sequential& n, Generator& g) {
         n.add(std::make_unique<Conv2d>(2, 3, 3, g, 1, 1)).add(std::make_unique<BatchNorm>(3, 2)).add(relu());
         auto body = std::make_unique<Sequential>();
         body->add(std::make_unique<Conv2d>(3, 3, 3, g, 1, 1)).add(tanh_layer());
         n.add(std::make_unique<Residual>(std::move(body))).add(relu()).add(std::make_unique<Flatten>());
       }, {4, 2, 5, 5}, {4, 75}},
  };
  for (const Net& spec : nets) {
    SCOPED_TRACE(spec.what);
    Generator init_a(11), init_b(11), data(5);
    Sequential fused, plain;
    spec.build(fused, init_a);
    spec.build(plain, init_b);
    const Tensor x = random_tensor(spec.input, data, -2.0f, 2.0f);
    const Tensor grad_y = random_tensor(spec.output, data);
    const auto x_before = x.to_vector(), grad_before = grad_y.to_vector();

    std::vector<std::size_t> hooked;
    fused.set_backward_hook([&](std::size_t child) { hooked.push_back(child); });
    auto f = fused.forward(x, Mode::train);
    const Tensor grad_x = fused.backward(*f.context, grad_y);

    std::vector<Forward> steps;  // the children one by one
    Tensor h = x;
    for (std::size_t i = 0; i < plain.size(); ++i) {
      steps.push_back(plain[i].forward(h, Mode::train));
      h = steps.back().output;
    }
    Tensor g = grad_y;
    for (std::size_t i = plain.size(); i-- > 0;) g = plain[i].backward(*steps[i].context, g);

    EXPECT_EQ(f.output.to_vector(), h.to_vector());
    EXPECT_EQ(grad_x.to_vector(), g.to_vector());
    const auto expected = parameters_of(plain), actual = parameters_of(fused);
    ASSERT_EQ(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(expected[i].parameter->grad.to_vector(), actual[i].parameter->grad.to_vector()) << expected[i].name;
    }
    EXPECT_EQ(x.to_vector(), x_before);
    EXPECT_EQ(grad_y.to_vector(), grad_before);
    std::vector<std::size_t> descending(fused.size());
    for (std::size_t i = 0; i < descending.size(); ++i) descending[i] = descending.size() - 1 - i;
    EXPECT_EQ(hooked, descending);
  }
}

// The one-output product sums each row in one fixed order whether the row falls in a block of
// eight rows (summed together) or after the last block: every row of a batch gets the bits
// it gets alone, for rows shorter than, as long as and longer than a vector, with a remainder.
TEST(Layers, OneOutputLinearGivesEachRowItsBitsAlone) {
  Generator g(21);
  for (const std::int64_t in : {3, 8, 37, 64}) {
    SCOPED_TRACE(std::to_string(in) + " features");
    Linear layer(in, 1, g);
    const Tensor x = random_tensor({19, in}, g);
    const Tensor batch = layer.forward(x, Mode::eval).output;
    for (std::int64_t n = 0; n < 19; ++n) {
      const Tensor row = Tensor::from({1, in}, std::vector<float>(x.data() + n * in, x.data() + (n + 1) * in));
      EXPECT_EQ(std::bit_cast<std::uint32_t>(layer.forward(row, Mode::eval).output.data()[0]),
                std::bit_cast<std::uint32_t>(batch.data()[n]))
          << "row " << n;
    }
  }
}

// Which pairs fold (Sequential's part is InPlaceActivationsGiveTheLayerByLayerResults): a CPU
// Linear with one output, after a ReLU or tanh, when its input gradient is wanted; one with one
// input, before a ReLU or tanh. A call where it does not fold is refused rather than answered
// wrongly.
TEST(Layers, OnlyOneFeatureLinearsFoldTheirActivations) {
  Generator g(4);
  Linear first(1, 5, g), wide(2, 5, g);
  EXPECT_TRUE(first.folds_activation_forward(Activation::tanh));
  EXPECT_TRUE(first.folds_activation_forward(Activation::relu));
  EXPECT_FALSE(first.folds_activation_forward(Activation::gelu));
  EXPECT_FALSE(wide.folds_activation_forward(Activation::tanh));
  EXPECT_THROW(wide.forward_through(random_tensor({3, 2}, g), Activation::tanh), std::logic_error);
  EXPECT_THROW(first.forward_through(random_tensor({3, 2}, g), Activation::tanh), std::invalid_argument);
  Linear one(5, 1, g), two(5, 2, g);
  EXPECT_TRUE(one.folds_activation_backward(Activation::tanh));
  EXPECT_TRUE(one.folds_activation_backward(Activation::relu));
  EXPECT_FALSE(one.folds_activation_backward(Activation::gelu));
  EXPECT_FALSE(one.folds_activation_backward(Activation::silu));
  EXPECT_FALSE(two.folds_activation_backward(Activation::tanh));
  const Tensor x = random_tensor({3, 5}, g);
  const auto f = two.forward(x, Mode::train);
  EXPECT_THROW(two.backward_through(*f.context, random_tensor({3, 2}, g), Activation::tanh), std::logic_error);
  one.set_input_grad_needed(false);
  EXPECT_FALSE(one.folds_activation_backward(Activation::tanh));
}

// BatchNorm then ReLU folded (Sequential's part, in train mode, is
// InPlaceActivationsGiveTheLayerByLayerResults): in eval mode too, forward_through and
// backward_through give the bits of BatchNorm and ReLU one after the other, with and without
// trained statistics; a context of one kind is refused by the other's backward.
TEST(Layers, BatchNormFoldsTheReluAfterItInEvalModeToo) {
  Generator g(13);
  BatchNorm norm(3, 2);
  ActivationLayer relu_layer(Activation::relu);
  EXPECT_TRUE(norm.folds_activation(Activation::relu));
  EXPECT_FALSE(norm.folds_activation(Activation::tanh));
  const Tensor x = random_tensor({4, 3, 5, 5}, g, -2.0f, 2.0f);
  for (float& v : norm.bias().value.span()) v = g.uniform(-0.5f, 0.5f);
  for (float& v : norm.weight().value.span()) v = g.uniform(0.5f, 1.5f);
  norm.forward(x, Mode::train);  // running statistics other than 0 and 1
  const Tensor grad = random_tensor({4, 3, 5, 5}, g);
  for (const Mode mode : {Mode::eval, Mode::train}) {
    SCOPED_TRACE(mode == Mode::eval ? "eval" : "train");
    zero_grad(norm);
    const auto plain = norm.forward(x, mode);
    const auto activated = relu_layer.forward(plain.output, mode);
    const Tensor expected_dx = norm.backward(*plain.context, relu_layer.backward(*activated.context, grad));
    const auto expected_dgamma = norm.weight().grad.to_vector(), expected_dbeta = norm.bias().grad.to_vector();
    zero_grad(norm);
    const auto folded = norm.forward_through(x, mode, Activation::relu);
    EXPECT_EQ(folded.output.to_vector(), activated.output.to_vector());
    EXPECT_EQ(norm.backward_through(*folded.context, grad, Activation::relu).to_vector(), expected_dx.to_vector());
    EXPECT_EQ(norm.weight().grad.to_vector(), expected_dgamma);
    EXPECT_EQ(norm.bias().grad.to_vector(), expected_dbeta);
    EXPECT_THROW(norm.backward(*folded.context, grad), std::logic_error);
    EXPECT_THROW(norm.backward_through(*plain.context, grad, Activation::relu), std::logic_error);
  }
}

// tanh on a dense grid over [-12, 12] (the vector kernels' full blocks and their tail, and the
// clamped range) against double tanh; NaN stays NaN and the infinities give -1 and 1, in the
// layer and in place.
TEST(Layers, TanhIsAccurateOnAWideGridAndKeepsNaN) {
  constexpr std::int64_t n = 240'003;
  Tensor x({n});
  for (std::int64_t i = 0; i < n; ++i) x.data()[i] = -12.0f + 24.0f * static_cast<float>(i) / static_cast<float>(n - 1);
  x.data()[100] = std::numeric_limits<float>::quiet_NaN();
  x.data()[n - 2] = std::numeric_limits<float>::quiet_NaN();  // in the scalar tail
  x.data()[7] = -std::numeric_limits<float>::infinity();
  x.data()[n - 1] = std::numeric_limits<float>::infinity();
  ActivationLayer layer(Activation::tanh);
  const Tensor y = layer.forward(x, Mode::train).output;
  Tensor in_place = x.clone();
  layer.forward_in_place(in_place);
  double worst = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x.data()[i];
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(y.data()[i])) << i;
      EXPECT_TRUE(std::isnan(in_place.data()[i])) << i;
      continue;
    }
    EXPECT_EQ(std::bit_cast<std::uint32_t>(in_place.data()[i]), std::bit_cast<std::uint32_t>(y.data()[i])) << v;
    worst = std::max(worst, std::abs(static_cast<double>(y.data()[i]) - std::tanh(static_cast<double>(v))));
  }
  EXPECT_LT(worst, 4e-7);
  EXPECT_NEAR(y.data()[7], -1.0f, 3e-7f);
  EXPECT_NEAR(y.data()[n - 1], 1.0f, 3e-7f);
  // Every kernel this CPU can run (the layer uses the last, the widest), in place too, at lengths that
  // leave tails of each vector width.
  const auto kernels = detail::tanh_kernels();
  ASSERT_GE(kernels.size(), 1u);
  for (const auto& [name, kernel] : kernels) {
    for (const std::int64_t length : {n, std::int64_t{16 * 9 + 15}, std::int64_t{5}}) {
      SCOPED_TRACE(std::string(name) + ", " + std::to_string(length) + " elements");
      std::vector<float> out(static_cast<std::size_t>(length)), same(x.data(), x.data() + length);
      kernel(x.data(), out.data(), out.size());
      kernel(same.data(), same.data(), same.size());
      double kernel_worst = 0.0;
      for (std::int64_t i = 0; i < length; ++i) {
        const float v = x.data()[i];
        if (std::isnan(v)) {
          EXPECT_TRUE(std::isnan(out[i]) && std::isnan(same[i])) << i;
          continue;
        }
        EXPECT_EQ(out[i], same[i]) << v;
        kernel_worst = std::max(kernel_worst, std::abs(static_cast<double>(out[i]) - std::tanh(static_cast<double>(v))));
      }
      EXPECT_LT(kernel_worst, 4e-7);
    }
  }
  // tanh(shift + x scale) in one pass (FusedMlp's first layer), at the same lengths.
  for (const std::int64_t length : {n, std::int64_t{16 * 9 + 15}, std::int64_t{5}}) {
    SCOPED_TRACE("tanh_affine_array, " + std::to_string(length) + " elements");
    std::vector<float> out(static_cast<std::size_t>(length));
    detail::tanh_affine_array(x.data(), 0.75f, -0.25f, out.data(), out.size());
    double affine_worst = 0.0;
    for (std::int64_t i = 0; i < length; ++i) {
      const float v = x.data()[i];
      if (std::isnan(v)) {
        EXPECT_TRUE(std::isnan(out[i])) << i;
        continue;
      }
      const double expected = std::tanh(-0.25 + 0.75 * static_cast<double>(v));
      affine_worst = std::max(affine_worst, std::abs(static_cast<double>(out[i]) - expected));
    }
    EXPECT_LT(affine_worst, 5e-7);
  }
}

// A Sequential built after the setting passes it to the first child when it is added.
TEST(Layers, NoInputGradientReachesAFirstChildAddedLater) {
  Generator init(1);
  Sequential net;
  net.set_input_grad_needed(false);
  net.add(std::make_unique<Linear>(3, 2, init)).add(relu());
  EXPECT_FALSE(net[0].input_grad_needed());
  EXPECT_TRUE(net[1].input_grad_needed());
}

// Equal values in a window: the gradient goes to the first in scan order (row by row), as in
// PyTorch, for the 2x2 and 3x3 windows of the CNNs.
TEST(Layers, MaxPoolTiesGoToTheFirstInScanOrder) {
  for (const int k : {2, 3}) {
    MaxPool2d pool(k, k);
    Tensor x = Tensor::zeros({1, 1, 6, 6});
    x.data()[1 * 6 + 1] = -1.0f;  // a smaller value inside the first window changes nothing
    auto f = pool.forward(x, Mode::train);
    const Tensor dx = pool.backward(*f.context, Tensor::filled(f.output.shape(), 1.0f));
    for (int iy = 0; iy < 6; ++iy)
      for (int ix = 0; ix < 6; ++ix) {
        const bool first_of_window = iy % k == 0 && ix % k == 0;
        EXPECT_EQ(dx.at({0, 0, iy, ix}), first_of_window ? 1.0f : 0.0f) << "k=" << k << " at " << iy << "," << ix;
      }
  }
}

// The 2x2 windows of rows at least eight outputs wide go eight at a time (a row that is not a
// multiple of eight ends with an overlapping vector), forward and backward: against the scan
// rule, window by window, with ties, NaNs and infinities at every position of some windows,
// for rows of exactly eight, of 14 (the tutorial CNN's: an overlap) and of 17 from an odd width
// (a column left over), with an odd height (a row left over). The gradient goes to the
// reference winner's position and is zero everywhere else, the left-over row and column too
// (the backward writes every input once instead of zeroing first; its buffer here is one that
// held other values).
TEST(Layers, MaxPool2x2VectorRowsFollowTheScanRule) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Generator g(8);
  for (const std::int64_t w : {16, 28, 35}) {
    SCOPED_TRACE(std::to_string(w) + " columns");
    const std::int64_t h = 7, oh = 3, ow = w / 2;
    Tensor x = distinct_tensor({1, 2, h, w}, g);
    float* xp = x.data();
    for (std::int64_t ox = 0; ox < ow; ++ox) {  // windows of row 1 of plane 0: special values
      const std::int64_t corner = 2 * w + 2 * ox;
      const std::int64_t at[4] = {corner, corner + 1, corner + w, corner + w + 1};
      switch (ox % 6) {
        case 0: xp[at[ox / 6 % 4]] = nan; break;                                    // one NaN
        case 1: xp[at[1]] = xp[at[3]] = 9.0f; break;                                // a tie: the first
        case 2: xp[at[0]] = nan, xp[at[2]] = nan; break;                            // two NaNs: the last
        case 3: xp[at[ox / 6 % 4]] = -inf; break;
        case 4: xp[at[3]] = inf; break;
        default: break;
      }
    }
    MaxPool2d pool(2);
    auto f = pool.forward(x, Mode::train);
    const Tensor grad = Tensor::filled(f.output.shape(), 1.0f);
    { const Tensor junk = Tensor::filled(x.shape(), 5.0f); }  // its block is the next of this size
    const Tensor dx = pool.backward(*f.context, grad);
    for (std::int64_t plane = 0; plane < 2; ++plane) {
      for (std::int64_t ix = 0; ix < w; ++ix) EXPECT_EQ(dx.at({0, plane, h - 1, ix}), 0.0f) << "last row " << ix;
      for (std::int64_t iy = 0; iy < h && w % 2 == 1; ++iy) EXPECT_EQ(dx.at({0, plane, iy, w - 1}), 0.0f) << iy;
    }
    for (std::int64_t plane = 0; plane < 2; ++plane)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox) {
          const float* corner = xp + plane * h * w + 2 * oy * w + 2 * ox;
          const float window[4] = {corner[0], corner[1], corner[w], corner[w + 1]};
          int best = 0;
          for (int k = 1; k < 4; ++k)
            if (window[k] > window[best] || std::isnan(window[k])) best = k;
          const float got = f.output.at({0, plane, oy, ox});
          if (std::isnan(window[best])) {
            EXPECT_TRUE(std::isnan(got)) << plane << "," << oy << "," << ox;
          } else {
            EXPECT_EQ(got, window[best]) << plane << "," << oy << "," << ox;
          }
          for (int k = 0; k < 4; ++k) {
            EXPECT_EQ(dx.at({0, plane, 2 * oy + k / 2, 2 * ox + k % 2}), k == best ? 1.0f : 0.0f)
                << plane << "," << oy << "," << ox << " position " << k;
          }
        }
  }
}

// MaxPool2d keeps where each maximum came from in a block of the CPU caching allocator, so a
// training step after the first allocates nothing new (an index array from malloc was mapped,
// faulted in and unmapped every step: 134 MB per layer at airbench94's batch of 1024).
// On the CPU the gradient of a window whose output is NaN goes to the (last) NaN, as in PyTorch.
TEST(Layers, MaxPoolGradientGoesToTheNaN) {
  for (const int k : {2, 3}) {
    MaxPool2d pool(k, k);
    Tensor x = Tensor::filled({1, 1, 6, 6}, 1.0f);
    x.at({0, 0, 1, 1}) = std::numeric_limits<float>::quiet_NaN();
    x.at({0, 0, 0, 1}) = 5.0f;  // larger, before the NaN in scan order
    auto f = pool.forward(x, Mode::train);
    const Tensor dx = pool.backward(*f.context, Tensor::filled(f.output.shape(), 1.0f));
    EXPECT_TRUE(std::isnan(f.output.at({0, 0, 0, 0})));
    EXPECT_EQ(dx.at({0, 0, 1, 1}), 1.0f) << "k=" << k;
    EXPECT_EQ(dx.at({0, 0, 0, 1}), 0.0f) << "k=" << k;
  }
}

TEST(Layers, MaxPoolReusesItsBuffersFromTheSecondStepOn) {
  Generator data(5);
  const Tensor x = random_tensor({8, 4, 32, 32}, data);
  MaxPool2d pool(2);
  auto& allocator = CachingAllocator::for_device(Device::cpu);
  auto step = [&] {
    auto f = pool.forward(x, Mode::train);
    return pool.backward(*f.context, Tensor::filled(f.output.shape(), 1.0f)).to_vector();
  };
  const auto first = step();
  const auto fresh = allocator.statistics().fresh_allocations;
  EXPECT_EQ(step(), first);
  EXPECT_EQ(allocator.statistics().fresh_allocations, fresh);
}

// A host allocation the system refuses (here 2^60 bytes) gives the cache back, tries again,
// then throws OutOfMemory naming the size and what tensors hold; the books stay balanced.
TEST(CachingAllocatorHost, RefusedAllocationIsOutOfMemoryWithSizesAndTheCacheGivenBack) {
  auto& allocator = CachingAllocator::for_device(Device::cpu);
  { Tensor cached({1 << 20}); }  // a block left in the cache
  const auto before = allocator.statistics();
  ASSERT_GT(before.bytes_cached, 0u);
  try {
    allocator.allocate(std::size_t{1} << 60);
    FAIL() << "2^60 bytes were allocated";
  } catch (const OutOfMemory& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("out of host memory: a tensor of 1152921504606.8 MB could not be allocated, with "),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(" MB already held by tensors"), std::string::npos) << what;
  }
  const auto after = allocator.statistics();
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_EQ(after.bytes_cached, 0u);
}

TEST(Layers, MaxPoolRefusesAKernelAbove255) {
  EXPECT_THROW(MaxPool2d(256), std::invalid_argument);
  EXPECT_NO_THROW(MaxPool2d(255));
}

// The compute pool's start-up tells OpenBLAS's workers to sleep when their part is done
// (OPENBLAS_THREAD_TIMEOUT at its minimum, 4, unless the environment chose one) and restarts
// them: OpenBLAS reads the value, and a 2-thread SGEMM afterwards is still right.
TEST(Layers, OpenBlasWorkersSleepWhenDoneAndStillCompute) {
  const char* chosen = std::getenv("OPENBLAS_THREAD_TIMEOUT");  // set before main when the user had not
  ASSERT_NE(chosen, nullptr);
  EXPECT_EQ(openblas_thread_timeout(), std::atoi(chosen));
  // ctest's nn_openblas_timeout_from_the_user runs this with the user's own value, 9: it stands.
  if (const char* expected = std::getenv("SLURMLAB_TEST_EXPECTED_BLAS_TIMEOUT")) {
    EXPECT_EQ(openblas_thread_timeout(), std::atoi(expected));
  }
  openblas_set_num_threads(2);
  const int m = 96, n = 80, k = 300;
  Generator data(3);
  const Tensor a = random_tensor({m, k}, data), b = random_tensor({k, n}, data);
  std::vector<float> c(static_cast<std::size_t>(m * n));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  openblas_set_num_threads(1);
  for (int i = 0; i < m; i += 7)
    for (int j = 0; j < n; j += 5) {
      double sum = 0.0;
      for (int l = 0; l < k; ++l) sum += static_cast<double>(a.data()[i * k + l]) * b.data()[l * n + j];
      EXPECT_NEAR(c[static_cast<std::size_t>(i * n + j)], sum, 1e-4) << i << "," << j;
    }
}

// GELU's branch-free exp and erf against libm in double over their whole useful range.
TEST(Layers, VectorExpAndErfMatchLibmInDouble) {
  double exp_error = 0.0, erf_error = 0.0;
  for (double x = -87.0; x < 88.0; x += 0.0007) {
    const float xf = static_cast<float>(x);
    const double truth = std::exp(static_cast<double>(xf));
    exp_error = std::max(exp_error, std::abs(detail::vector_exp(xf) - truth) / truth);
  }
  for (double x = -7.0; x < 7.0; x += 0.00007) {
    const float xf = static_cast<float>(x);
    erf_error = std::max(erf_error, std::abs(detail::vector_erf(xf) - std::erf(static_cast<double>(xf))));
  }
  EXPECT_LT(exp_error, 3e-7);  // about 2 float ulps
  EXPECT_LT(erf_error, 1e-6);
  EXPECT_EQ(detail::vector_erf(0.0f), 0.0f);
  EXPECT_EQ(detail::vector_exp(-200.0f), detail::vector_exp(-87.3f));  // clamped, never a denormal or NaN
}

// Layers on the compute threads (BatchNorm splits its channels, MaxPool2d its planes) or not
// (activations: splitting them measured no faster here): forward and backward are the same bits
// on 1 and 2 threads.
TEST(Layers, SplitLayersGiveTheSameBitsOnOneAndTwoThreads) {
  Generator data(9);
  const Tensor x = random_tensor({4, 16, 64, 64}, data);  // 2^18 values: above every threshold
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<ActivationLayer>(Activation::relu));
  layers.push_back(std::make_unique<ActivationLayer>(Activation::gelu));
  layers.push_back(std::make_unique<MaxPool2d>(2));
  layers.push_back(std::make_unique<MaxPool2d>(3, 2, 1));
  layers.push_back(batch_norm2d(16));
  for (auto& layer : layers) {
    std::vector<float> outputs[2], grads[2];
    for (int threads : {1, 2}) {
      openblas_set_num_threads(threads);
      auto f = layer->forward(x, Mode::train);
      Generator g(4);
      const Tensor gy = random_tensor(f.output.shape(), g);
      outputs[threads - 1] = f.output.to_vector();
      grads[threads - 1] = layer->backward(*f.context, gy).to_vector();
    }
    openblas_set_num_threads(1);
    EXPECT_EQ(outputs[0], outputs[1]) << layer->describe();
    EXPECT_EQ(grads[0], grads[1]) << layer->describe();
  }
}

TEST(Layers, BadShapesNameTheLayer) {
  Generator g(1);
  Conv2d conv(3, 4, 3, g);
  try {
    conv.forward(Tensor::zeros({2, 5, 8, 8}), Mode::train);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d(3, 4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 5, 8, 8]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slurmlab::nn
