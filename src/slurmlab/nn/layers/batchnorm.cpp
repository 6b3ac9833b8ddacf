// BatchNorm1d/2d, CPU backend (the CUDA one, on cuDNN, is batchnorm_cuda.cpp). Statistics are
// accumulated in double: a channel of a large batch sums many floats, and the variance is a
// difference of close numbers.
#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/layers/split_work.hpp"

namespace slurmlab::nn {

namespace {
struct BatchNormContext final : Context {
  Mode mode = Mode::train;
  Shape shape;
  Tensor normalized;              // x_hat
  std::vector<float> inv_std;     // per channel
};

// Views [N, C, S...] as N blocks of C planes of S elements.
struct Layout {
  std::int64_t n, c, s;
};
}  // namespace

BatchNorm::BatchNorm(std::int64_t features, int spatial_dims, float eps, float momentum)
    : features_(features), spatial_dims_(spatial_dims), eps_(eps), momentum_(momentum), weight_({features}),
      bias_({features}), running_mean_(Tensor::zeros({features})), running_var_(Tensor::filled({features}, 1.0f)),
      batches_tracked_(Tensor::zeros({1})) {
  if (features <= 0) throw std::invalid_argument("BatchNorm: feature count must be positive");
  weight_.value.fill(1.0f);
}

std::unique_ptr<Layer> batch_norm1d(std::int64_t features) { return std::make_unique<BatchNorm>(features, 1); }
std::unique_ptr<Layer> batch_norm2d(std::int64_t features) { return std::make_unique<BatchNorm>(features, 2); }

std::string BatchNorm::describe() const {
  return std::string(spatial_dims_ == 2 ? "BatchNorm2d(" : "BatchNorm1d(") + std::to_string(features_) + ")";
}

void BatchNorm::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  visit(join_name(prefix, "weight"), weight_);
  visit(join_name(prefix, "bias"), bias_);
}

void BatchNorm::visit_buffers(const std::string& prefix, const BufferVisitor& visit) {
  visit(join_name(prefix, "running_mean"), running_mean_);
  visit(join_name(prefix, "running_var"), running_var_);
  visit(join_name(prefix, "num_batches_tracked"), batches_tracked_);
}

// BatchNorm2d: [N, C, H, W]; BatchNorm1d: [N, C] or [N, C, L].
InputSpec BatchNorm::expected_input() const {
  if (spatial_dims_ == 2) return {.min_rank = 4, .max_rank = 4, .axis1 = features_};
  return {.min_rank = 2, .max_rank = 3, .axis1 = features_};
}

