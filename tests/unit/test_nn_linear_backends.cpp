// Linear's large products on the CPU (oneDNN's sgemm when built with it, OpenBLAS otherwise or
// under SLURMLAB_LINEAR=openblas; ctest runs this binary both ways) against sums in double:
// forward, input gradient, weight and bias gradients, for shapes above the size from which
// oneDNN takes over (2^24 multiply-adds), with and without bias, with column counts that leave
// tails when split over threads. Tolerance: 1e-4 relative to the largest magnitude of each result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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
  int n, in, out;
  bool bias;
};

void expect_near_all(const std::vector<double>& truth, const float* got, const char* what, const Case& cs) {
  EXPECT_LE(testing::relative_max_error(truth, got), 1e-4) << what << " n=" << cs.n << " in=" << cs.in << " out=" << cs.out;
}

// 40 x 1024 x 520 and 97 x 700 x 333 are above 2^24 multiply-adds (oneDNN's share); 8 x 64 x 48
// is below (OpenBLAS either way).
const std::vector<Case> kCases{{40, 1024, 520, true}, {97, 700, 333, false}, {8, 64, 48, true}};

TEST(LinearBackends, MatchSumsInDouble) {
  Generator generator(21);
  for (const Case& cs : kCases) {
    Linear linear(cs.in, cs.out, generator, cs.bias);
    Tensor x({cs.n, cs.in}), gy({cs.n, cs.out});
    generator.fill_uniform(x.span(), -1.0f, 1.0f);
    generator.fill_uniform(gy.span(), -1.0f, 1.0f);
    const float* xv = x.data();
    const float* wv = linear.weight().value.data();
    const float* gv = gy.data();
    std::vector<double> y(static_cast<std::size_t>(cs.n * cs.out)), dx(static_cast<std::size_t>(cs.n * cs.in)),
        dw(static_cast<std::size_t>(cs.out * cs.in)), db(static_cast<std::size_t>(cs.out));
    for (int r = 0; r < cs.n; ++r)
      for (int o = 0; o < cs.out; ++o) {
        double sum = cs.bias ? linear.bias().value.data()[o] : 0.0;
        const double g = gv[r * cs.out + o];
        db[static_cast<std::size_t>(o)] += g;
        for (int i = 0; i < cs.in; ++i) {
          const double w = wv[o * cs.in + i];
          sum += w * xv[r * cs.in + i];
          dx[static_cast<std::size_t>(r * cs.in + i)] += w * g;
          dw[static_cast<std::size_t>(o * cs.in + i)] += g * xv[r * cs.in + i];
        }
        y[static_cast<std::size_t>(r * cs.out + o)] = sum;
      }
    Forward forward = linear.forward(x, Mode::train);
    expect_near_all(y, forward.output.data(), "forward", cs);
    Tensor grad_input = linear.backward(*forward.context, gy);
    expect_near_all(dx, grad_input.data(), "input gradient", cs);
    expect_near_all(dw, linear.weight().grad.data(), "weight gradient", cs);
    if (cs.bias) expect_near_all(db, linear.bias().grad.data(), "bias gradient", cs);
  }
}

// oneDNN's forward and input gradient on 1, 2 and 3 compute threads, bit for bit (each part of
// the columns runs the same kernel). OpenBLAS's SGEMM, which also takes the weight gradient,
// splits its sums differently per thread count, so those are not compared.
TEST(LinearBackends, OneDnnSameBitsOnOneTwoAndThreeThreads) {
  const char* choice = std::getenv("SLURMLAB_LINEAR");
  if (!SLURMLAB_ONEDNN_BUILT || (choice && std::string(choice) == "openblas")) {
    GTEST_SKIP() << "OpenBLAS path: its SGEMM is not bit-identical across thread counts";
  }
  for (const Case& cs : kCases) {
    std::vector<std::vector<float>> outputs, input_grads;
    for (int threads : {1, 2, 3}) {
      openblas_set_num_threads(threads);
      Generator generator(9);
      Linear linear(cs.in, cs.out, generator, cs.bias);
      Tensor x({cs.n, cs.in});
      generator.fill_uniform(x.span(), -1.0f, 1.0f);
      Forward forward = linear.forward(x, Mode::train);
      Tensor gy(forward.output.shape());
      generator.fill_uniform(gy.span(), -1.0f, 1.0f);
      outputs.push_back(forward.output.to_vector());
      input_grads.push_back(linear.backward(*forward.context, gy).to_vector());
    }
    openblas_set_num_threads(1);
    for (int t : {1, 2}) {
      EXPECT_EQ(outputs[0], outputs[static_cast<std::size_t>(t)]) << "forward, n=" << cs.n << ", 1 vs " << t + 1 << " threads";
      EXPECT_EQ(input_grads[0], input_grads[static_cast<std::size_t>(t)])
          << "input gradient, n=" << cs.n << ", 1 vs " << t + 1 << " threads";
    }
  }
}

}  // namespace
}  // namespace slurmlab::nn
