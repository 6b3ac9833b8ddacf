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
// The input and its per-channel statistics: backward recomputes x_hat = (x - mean) * inv_std
// with forward's operations (the same bits) instead of forward writing it out (one write pass
// less; keeping the input instead of x_hat holds as much memory).
struct BatchNormContext final : Context {
  Mode mode = Mode::train;
  Shape shape;
  Tensor input;
  std::vector<float> mean, inv_std;  // per channel
  bool relu = false;                 // forward_through: the output is max(0, .)
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

// One channel's normalisation, as forward computes it and backward recomputes it.
struct ChannelAffine {
  float mean, inv_std, scale, shift;
  float normalized(float x) const { return (x - mean) * inv_std; }
  float output(float xh) const { return scale * xh + shift; }
};

// The gradient at the BatchNorm's output: g, or with Relu g where the output was positive
// (the ReLU's derivative, tested on the pre-ReLU value as the ReLU tests its output).
template <bool Relu>
inline float output_gradient(float g, float xh, const ChannelAffine& a) {
  if constexpr (Relu) return a.output(xh) > 0.0f ? g : 0.0f;
  return g;
}

template <bool Relu>
void plane_sums(const float* g, const float* x, std::int64_t s, const ChannelAffine& a, double& sum_g,
                double& sum_gx) {
  float lanes_g[kLanes] = {}, lanes_gx[kLanes] = {};
  std::int64_t i = 0;
  for (; i + kLanes <= s; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float xh = a.normalized(x[i + j]);
      const float gj = output_gradient<Relu>(g[i + j], xh, a);
      lanes_g[j] += gj;
      lanes_gx[j] += gj * xh;
    }
  for (int j = 0; j < kLanes; ++j) {
    sum_g += lanes_g[j];
    sum_gx += lanes_gx[j];
  }
  for (; i < s; ++i) {
    const float xh = a.normalized(x[i]);
    const float gi = output_gradient<Relu>(g[i], xh, a);
    sum_g += gi;
    sum_gx += static_cast<double>(gi) * xh;
  }
}

// dx over one plane: train mode dx = gamma inv_std (g - mean(g) - x_hat mean(g x_hat)); eval
// mode (fixed statistics) dx = gamma inv_std g.
template <bool Relu>
void plane_input_gradient(const float* g, const float* x, std::int64_t s, const ChannelAffine& a, bool train,
                          float mean_g, float mean_gx, float* dx) {
  const float scale = a.scale * a.inv_std;
  if (!train) {
    for (std::int64_t i = 0; i < s; ++i) dx[i] = output_gradient<Relu>(g[i], a.normalized(x[i]), a) * scale;
    return;
  }
  for (std::int64_t i = 0; i < s; ++i) {
    const float xh = a.normalized(x[i]);
    dx[i] = scale * (output_gradient<Relu>(g[i], xh, a) - mean_g - xh * mean_gx);
  }
}

// Channels are independent: large inputs split them over the compute threads.
void for_channels(const Layout& l, const std::function<void(std::int64_t)>& body) {
  detail::for_each_item(l.c, l.n * l.c * l.s, body);
}

}  // namespace

bool BatchNorm::folds_activation(Activation kind) const {
  return kind == Activation::relu && weight_.value.device() == Device::cpu;
}

Forward BatchNorm::forward_impl(const Tensor& input, Mode mode) {
  Layout l{input.size(0), features_, input.numel() / (input.size(0) * features_)};
  if (mode == Mode::train && l.n * l.s < 2) {
    throw std::invalid_argument(describe() + ": training needs more than one value per channel (batch size 1?)");
  }
  if (input.device() == Device::cuda) return cuda::batch_norm_forward(*this, eps_, momentum_, input, mode);
  return forward_cpu(input, mode, false);
}

Forward BatchNorm::forward_through(const Tensor& input, Mode mode, Activation kind) {
  if (!folds_activation(kind)) {
    throw std::logic_error(describe() + ": forward_through runs only where folds_activation(" + to_string(kind) +
                           ") holds");
  }
  check_input(input);
  if (input.device() != Device::cpu) throw std::invalid_argument(describe() + ": input on the GPU, weights on the CPU");
  if (mode == Mode::train && input.numel() / features_ < 2) {
    throw std::invalid_argument(describe() + ": training needs more than one value per channel (batch size 1?)");
  }
  return forward_cpu(input, mode, true);
}