namespace {

// Sums of one plane of s floats (and of their products with a second plane), in eight float
// lanes that the compiler keeps in one vector register, returned in double: the lanes hold at
// most s/8 terms each (a 28x28 plane: 98), and planes are added in double by the caller. A
// single double accumulator instead makes every add wait for the previous one: at 3.2M
// values per channel pass, that latency chain was the tutorial CNN's first BatchNorm's 8 ms.
constexpr int kLanes = 8;

double plane_sum(const float* p, std::int64_t s) {
  float lanes[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= s; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += p[i + j];
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  for (; i < s; ++i) total += p[i];
  return total;
}

double plane_squared_deviation(const float* p, std::int64_t s, float mean) {
  float lanes[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= s; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float d = p[i + j] - mean;
      lanes[j] += d * d;
    }
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  for (; i < s; ++i) total += static_cast<double>(p[i] - mean) * (p[i] - mean);
  return total;
}

void plane_sums(const float* g, const float* xh, std::int64_t s, double& sum_g, double& sum_gx) {
  float lanes_g[kLanes] = {}, lanes_gx[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= s; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      lanes_g[j] += g[i + j];
      lanes_gx[j] += g[i + j] * xh[i + j];
    }
  for (int j = 0; j < kLanes; ++j) {
    sum_g += lanes_g[j];
    sum_gx += lanes_gx[j];
  }
  for (; i < s; ++i) {
    sum_g += g[i];
    sum_gx += static_cast<double>(g[i]) * xh[i];
  }
}

// Channels are independent: large inputs split them over the compute threads.
void for_channels(const Layout& l, const std::function<void(std::int64_t)>& body) {
  detail::for_each_item(l.c, l.n * l.c * l.s, body);
}

}  // namespace

Forward BatchNorm::forward_impl(const Tensor& input, Mode mode) {
  Layout l{input.size(0), features_, input.numel() / (input.size(0) * features_)};
  const std::int64_t count = l.n * l.s;
  if (mode == Mode::train && count < 2) {
    throw std::invalid_argument(describe() + ": training needs more than one value per channel (batch size 1?)");
  }
  if (input.device() == Device::cuda) return cuda::batch_norm_forward(*this, eps_, momentum_, input, mode);
  auto context = std::make_unique<BatchNormContext>();
  context->mode = mode;
  context->shape = input.shape();
  context->normalized = Tensor(input.shape());
  context->inv_std.resize(static_cast<std::size_t>(l.c));
  Tensor output(input.shape());
  const float* x = input.data();
  float* xh = context->normalized.data();
  float* y = output.data();
  const float* gamma = weight_.value.data();
  const float* beta = bias_.value.data();
  float* rm = running_mean_.data();
  float* rv = running_var_.data();
  for_channels(l, [&](std::int64_t ch) {
    double mean, var;
    if (mode == Mode::train) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < l.n; ++b) sum += plane_sum(x + (b * l.c + ch) * l.s, l.s);
      mean = sum / static_cast<double>(count);
      double squares = 0.0;
      for (std::int64_t b = 0; b < l.n; ++b) {
        squares += plane_squared_deviation(x + (b * l.c + ch) * l.s, l.s, static_cast<float>(mean));
      }
      var = squares / static_cast<double>(count);
      const double unbiased = squares / static_cast<double>(count - 1);
      rm[ch] = static_cast<float>((1.0 - momentum_) * rm[ch] + momentum_ * mean);
      rv[ch] = static_cast<float>((1.0 - momentum_) * rv[ch] + momentum_ * unbiased);
    } else {
      mean = rm[ch];
      var = rv[ch];
    }
    const float inv_std = static_cast<float>(1.0 / std::sqrt(var + eps_));
    const float m = static_cast<float>(mean);
    context->inv_std[static_cast<std::size_t>(ch)] = inv_std;
    const float scale = gamma[ch], shift = beta[ch];
    for (std::int64_t b = 0; b < l.n; ++b) {
      const auto k0 = (b * l.c + ch) * l.s;
      for (std::int64_t i = k0; i < k0 + l.s; ++i) {
        xh[i] = (x[i] - m) * inv_std;
        y[i] = scale * xh[i] + shift;
      }
    }
  });
  if (mode == Mode::train) batches_tracked_.data()[0] += 1.0f;
  return {output, std::move(context)};
}

Tensor BatchNorm::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::batch_norm_backward(*this, context, grad_output);
  const auto& saved = dynamic_cast<const BatchNormContext&>(context);
  if (grad_output.shape() != saved.shape) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Layout l{saved.shape[0], features_, element_count(saved.shape) / (saved.shape[0] * features_)};
  const double count = static_cast<double>(l.n * l.s);
  Tensor grad_input(saved.shape);
  const float* g = grad_output.data();
  const float* xh = saved.normalized.data();
  float* dx = grad_input.data();
  const float* gamma = weight_.value.data();
  float* dgamma = weight_.grad.data();
  float* dbeta = bias_.grad.data();
  for_channels(l, [&](std::int64_t ch) {
    double sum_g = 0.0, sum_gx = 0.0;
    for (std::int64_t b = 0; b < l.n; ++b) {
      const auto k0 = (b * l.c + ch) * l.s;
      plane_sums(g + k0, xh + k0, l.s, sum_g, sum_gx);
    }
    dbeta[ch] += static_cast<float>(sum_g);
    dgamma[ch] += static_cast<float>(sum_gx);
    const float scale = gamma[ch] * saved.inv_std[static_cast<std::size_t>(ch)];
    if (saved.mode == Mode::eval) {
      for (std::int64_t b = 0; b < l.n; ++b)
        for (std::int64_t i = 0; i < l.s; ++i) {
          const auto k = (b * l.c + ch) * l.s + i;
          dx[k] = g[k] * scale;
        }
    } else {
      // dx = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
      const float mean_g = static_cast<float>(sum_g / count);
      const float mean_gx = static_cast<float>(sum_gx / count);
      for (std::int64_t b = 0; b < l.n; ++b)
        for (std::int64_t i = 0; i < l.s; ++i) {
          const auto k = (b * l.c + ch) * l.s + i;
          dx[k] = scale * (g[k] - mean_g - xh[k] * mean_gx);
        }
    }
  });
  return grad_input;
}

}  // namespace slurmlab::nn
