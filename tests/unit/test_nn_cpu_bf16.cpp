// bf16 products on the CPU (cpu_precision.hpp): the float -> bfloat16 rounding against values
// worked out by hand; Conv2d and Linear in bf16 against sums in double of the operands rounded
// to bfloat16 (a product of two bfloat16 values is exact in float32, so only the fp32
// accumulation separates oneDNN's result from that truth: 1e-4 of the largest magnitude, as the
// fp32 backend tests), and measurably apart from the unrounded fp32 truth (so the test fails if
// bf16 is not applied); the same bits on 1, 2 and 3 threads; and whether bf16 is offered,
// checked against the CPU's own feature flags (ctest also runs this binary under
// DNNL_MAX_CPU_ISA=AVX2, where it must be refused with the reason).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../support/relative_error.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/layers/bfloat16.hpp"
#include "slurmlab/nn/layers/cpu_precision.hpp"
#include "slurmlab/nn/layers/layers.hpp"

extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS, which nn links

namespace slurmlab::nn {
namespace {

using detail::bf16_to_float;
using detail::float_to_bf16;

float from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(Bfloat16, RoundsToNearestTiesToEvenAndKeepsInfinitiesAndNaN) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808000)), 0x3f80);  // halfway, down to the even 0x3f80
  EXPECT_EQ(float_to_bf16(from_bits(0x3f818000)), 0x3f82);  // halfway, up to the even 0x3f82
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808001)), 0x3f81);  // just above halfway: up
  EXPECT_EQ(float_to_bf16(from_bits(0x3f807fff)), 0x3f80);  // just below: down
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up past the largest bf16
  EXPECT_EQ(float_to_bf16(from_bits(0x00000001)), 0x0000);                // the smallest subnormal: to zero
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7f800001)))));  // a NaN that rounding would make Inf
  EXPECT_EQ(bf16_to_float(0x3fc0), 1.5f);
}

TEST(Bfloat16, BulkConversionEqualsTheScalarOneOnEveryThreadCount) {
  const std::size_t n = (std::size_t{1} << 20) + 37;  // large enough to be split over threads, with a tail
  std::vector<float> x(n);
  Generator generator(5);
  generator.fill_uniform(x, -1e3f, 1e3f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[4] = -std::numeric_limits<float>::infinity();
  for (int threads : {1, 2, 3}) {
    openblas_set_num_threads(threads);
    std::vector<std::uint16_t> y(n);
    detail::floats_to_bf16(x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        ASSERT_TRUE(std::isnan(bf16_to_float(y[i]))) << i;
      } else {
        ASSERT_EQ(y[i], float_to_bf16(x[i])) << i << " on " << threads << " threads";
      }
    }
  }
  openblas_set_num_threads(1);
}

// What the CPU says about itself (CPUID), independent of oneDNN's own dispatch: bf16 is offered
// exactly when oneDNN is built in and the CPU has AVX512-BF16, unless DNNL_MAX_CPU_ISA caps
// oneDNN below it (ctest's second run sets AVX2).
bool bf16_expected() {
#if defined(SLURMLAB_HAVE_ONEDNN) && defined(__x86_64__)
  const char* cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap && std::string(cap).find("AVX512_CORE_BF16") == std::string::npos &&
      std::string(cap).find("AMX") == std::string::npos && std::string(cap) != "ALL") {
    return false;
  }
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

TEST(CpuPrecision, Bf16IsOfferedExactlyWhereTheCpuHasItElseRefusedWithTheReason) {
  std::string reason;
  const bool available = cpu_bf16_available(&reason);
  EXPECT_EQ(available, bf16_expected()) << reason;
  EXPECT_EQ(cpu_precision(), Precision::float32);  // the default
  if (available) {
    EXPECT_TRUE(reason.empty());
    set_cpu_precision(Precision::bf16);
    EXPECT_EQ(cpu_precision(), Precision::bf16);
  } else {
    EXPECT_FALSE(reason.empty());
    try {
      set_cpu_precision(Precision::bf16);
      ADD_FAILURE() << "bf16 accepted where it is not available";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--precision bf16 on the CPU: "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
    EXPECT_EQ(cpu_precision(), Precision::float32);
  }
  EXPECT_THROW(set_cpu_precision(Precision::float64), UsageError);
  set_cpu_precision(Precision::float32);
  EXPECT_EQ(cpu_precision(), Precision::float32);
}

// Sets bf16 for one test and back to fp32 after it; skips where the CPU has no bf16.
class Bf16Products : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (!cpu_bf16_available(&reason)) GTEST_SKIP() << reason;
    set_cpu_precision(Precision::bf16);
  }
  void TearDown() override {
    set_cpu_precision(Precision::float32);
    openblas_set_num_threads(1);
  }
};

std::vector<double> rounded(const float* x, std::size_t n, bool round) {
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = round ? bf16_to_float(float_to_bf16(x[i])) : x[i];
  return out;
}

struct ConvCase {
  int n, c, h, w, o, k, stride, pad;
  bool bias;
};

