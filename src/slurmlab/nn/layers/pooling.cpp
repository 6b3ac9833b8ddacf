// Pooling layers, CPU backend; the CUDA one is pooling_cuda.cpp.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn {

namespace {
struct MaxPoolContext final : Context {
  Shape input_shape;
  std::vector<std::int64_t> argmax;  // flat input index per output element (-1: window all padding)
};
struct PoolShape final : Context {
  Shape input_shape;
};
}  // namespace

MaxPool2d::MaxPool2d(std::int64_t kernel_size, std::int64_t stride, std::int64_t padding)
    : kernel_(kernel_size), stride_(stride == 0 ? kernel_size : stride), padding_(padding) {
  if (kernel_ <= 0 || stride_ <= 0 || padding_ < 0 || padding_ * 2 > kernel_) {
    throw std::invalid_argument("MaxPool2d: kernel and stride must be positive and padding at most half the kernel");
  }
}

std::string MaxPool2d::describe() const {
  return "MaxPool2d(kernel_size=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
         ", padding=" + std::to_string(padding_) + ")";
}

InputSpec MaxPool2d::expected_input() const { return {.min_rank = 4, .max_rank = 4}; }

Forward MaxPool2d::forward_impl(const Tensor& input, Mode) {
  const auto n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  // Checked before the backend dispatch, so every backend gives the same usage error (and
  // the output size below never comes from a truncated negative division).
  if (h + 2 * padding_ < kernel_ || w + 2 * padding_ < kernel_) {
    throw std::invalid_argument(describe() + ": input " + to_string(input.shape()) + " too small");
  }
  const auto oh = (h + 2 * padding_ - kernel_) / stride_ + 1;
  const auto ow = (w + 2 * padding_ - kernel_) / stride_ + 1;
  if (input.device() == Device::cuda) return cuda::pool_forward(cuda::PoolKind::max, kernel_, stride_, padding_, input);
  Tensor output({n, c, oh, ow});
  auto context = std::make_unique<MaxPoolContext>();
  context->input_shape = input.shape();
  context->argmax.resize(static_cast<std::size_t>(output.numel()));
  const float* x = input.data();
  float* y = output.data();
  std::size_t out_index = 0;
  if (padding_ == 0) {
    // Every window lies inside the image: no clamping (the common case, worth its own loop).
    for (std::int64_t plane = 0; plane < n * c; ++plane) {
      const float* xp = x + plane * h * w;
      for (std::int64_t oy = 0; oy < oh; ++oy) {
        for (std::int64_t ox = 0; ox < ow; ++ox, ++out_index) {
          const std::int64_t corner = oy * stride_ * w + ox * stride_;
          float best = xp[corner];
          std::int64_t best_offset = corner;
          for (std::int64_t ky = 0; ky < kernel_; ++ky)
            for (std::int64_t kx = 0; kx < kernel_; ++kx) {
              const std::int64_t offset = corner + ky * w + kx;
              if (xp[offset] > best) {
                best = xp[offset];
                best_offset = offset;
              }
            }
          y[out_index] = best;
          context->argmax[out_index] = plane * h * w + best_offset;
        }
      }
    }
    return {output, std::move(context)};
  }
  for (std::int64_t plane = 0; plane < n * c; ++plane) {
    const float* xp = x + plane * h * w;
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      for (std::int64_t ox = 0; ox < ow; ++ox, ++out_index) {
        float best = -std::numeric_limits<float>::infinity();
        std::int64_t best_index = -1;
        const auto y0 = oy * stride_ - padding_, x0 = ox * stride_ - padding_;
        for (auto iy = std::max<std::int64_t>(y0, 0); iy < std::min(y0 + kernel_, h); ++iy)
          for (auto ix = std::max<std::int64_t>(x0, 0); ix < std::min(x0 + kernel_, w); ++ix) {
            const float v = xp[iy * w + ix];
            if (v > best || best_index < 0) {
              best = v;
              best_index = plane * h * w + iy * w + ix;
            }
          }
        y[out_index] = best;
        context->argmax[out_index] = best_index;
      }
    }
  }
  return {output, std::move(context)};
}

