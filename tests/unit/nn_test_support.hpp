#pragma once
// Shared pieces of the nn tests: the backend list the typed tests run over, random tensors,
// and a finite-difference gradient checker in the manner of Caffe's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn::testing {

template <Device D>
struct Backend {
  static constexpr Device device = D;
};
// With SLURMLAB_HAVE_CUDA every typed test also runs on the CUDA backend; its fixtures skip
// with the runtime's reason when no GPU answers (skip_without_device).
#if defined(SLURMLAB_HAVE_CUDA)
using Backends = ::testing::Types<Backend<Device::cpu>, Backend<Device::cuda>>;
#else
using Backends = ::testing::Types<Backend<Device::cpu>>;
#endif

// For a fixture's SetUp: GTEST_SKIP() with the reason when `device` cannot run here.
#define SLURMLAB_SKIP_WITHOUT_DEVICE(device)                                            \
  do {                                                                                  \
    std::string slurmlab_reason_;                                                       \
    if ((device) == ::slurmlab::nn::Device::cuda && !::slurmlab::nn::cuda_usable(&slurmlab_reason_)) \
      GTEST_SKIP() << "CUDA backend not testable here: " << slurmlab_reason_;           \
  } while (0)

inline Tensor random_tensor(Shape shape, Generator& generator, float low = -1.0f, float high = 1.0f) {
  Tensor t(std::move(shape));
  for (auto& v : t.span()) v = generator.uniform(low, high);
  return t;
}

// Values well apart (spacing `gap`) in random order: max-pool windows have one clear winner
// and no finite-difference step crosses a tie (the kink Caffe's checker avoids).
inline Tensor distinct_tensor(Shape shape, Generator& generator, float gap = 0.02f) {
  Tensor t(std::move(shape));
  auto values = t.span();
  const auto n = values.size();
  for (std::size_t i = 0; i < n; ++i) values[i] = (static_cast<float>(i) - static_cast<float>(n) / 2) * gap;
  for (std::size_t i = n; i > 1; --i) std::swap(values[i - 1], values[generator.below(i)]);
  return t;
}

// Pushes every value at least `margin` away from zero (the ReLU kink).
inline void avoid_zero(Tensor& t, float margin) {
  for (auto& v : t.span())
    if (std::abs(v) < margin) v = v < 0 ? v - margin : v + margin;
}

inline double weighted_sum(const Tensor& output, const Tensor& weights) {
  double sum = 0.0;
  const auto y = output.span();
  const auto w = weights.span();
  for (std::size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * w[i];
  return sum;
}

struct GradientCheckOptions {
  float step = 1e-2f;           // central-difference step
  double tolerance = 2e-3;      // on |numeric - analytic| / max(1, |numeric|, |analytic|)
  std::size_t max_checks = 300; // per tensor, spread evenly
  Mode mode = Mode::train;
  // Where forward and backward run. The parameters live on the host between evaluations (the
  // finite differences perturb them there) and move to `device` for each forward.
  Device device = Device::cpu;
};

// Checks d(sum(w * layer(x)))/dx and /dtheta for every parameter against central
// differences of the float forward (loss summed in double). The projection w makes every
// output element matter with a different weight.
inline void check_gradients(Layer& layer, Tensor input, Generator& generator,
                            const GradientCheckOptions& options = {}) {
  const Device device = options.device;
  to_device(layer, device);
  auto first = layer.forward(input.to(device), options.mode);
  Tensor projection = random_tensor(first.output.shape(), generator);
  zero_grad(layer);
  Tensor analytic_input = layer.backward(*first.context, projection.to(device)).to(Device::cpu);
  first.context.reset();
  to_device(layer, Device::cpu);
  ASSERT_EQ(analytic_input.shape(), input.shape());

  auto loss = [&] {
    to_device(layer, device);
    Tensor output = layer.forward(input.to(device), options.mode).output.to(Device::cpu);
    to_device(layer, Device::cpu);
    return weighted_sum(output, projection);
  };
  auto check_tensor = [&](Tensor& values, const Tensor& analytic, const std::string& what) {
    const auto n = static_cast<std::size_t>(values.numel());
    const std::size_t stride = std::max<std::size_t>(1, n / options.max_checks);
    int failures = 0;
    for (std::size_t i = 0; i < n && failures < 5; i += stride) {
      // values.data() afresh after each loss(): moving a parameter to a GPU and back gives it
      // new storage, and a reference taken before would write into the old one.
      const float saved = values.data()[i];
      values.data()[i] = saved + options.step;
      const double up = loss();
      values.data()[i] = saved - options.step;
      const double down = loss();
      values.data()[i] = saved;
      const double numeric = (up - down) / (2.0 * static_cast<double>(options.step));
      const double exact = analytic.data()[i];
      const double scale = std::max({1.0, std::abs(numeric), std::abs(exact)});
      if (std::abs(numeric - exact) / scale > options.tolerance) {
        ADD_FAILURE() << layer.describe() << ": d/d " << what << "[" << i << "] analytic " << exact << " numeric "
                      << numeric;
        ++failures;
      }
    }
  };
  check_tensor(input, analytic_input, "input");
  for (auto& [name, parameter] : parameters_of(layer)) {
    Tensor analytic = parameter->grad.clone();
    check_tensor(parameter->value, analytic, name);
  }
}

inline void expect_close(const Tensor& actual, const Tensor& expected, double tolerance, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  const auto a = actual.span(), e = expected.span();
  int failures = 0;
  for (std::size_t i = 0; i < a.size() && failures < 5; ++i) {
    const double scale = std::max(1.0, std::abs(static_cast<double>(e[i])));
    if (!(std::abs(static_cast<double>(a[i]) - e[i]) <= tolerance * scale)) {
      ADD_FAILURE() << what << "[" << i << "]: " << a[i] << " vs expected " << e[i];
      ++failures;
    }
  }
}

}  // namespace slurmlab::nn::testing