// The direct convolution and its three gradients in double, on operands rounded to bf16 or not.
struct ConvTruth {
  std::vector<double> y, dx, dw, db;
};
ConvTruth direct_convolution(const ConvCase& cs, const float* x, const float* w, const float* b, const float* gy,
                             bool round) {
  const int oh = (cs.h + 2 * cs.pad - cs.k) / cs.stride + 1, ow = (cs.w + 2 * cs.pad - cs.k) / cs.stride + 1;
  const auto xs = rounded(x, static_cast<std::size_t>(cs.n * cs.c * cs.h * cs.w), round);
  const auto ws = rounded(w, static_cast<std::size_t>(cs.o * cs.c * cs.k * cs.k), round);
  const auto gs = rounded(gy, static_cast<std::size_t>(cs.n * cs.o * oh * ow), round);
  ConvTruth t;
  t.y.assign(static_cast<std::size_t>(cs.n * cs.o * oh * ow), 0.0);
  t.dx.assign(xs.size(), 0.0);
  t.dw.assign(ws.size(), 0.0);
  t.db.assign(static_cast<std::size_t>(cs.o), 0.0);
  for (int img = 0; img < cs.n; ++img)
    for (int o = 0; o < cs.o; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          const std::size_t yi = static_cast<std::size_t>(((img * cs.o + o) * oh + i) * ow + j);
          double sum = b ? b[o] : 0.0;
          const double g = gs[yi];
          t.db[static_cast<std::size_t>(o)] += g;  // oneDNN sums the gradient it was given: rounded in bf16
          for (int c = 0; c < cs.c; ++c)
            for (int p = 0; p < cs.k; ++p)
              for (int q = 0; q < cs.k; ++q) {
                const int r = i * cs.stride - cs.pad + p, s = j * cs.stride - cs.pad + q;
                if (r < 0 || r >= cs.h || s < 0 || s >= cs.w) continue;
                const std::size_t xi = static_cast<std::size_t>(((img * cs.c + c) * cs.h + r) * cs.w + s);
                const std::size_t wi = static_cast<std::size_t>(((o * cs.c + c) * cs.k + p) * cs.k + q);
                sum += ws[wi] * xs[xi];
                t.dx[xi] += ws[wi] * g;
                t.dw[wi] += xs[xi] * g;
              }
          t.y[yi] = sum;
        }
  return t;
}

TEST_F(Bf16Products, Conv2dEqualsExactProductsOfRoundedOperandsAccumulated) {
  const std::vector<ConvCase> cases{{3, 2, 7, 9, 4, 3, 1, 1, true}, {2, 3, 15, 15, 8, 5, 2, 2, false},
                                    {40, 6, 8, 8, 12, 3, 1, 1, true}};
  for (const ConvCase& cs : cases) {
    Generator generator(11);
    Conv2d conv(cs.c, cs.o, cs.k, generator, cs.stride, cs.pad, cs.bias);
    Tensor x({cs.n, cs.c, cs.h, cs.w});
    generator.fill_uniform(x.span(), -1.0f, 1.0f);
    Forward forward = conv.forward(x, Mode::train);
    Tensor gy(forward.output.shape());
    generator.fill_uniform(gy.span(), -1.0f, 1.0f);
    Tensor dx = conv.backward(*forward.context, gy);
    const float* b = cs.bias ? conv.bias().value.data() : nullptr;
    const auto truth = direct_convolution(cs, x.data(), conv.weight().value.data(), b, gy.data(), true);
    const auto fp32 = direct_convolution(cs, x.data(), conv.weight().value.data(), b, gy.data(), false);
    const std::string at = "n=" + std::to_string(cs.n) + " c=" + std::to_string(cs.c) + " k=" + std::to_string(cs.k);
    EXPECT_LE(testing::relative_max_error(truth.y, forward.output.data()), 1e-4) << "forward " << at;
    EXPECT_LE(testing::relative_max_error(truth.dx, dx.data()), 1e-4) << "input gradient " << at;
    EXPECT_LE(testing::relative_max_error(truth.dw, conv.weight().grad.data()), 1e-4) << "weight gradient " << at;
    if (cs.bias) {
      EXPECT_LE(testing::relative_max_error(truth.db, conv.bias().grad.data()), 1e-4) << "bias " << at;
    }
    // bf16 is applied: against the unrounded operands the error is bf16's (2^-9 per operand), not fp32's.
    EXPECT_GE(testing::relative_max_error(fp32.y, forward.output.data()), 3e-4) << "forward " << at;
    EXPECT_GE(testing::relative_max_error(fp32.dw, conv.weight().grad.data()), 3e-4) << "weight gradient " << at;
  }
}

struct LinearCase {
  int n, in, out;
  bool bias;
};