Tensor MaxPool2d::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::pool_backward(context, grad_output);
  const auto& saved = dynamic_cast<const MaxPoolContext&>(context);
  if (static_cast<std::size_t>(grad_output.numel()) != saved.argmax.size()) {
    throw std::invalid_argument(describe() + ": gradient shape mismatch");
  }
  Tensor grad_input = Tensor::zeros(saved.input_shape);
  float* dx = grad_input.data();
  const float* g = grad_output.data();
  for (std::size_t i = 0; i < saved.argmax.size(); ++i)
    if (saved.argmax[i] >= 0) dx[saved.argmax[i]] += g[i];
  return grad_input;
}

AvgPool2d::AvgPool2d(std::int64_t kernel_size, std::int64_t stride)
    : kernel_(kernel_size), stride_(stride == 0 ? kernel_size : stride) {
  if (kernel_ <= 0 || stride_ <= 0) throw std::invalid_argument("AvgPool2d: kernel and stride must be positive");
}

std::string AvgPool2d::describe() const {
  return "AvgPool2d(kernel_size=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) + ")";
}

InputSpec AvgPool2d::expected_input() const { return {.min_rank = 4, .max_rank = 4}; }

Forward AvgPool2d::forward_impl(const Tensor& input, Mode) {
  const auto n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  if (h < kernel_ || w < kernel_) throw std::invalid_argument(describe() + ": input " + to_string(input.shape()) + " too small");
  if (input.device() == Device::cuda) return cuda::pool_forward(cuda::PoolKind::average, kernel_, stride_, 0, input);
  const auto oh = (h - kernel_) / stride_ + 1, ow = (w - kernel_) / stride_ + 1;
  Tensor output({n, c, oh, ow});
  const float scale = 1.0f / static_cast<float>(kernel_ * kernel_);
  const float* x = input.data();
  float* y = output.data();
  for (std::int64_t plane = 0; plane < n * c; ++plane) {
    const float* xp = x + plane * h * w;
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        float sum = 0.0f;
        for (std::int64_t ky = 0; ky < kernel_; ++ky)
          for (std::int64_t kx = 0; kx < kernel_; ++kx) sum += xp[(oy * stride_ + ky) * w + ox * stride_ + kx];
        y[(plane * oh + oy) * ow + ox] = sum * scale;
      }
  }
  auto context = std::make_unique<PoolShape>();
  context->input_shape = input.shape();
  return {output, std::move(context)};
}

Tensor AvgPool2d::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::pool_backward(context, grad_output);
  const auto& shape = dynamic_cast<const PoolShape&>(context).input_shape;
  const auto n = shape[0], c = shape[1], h = shape[2], w = shape[3];
  const auto oh = (h - kernel_) / stride_ + 1, ow = (w - kernel_) / stride_ + 1;
  if (grad_output.shape() != Shape{n, c, oh, ow}) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Tensor grad_input = Tensor::zeros(shape);
  const float scale = 1.0f / static_cast<float>(kernel_ * kernel_);
  const float* g = grad_output.data();
  float* dx = grad_input.data();
  for (std::int64_t plane = 0; plane < n * c; ++plane) {
    float* dp = dx + plane * h * w;
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const float share = g[(plane * oh + oy) * ow + ox] * scale;
        for (std::int64_t ky = 0; ky < kernel_; ++ky)
          for (std::int64_t kx = 0; kx < kernel_; ++kx) dp[(oy * stride_ + ky) * w + ox * stride_ + kx] += share;
      }
  }
  return grad_input;
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::int64_t out_height, std::int64_t out_width)
    : out_h_(out_height), out_w_(out_width) {
  if (out_h_ <= 0 || out_w_ <= 0) throw std::invalid_argument("AdaptiveAvgPool2d: output size must be positive");
}