Forward BatchNorm::forward_cpu(const Tensor& input, Mode mode, bool relu) {
  Layout l{input.size(0), features_, input.numel() / (input.size(0) * features_)};
  const std::int64_t count = l.n * l.s;
  auto context = std::make_unique<BatchNormContext>();
  context->mode = mode;
  context->shape = input.shape();
  context->input = input;
  context->relu = relu;
  context->mean.resize(static_cast<std::size_t>(l.c));
  context->inv_std.resize(static_cast<std::size_t>(l.c));
  Tensor output(input.shape());
  const float* x = input.data();
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
    const ChannelAffine a{static_cast<float>(mean), static_cast<float>(1.0 / std::sqrt(var + eps_)), gamma[ch],
                          beta[ch]};
    context->mean[static_cast<std::size_t>(ch)] = a.mean;
    context->inv_std[static_cast<std::size_t>(ch)] = a.inv_std;
    for (std::int64_t b = 0; b < l.n; ++b) {
      const auto k0 = (b * l.c + ch) * l.s;
      if (relu) {
        for (std::int64_t i = k0; i < k0 + l.s; ++i) {
          const float v = a.output(a.normalized(x[i]));
          y[i] = v > 0.0f ? v : 0.0f;
        }
      } else {
        for (std::int64_t i = k0; i < k0 + l.s; ++i) y[i] = a.output(a.normalized(x[i]));
      }
    }
  });
  if (mode == Mode::train) batches_tracked_.data()[0] += 1.0f;
  return {output, std::move(context)};
}

Tensor BatchNorm::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::batch_norm_backward(*this, context, grad_output);
  return backward_cpu(context, grad_output, false);
}

Tensor BatchNorm::backward_through(const Context& context, const Tensor& grad_output, Activation kind) {
  if (!folds_activation(kind)) {
    throw std::logic_error(describe() + ": backward_through runs only where folds_activation(" + to_string(kind) +
                           ") holds");
  }
  if (!grad_output.defined() || grad_output.device() != Device::cpu) {
    throw std::invalid_argument(describe() + ": gradient tensor is undefined or not on the CPU");
  }
  return backward_cpu(context, grad_output, true);
}

Tensor BatchNorm::backward_cpu(const Context& context, const Tensor& grad_output, bool relu) {
  const auto& saved = dynamic_cast<const BatchNormContext&>(context);
  if (saved.relu != relu) {
    throw std::logic_error(describe() + (relu ? ": backward_through needs a context from forward_through"
                                              : ": a context from forward_through needs backward_through"));
  }
  if (grad_output.shape() != saved.shape) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Layout l{saved.shape[0], features_, element_count(saved.shape) / (saved.shape[0] * features_)};
  const double count = static_cast<double>(l.n * l.s);
  Tensor grad_input(saved.shape);
  const float* g = grad_output.data();
  const float* x = saved.input.data();
  float* dx = grad_input.data();
  const float* gamma = weight_.value.data();
  const float* beta = bias_.value.data();
  float* dgamma = weight_.grad.data();
  float* dbeta = bias_.grad.data();
  const bool train = saved.mode == Mode::train;
  for_channels(l, [&](std::int64_t ch) {
    const auto c = static_cast<std::size_t>(ch);
    const ChannelAffine a{saved.mean[c], saved.inv_std[c], gamma[ch], beta[ch]};
    double sum_g = 0.0, sum_gx = 0.0;
    for (std::int64_t b = 0; b < l.n; ++b) {
      const auto k0 = (b * l.c + ch) * l.s;
      if (relu) {
        plane_sums<true>(g + k0, x + k0, l.s, a, sum_g, sum_gx);
      } else {
        plane_sums<false>(g + k0, x + k0, l.s, a, sum_g, sum_gx);
      }
    }
    dbeta[ch] += static_cast<float>(sum_g);
    dgamma[ch] += static_cast<float>(sum_gx);
    const float mean_g = static_cast<float>(sum_g / count), mean_gx = static_cast<float>(sum_gx / count);
    for (std::int64_t b = 0; b < l.n; ++b) {
      const auto k0 = (b * l.c + ch) * l.s;
      if (relu) {
        plane_input_gradient<true>(g + k0, x + k0, l.s, a, train, mean_g, mean_gx, dx + k0);
      } else {
        plane_input_gradient<false>(g + k0, x + k0, l.s, a, train, mean_g, mean_gx, dx + k0);
      }
    }
  });
  return grad_input;
}

}  // namespace slurmlab::nn