TEST_F(Bf16Products, LinearEqualsExactProductsOfRoundedOperandsAccumulated) {
  // 97 x 700 x 1100 cuts C's columns into blocks of 512 with a tail; 8 x 64 x 48 is one block.
  const std::vector<LinearCase> cases{{40, 1024, 520, true}, {97, 700, 1100, false}, {8, 64, 48, true}};
  for (const LinearCase& cs : cases) {
    Generator generator(21);
    Linear linear(cs.in, cs.out, generator, cs.bias);
    Tensor x({cs.n, cs.in}), gy({cs.n, cs.out});
    generator.fill_uniform(x.span(), -1.0f, 1.0f);
    generator.fill_uniform(gy.span(), -1.0f, 1.0f);
    Forward forward = linear.forward(x, Mode::train);
    Tensor dx = linear.backward(*forward.context, gy);
    for (bool round : {true, false}) {
      const auto xs = rounded(x.data(), static_cast<std::size_t>(cs.n * cs.in), round);
      const auto ws = rounded(linear.weight().value.data(), static_cast<std::size_t>(cs.out * cs.in), round);
      const auto gs = rounded(gy.data(), static_cast<std::size_t>(cs.n * cs.out), round);
      std::vector<double> y(static_cast<std::size_t>(cs.n * cs.out)), tdx(xs.size(), 0.0), tdw(ws.size(), 0.0);
      for (int r = 0; r < cs.n; ++r)
        for (int o = 0; o < cs.out; ++o) {
          double sum = cs.bias ? linear.bias().value.data()[o] : 0.0;
          const double g = gs[static_cast<std::size_t>(r * cs.out + o)];
          for (int i = 0; i < cs.in; ++i) {
            const auto xi = static_cast<std::size_t>(r * cs.in + i), wi = static_cast<std::size_t>(o * cs.in + i);
            sum += ws[wi] * xs[xi];
            tdx[xi] += ws[wi] * g;
            tdw[wi] += xs[xi] * g;
          }
          y[static_cast<std::size_t>(r * cs.out + o)] = sum;
        }
      const std::string at = "n=" + std::to_string(cs.n) + " in=" + std::to_string(cs.in) +
                             " out=" + std::to_string(cs.out) + (round ? " (rounded operands)" : " (fp32 operands)");
      const double y_error = testing::relative_max_error(y, forward.output.data());
      const double dx_error = testing::relative_max_error(tdx, dx.data());
      const double dw_error = testing::relative_max_error(tdw, linear.weight().grad.data());
      if (round) {
        EXPECT_LE(y_error, 1e-4) << "forward " << at;
        EXPECT_LE(dx_error, 1e-4) << "input gradient " << at;
        EXPECT_LE(dw_error, 1e-4) << "weight gradient " << at;
      } else {
        EXPECT_GE(y_error, 3e-4) << "forward " << at;
        EXPECT_GE(dx_error, 3e-4) << "input gradient " << at;
        EXPECT_GE(dw_error, 3e-4) << "weight gradient " << at;
      }
    }
    if (cs.bias) {
      std::vector<double> db(static_cast<std::size_t>(cs.out), 0.0);
      for (int r = 0; r < cs.n; ++r)
        for (int o = 0; o < cs.out; ++o) db[static_cast<std::size_t>(o)] += gy.data()[r * cs.out + o];
      EXPECT_LE(testing::relative_max_error(db, linear.bias().grad.data()), 1e-5) << "bias gradient n=" << cs.n;
    }
  }
}

TEST_F(Bf16Products, SameBitsOnOneTwoAndThreeThreads) {
  for (int layer = 0; layer < 2; ++layer) {
    std::vector<std::vector<float>> runs[3];
    for (int threads : {1, 2, 3}) {
      openblas_set_num_threads(threads);
      Generator generator(7);
      std::unique_ptr<Layer> net;
      Tensor x;
      if (layer == 0) {
        net = std::make_unique<Conv2d>(3, 16, 5, generator, 1, 2, true);
        x = Tensor({40, 3, 16, 16});
      } else {
        net = std::make_unique<Linear>(700, 1100, generator, true);
        x = Tensor({33, 700});
      }
      generator.fill_uniform(x.span(), -1.0f, 1.0f);
      Forward forward = net->forward(x, Mode::train);
      Tensor gy(forward.output.shape());
      generator.fill_uniform(gy.span(), -1.0f, 1.0f);
      Tensor dx = net->backward(*forward.context, gy);
      runs[0].push_back(forward.output.to_vector());
      runs[1].push_back(dx.to_vector());
      std::vector<float> grads;
      for (auto& p : parameters_of(*net)) {
        const auto g = p.parameter->grad.to_vector();
        grads.insert(grads.end(), g.begin(), g.end());
      }
      runs[2].push_back(grads);
    }
    const char* names[] = {"forward", "input gradient", "parameter gradients"};
    for (int r = 0; r < 3; ++r) {
      EXPECT_EQ(runs[r][0], runs[r][1]) << (layer ? "Linear " : "Conv2d ") << names[r] << ", 1 vs 2 threads";
      EXPECT_EQ(runs[r][0], runs[r][2]) << (layer ? "Linear " : "Conv2d ") << names[r] << ", 1 vs 3 threads";
    }
  }
}

}  // namespace
}  // namespace slurmlab::nn