std::string AdaptiveAvgPool2d::describe() const {
  return "AdaptiveAvgPool2d((" + std::to_string(out_h_) + ", " + std::to_string(out_w_) + "))";
}

namespace {
std::int64_t bin_start(std::int64_t i, std::int64_t in, std::int64_t out) { return (i * in) / out; }
std::int64_t bin_end(std::int64_t i, std::int64_t in, std::int64_t out) { return ((i + 1) * in + out - 1) / out; }
// Every bin's [start, end) along one axis, computed once per call rather than per plane (the
// divisions were most of AlexNet's 1x1 -> 6x6 pooling).
struct Bins {
  std::vector<std::int64_t> start, end;
};
Bins bins(std::int64_t in, std::int64_t out) {
  Bins b;
  for (std::int64_t i = 0; i < out; ++i) {
    b.start.push_back(bin_start(i, in, out));
    b.end.push_back(bin_end(i, in, out));
  }
  return b;
}
}  // namespace

InputSpec AdaptiveAvgPool2d::expected_input() const { return {.min_rank = 4, .max_rank = 4}; }

Forward AdaptiveAvgPool2d::forward_impl(const Tensor& input, Mode) {
  if (input.device() == Device::cuda) return cuda::adaptive_avg_pool_forward(out_h_, out_w_, input);
  const auto n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  Tensor output({n, c, out_h_, out_w_});
  const float* x = input.data();
  float* y = output.data();
  const Bins rows = bins(h, out_h_), cols = bins(w, out_w_);
  for (std::int64_t plane = 0; plane < n * c; ++plane) {
    const float* xp = x + plane * h * w;
    for (std::int64_t oy = 0; oy < out_h_; ++oy) {
      const auto y0 = rows.start[oy], y1 = rows.end[oy];
      for (std::int64_t ox = 0; ox < out_w_; ++ox) {
        const auto x0 = cols.start[ox], x1 = cols.end[ox];
        float sum = 0.0f;
        for (auto iy = y0; iy < y1; ++iy)
          for (auto ix = x0; ix < x1; ++ix) sum += xp[iy * w + ix];
        y[(plane * out_h_ + oy) * out_w_ + ox] = sum / static_cast<float>((y1 - y0) * (x1 - x0));
      }
    }
  }
  auto context = std::make_unique<PoolShape>();
  context->input_shape = input.shape();
  return {output, std::move(context)};
}

Tensor AdaptiveAvgPool2d::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::adaptive_avg_pool_backward(context, grad_output);
  const auto& shape = dynamic_cast<const PoolShape&>(context).input_shape;
  const auto n = shape[0], c = shape[1], h = shape[2], w = shape[3];
  if (grad_output.shape() != Shape{n, c, out_h_, out_w_}) {
    throw std::invalid_argument(describe() + ": gradient shape mismatch");
  }
  Tensor grad_input = Tensor::zeros(shape);
  const float* g = grad_output.data();
  float* dx = grad_input.data();
  const Bins rows = bins(h, out_h_), cols = bins(w, out_w_);
  for (std::int64_t plane = 0; plane < n * c; ++plane) {
    float* dp = dx + plane * h * w;
    for (std::int64_t oy = 0; oy < out_h_; ++oy) {
      const auto y0 = rows.start[oy], y1 = rows.end[oy];
      for (std::int64_t ox = 0; ox < out_w_; ++ox) {
        const auto x0 = cols.start[ox], x1 = cols.end[ox];
        const float share = g[(plane * out_h_ + oy) * out_w_ + ox] / static_cast<float>((y1 - y0) * (x1 - x0));
        for (auto iy = y0; iy < y1; ++iy)
          for (auto ix = x0; ix < x1; ++ix) dp[iy * w + ix] += share;
      }
    }
  }
  return grad_input;
}

}  // namespace slurmlab::nn
