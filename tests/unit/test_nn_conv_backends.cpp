// Conv2d's CPU backends (oneDNN when built with it, im2col + OpenBLAS otherwise or under
// SLURMLAB_CONV=im2col; ctest runs this binary both ways) against a direct convolution
// summed in double: forward, input gradient, weight and bias gradients, over the shapes the
// models use and odd ones. Tolerance: 1e-4 relative to the largest magnitude of each
// result (float sums of up to C*K*K or N*OH*OW products).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../support/relative_error.hpp"
#include "slurmlab/nn/layers/layers.hpp"

extern "C" void openblas_set_num_threads(int num_threads);  // OpenBLAS, which nn links

#ifdef SLURMLAB_HAVE_ONEDNN
#define SLURMLAB_ONEDNN_BUILT true
#else
#define SLURMLAB_ONEDNN_BUILT false
#endif

namespace slurmlab::nn {
namespace {

struct Case {
  int n, c, h, w, o, k, stride, pad;
  bool bias;
};

void expect_near_all(const std::vector<double>& truth, const float* got, const char* what, const Case& cs) {
  EXPECT_LE(testing::relative_max_error(truth, got), 1e-4) << what << " n=" << cs.n << " c=" << cs.c << " h=" << cs.h << " w=" << cs.w
                                 << " o=" << cs.o << " k=" << cs.k << " s=" << cs.stride << " p=" << cs.pad;
}

TEST(Conv2dBackends, MatchDirectConvolutionAndItsGradients) {
  const std::vector<Case> cases{
      {1, 1, 5, 5, 1, 1, 1, 0, false}, {3, 2, 7, 9, 4, 3, 1, 1, true},  {1, 3, 8, 8, 5, 3, 2, 1, true},
      {3, 4, 9, 7, 3, 5, 1, 2, true},  {1, 2, 11, 13, 3, 5, 2, 2, false}, {3, 3, 10, 10, 2, 1, 2, 0, true},
      {1, 3, 31, 31, 4, 11, 4, 2, true}, {3, 3, 27, 27, 6, 11, 4, 0, true}, {3, 5, 6, 6, 7, 3, 1, 0, true},
      {1, 2, 9, 9, 3, 3, 4, 1, true},
      // 37 images: oneDNN's three chunks of 16, 16 and 5, run on the compute threads.
      {37, 3, 8, 8, 4, 3, 1, 1, true}};
  Generator generator(15);
  for (const Case& cs : cases) {
    Conv2d conv(cs.c, cs.o, cs.k, generator, cs.stride, cs.pad, cs.bias);
    Tensor x({cs.n, cs.c, cs.h, cs.w});
    generator.fill_uniform(x.span(), -1.0f, 1.0f);
    const int oh = (cs.h + 2 * cs.pad - cs.k) / cs.stride + 1, ow = (cs.w + 2 * cs.pad - cs.k) / cs.stride + 1;
    Tensor gy({cs.n, cs.o, oh, ow});
    generator.fill_uniform(gy.span(), -1.0f, 1.0f);
    const float* xv = x.data();
    const float* wv = conv.weight().value.data();
    const float* gv = gy.data();
    std::vector<double> y(static_cast<std::size_t>(cs.n * cs.o * oh * ow)), dx(static_cast<std::size_t>(x.numel())),
        dw(static_cast<std::size_t>(conv.weight().value.numel())), db(static_cast<std::size_t>(cs.o));
    for (int n = 0; n < cs.n; ++n)
      for (int o = 0; o < cs.o; ++o)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            const std::size_t yi = static_cast<std::size_t>(((n * cs.o + o) * oh + oy) * ow + ox);
            double sum = cs.bias ? conv.bias().value.data()[o] : 0.0;
            const double g = gv[yi];
            db[static_cast<std::size_t>(o)] += g;
            for (int c = 0; c < cs.c; ++c)
              for (int ki = 0; ki < cs.k; ++ki)
                for (int kj = 0; kj < cs.k; ++kj) {
                  const int iy = oy * cs.stride - cs.pad + ki, ix = ox * cs.stride - cs.pad + kj;
                  if (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w) continue;
                  const std::size_t xi = static_cast<std::size_t>(((n * cs.c + c) * cs.h + iy) * cs.w + ix);
                  const std::size_t wi = static_cast<std::size_t>(((o * cs.c + c) * cs.k + ki) * cs.k + kj);
                  sum += static_cast<double>(wv[wi]) * xv[xi];
                  dx[xi] += static_cast<double>(wv[wi]) * g;
                  dw[wi] += static_cast<double>(xv[xi]) * g;
                }
            y[yi] = sum;
          }
    Forward forward = conv.forward(x, Mode::train);
    expect_near_all(y, forward.output.data(), "forward", cs);
    Tensor grad_input = conv.backward(*forward.context, gy);
    expect_near_all(dx, grad_input.data(), "input gradient", cs);
    expect_near_all(dw, conv.weight().grad.data(), "weight gradient", cs);
    if (cs.bias) expect_near_all(db, conv.bias().grad.data(), "bias gradient", cs);
  }
}

// oneDNN's forward, input and weight/bias gradients on 1, 2 and 3 compute threads, bit for bit:
// the batch's chunks are fixed and their gradients added in chunk order whatever the thread
// count (batches of 40, 64 and 300: three, four and sixteen chunks). The im2col path does not have this
// property (OpenBLAS's SGEMM splits sums differently per thread count: last-bit differences), so
// the test does not apply there and says so.
TEST(Conv2dBackends, OneDnnSameBitsOnOneAndTwoThreads) {
  const char* choice = std::getenv("SLURMLAB_CONV");
  if (!SLURMLAB_ONEDNN_BUILT || (choice && std::string(choice) == "im2col")) {
    GTEST_SKIP() << "im2col path: OpenBLAS SGEMM is not bit-identical across thread counts";
  }
  const std::vector<Case> cases{{40, 3, 32, 32, 16, 5, 1, 2, true}, {4, 3, 63, 63, 16, 11, 4, 2, true},
                                {64, 16, 16, 16, 32, 3, 1, 1, true},
                                // 300 images: 16 chunks of 19 (the last of 15), as large batches are cut
                                {300, 2, 6, 6, 4, 3, 1, 1, true}};
  for (const Case& cs : cases) {
    std::vector<std::vector<float>> runs[4];
    for (int threads : {1, 2, 3}) {
      openblas_set_num_threads(threads);
      Generator generator(7);
      Conv2d conv(cs.c, cs.o, cs.k, generator, cs.stride, cs.pad, cs.bias);
      Tensor x({cs.n, cs.c, cs.h, cs.w});
      generator.fill_uniform(x.span(), -1.0f, 1.0f);
      Forward forward = conv.forward(x, Mode::train);
      Tensor gy(forward.output.shape());
      generator.fill_uniform(gy.span(), -1.0f, 1.0f);
      Tensor dx = conv.backward(*forward.context, gy);
      runs[0].push_back(forward.output.to_vector());
      runs[1].push_back(dx.to_vector());
      runs[2].push_back(conv.weight().grad.to_vector());
      runs[3].push_back(conv.bias().grad.to_vector());
    }
    openblas_set_num_threads(1);
    const char* names[] = {"forward", "input gradient", "weight gradient", "bias gradient"};
    for (int r = 0; r < 4; ++r) {
      EXPECT_EQ(runs[r][0], runs[r][1]) << names[r] << " n=" << cs.n << " c=" << cs.c << ", 1 vs 2 threads";
      EXPECT_EQ(runs[r][0], runs[r][2]) << names[r] << " n=" << cs.n << " c=" << cs.c << ", 1 vs 3 threads";
    }
  }
}

// oneDNN's reorder buffers are per thread and shared by every layer (a chunk's primitives run on
// one thread from its first reorder to its last): two convolutions of different shapes run
// interleaved (forward A, forward B with larger buffers, backward A, backward B, on 2 threads,
// as a network's step runs them) give the same bits as each run alone.
TEST(Conv2dBackends, InterleavedLayersGiveTheSameBitsAsEachAlone) {
  struct Run {
    std::vector<float> y, dx, dw;
  };
  const Case a{40, 3, 12, 12, 8, 3, 1, 1, true}, b{40, 8, 24, 24, 32, 5, 1, 2, false};
  auto make = [](const Case& cs, std::uint64_t seed, Tensor& x, Tensor& gy) {
    Generator generator(seed);
    auto conv = std::make_unique<Conv2d>(cs.c, cs.o, cs.k, generator, cs.stride, cs.pad, cs.bias);
    x = Tensor({cs.n, cs.c, cs.h, cs.w});
    generator.fill_uniform(x.span(), -1.0f, 1.0f);
    const int oh = (cs.h + 2 * cs.pad - cs.k) / cs.stride + 1, ow = (cs.w + 2 * cs.pad - cs.k) / cs.stride + 1;
    gy = Tensor({cs.n, cs.o, oh, ow});
    generator.fill_uniform(gy.span(), -1.0f, 1.0f);
    return conv;
  };
  openblas_set_num_threads(2);
  Run alone[2], interleaved[2];
  for (int i = 0; i < 2; ++i) {
    Tensor x, gy;
    auto conv = make(i == 0 ? a : b, 11 + i, x, gy);
    Forward f = conv->forward(x, Mode::train);
    alone[i] = {f.output.to_vector(), conv->backward(*f.context, gy).to_vector(), conv->weight().grad.to_vector()};
  }
  Tensor xa, gya, xb, gyb;
  auto conv_a = make(a, 11, xa, gya);
  auto conv_b = make(b, 12, xb, gyb);
  Forward fa = conv_a->forward(xa, Mode::train);
  Forward fb = conv_b->forward(xb, Mode::train);
  interleaved[0].dx = conv_a->backward(*fa.context, gya).to_vector();
  interleaved[1].dx = conv_b->backward(*fb.context, gyb).to_vector();
  interleaved[0].y = fa.output.to_vector();
  interleaved[1].y = fb.output.to_vector();
  interleaved[0].dw = conv_a->weight().grad.to_vector();
  interleaved[1].dw = conv_b->weight().grad.to_vector();
  openblas_set_num_threads(1);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(alone[i].y, interleaved[i].y) << "forward of conv " << i;
    EXPECT_EQ(alone[i].dx, interleaved[i].dx) << "input gradient of conv " << i;
    EXPECT_EQ(alone[i].dw, interleaved[i].dw) << "weight gradient of conv " << i;
  }
}

}  // namespace
}  // namespace slurmlab::nn
