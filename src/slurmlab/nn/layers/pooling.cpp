// Pooling layers, CPU backend; the CUDA one is pooling_cuda.cpp.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/layers/split_work.hpp"
#include "slurmlab/nn/layers/vector_clones.hpp"

namespace slurmlab::nn {

namespace {
// Where each output's maximum came from: its position inside the window (row-major), two bytes
// per output instead of an int64 input index. The block comes from the CPU caching allocator,
// so the step after the first reuses it instead of faulting in fresh pages (at airbench94's
// batch of 1024 an int64 index array was 134 MB per pooling layer, mapped and unmapped by
// malloc every step).
using WindowPosition = std::uint16_t;
constexpr WindowPosition kNoInput = 0xFFFF;  // window entirely in the padding

struct MaxPoolContext final : Context {
  Shape input_shape;
  std::int64_t out_h = 0, out_w = 0;
  std::shared_ptr<Storage> positions;  // one WindowPosition per output element
  const WindowPosition* position() const { return static_cast<const WindowPosition*>(positions->data()); }
};
struct PoolShape final : Context {
  Shape input_shape;
};

// Whether a window's scan moves its maximum to `value`: a larger value, or a NaN (the last NaN
// of a window wins, so a NaN anywhere in the window reaches the output, as in PyTorch's CPU
// kernel and cuDNN's CUDNN_PROPAGATE_NAN; the trainer's NaN check then sees it). Among equal
// values the first in row-major order stays.
inline bool moves_maximum(float value, float best) { return value > best || value != value; }

// One plane's windows when every window lies inside the image (no padding): the common case,
// with fixed loop bounds; the window's first value is the starting point, as in the general
// loop below.
void max_pool_inside(const float* xp, std::int64_t w, std::int64_t k, std::int64_t s, std::int64_t oh,
                     std::int64_t ow, float* yp, WindowPosition* pp) {
  for (std::int64_t oy = 0; oy < oh; ++oy)
    for (std::int64_t ox = 0; ox < ow; ++ox) {
      const float* corner = xp + oy * s * w + ox * s;
      float best = corner[0];
      WindowPosition best_position = 0;
      for (std::int64_t ky = 0; ky < k; ++ky)
        for (std::int64_t kx = 0; kx < k; ++kx)
          if (moves_maximum(corner[ky * w + kx], best)) {
            best = corner[ky * w + kx];
            best_position = static_cast<WindowPosition>(ky * k + kx);
          }
      yp[oy * ow + ox] = best;
      pp[oy * ow + ox] = best_position;
    }
}

// The 2x2 stride-2 case (every CNN here): branch-free selects over a row pair, the same winner
// rule, eight outputs a vector: the even and odd columns of 16 inputs split by shuffles. A row
// whose width is not a multiple of eight ends with a vector that overlaps the one before (its
// outputs computed twice, the same values): the tutorial CNN's 14-wide rows were one vector
// and six scalar iterations, which made this the step's largest kernel (2.2 ms of 26 at 2
// threads). Rows narrower than eight take the scalar loop.
using PoolLanes = float __attribute__((vector_size(32)));
using PoolMask = std::int32_t __attribute__((vector_size(32)));
using PoolPositions = WindowPosition __attribute__((vector_size(16)));
SLURMLAB_VECTOR_CLONES void max_pool_2x2_row(const float* __restrict top, const float* __restrict bottom,
                                             std::int64_t ow, float* __restrict yr, WindowPosition* __restrict pr) {
  const auto window = [&](std::int64_t ox) {
    PoolLanes t0, t1, b0, b1;
    std::memcpy(&t0, top + 2 * ox, sizeof t0);
    std::memcpy(&t1, top + 2 * ox + 8, sizeof t1);
    std::memcpy(&b0, bottom + 2 * ox, sizeof b0);
    std::memcpy(&b1, bottom + 2 * ox + 8, sizeof b1);
    const PoolLanes a = __builtin_shufflevector(t0, t1, 0, 2, 4, 6, 8, 10, 12, 14);
    const PoolLanes b = __builtin_shufflevector(t0, t1, 1, 3, 5, 7, 9, 11, 13, 15);
    const PoolLanes c = __builtin_shufflevector(b0, b1, 0, 2, 4, 6, 8, 10, 12, 14);
    const PoolLanes d = __builtin_shufflevector(b0, b1, 1, 3, 5, 7, 9, 11, 13, 15);
    PoolLanes best = a;
    PoolMask at = {};
    const auto move = [&](const PoolLanes& value, std::int32_t position) {
      const PoolMask moves = (value > best) | (value != value);  // moves_maximum, lane by lane
      at = moves ? position : at;
      best = moves ? value : best;
    };
    move(b, 1);
    move(c, 2);
    move(d, 3);
    const PoolPositions positions = __builtin_convertvector(at, PoolPositions);
    std::memcpy(yr + ox, &best, sizeof best);
    std::memcpy(pr + ox, &positions, sizeof positions);
  };
  if (ow >= 8) {
    std::int64_t ox = 0;
    for (; ox + 8 <= ow; ox += 8) window(ox);
    if (ox < ow) window(ow - 8);
    return;
  }
  for (std::int64_t ox = 0; ox < ow; ++ox) {
    const float a = top[2 * ox], b = top[2 * ox + 1], c = bottom[2 * ox], d = bottom[2 * ox + 1];
    float best = a;
    std::int32_t at = 0;
    const bool to_b = moves_maximum(b, best);
    at = to_b ? 1 : at;
    best = to_b ? b : best;
    const bool to_c = moves_maximum(c, best);
    at = to_c ? 2 : at;
    best = to_c ? c : best;
    const bool to_d = moves_maximum(d, best);
    at = to_d ? 3 : at;
    best = to_d ? d : best;
    yr[ox] = best;
    pr[ox] = static_cast<WindowPosition>(at);
  }
}

// Its backward: 2x2 stride-2 windows do not overlap, so each input of a row pair is written
// once, the output's gradient where the maximum was and zero elsewhere (no zeroing pass and no
// scattered read-modify-write), eight windows a vector as above.
SLURMLAB_VECTOR_CLONES void max_pool_2x2_backward_row(const float* __restrict g, const WindowPosition* __restrict pr,
                                                      std::int64_t ow, float* __restrict top,
                                                      float* __restrict bottom) {
  const auto window = [&](std::int64_t ox) {
    PoolLanes gv;
    PoolPositions positions;
    std::memcpy(&gv, g + ox, sizeof gv);
    std::memcpy(&positions, pr + ox, sizeof positions);
    const PoolMask at = __builtin_convertvector(positions, PoolMask);
    const PoolLanes zero = {};
    const PoolLanes a = at == 0 ? gv : zero, b = at == 1 ? gv : zero;
    const PoolLanes c = at == 2 ? gv : zero, d = at == 3 ? gv : zero;
    const PoolLanes t0 = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
    const PoolLanes t1 = __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
    const PoolLanes b0 = __builtin_shufflevector(c, d, 0, 8, 1, 9, 2, 10, 3, 11);
    const PoolLanes b1 = __builtin_shufflevector(c, d, 4, 12, 5, 13, 6, 14, 7, 15);
    std::memcpy(top + 2 * ox, &t0, sizeof t0);
    std::memcpy(top + 2 * ox + 8, &t1, sizeof t1);
    std::memcpy(bottom + 2 * ox, &b0, sizeof b0);
    std::memcpy(bottom + 2 * ox + 8, &b1, sizeof b1);
  };
  std::int64_t ox = 0;
  if (ow >= 8) {
    for (; ox + 8 <= ow; ox += 8) window(ox);
    if (ox < ow) window(ow - 8);
    return;
  }
  for (; ox < ow; ++ox) {
    const WindowPosition at = pr[ox];
    top[2 * ox] = at == 0 ? g[ox] : 0.0f;
    top[2 * ox + 1] = at == 1 ? g[ox] : 0.0f;
    bottom[2 * ox] = at == 2 ? g[ox] : 0.0f;
    bottom[2 * ox + 1] = at == 3 ? g[ox] : 0.0f;
  }
}

void max_pool_2x2(const float* xp, std::int64_t w, std::int64_t oh, std::int64_t ow, float* yp, WindowPosition* pp) {
  for (std::int64_t oy = 0; oy < oh; ++oy)
    max_pool_2x2_row(xp + 2 * oy * w, xp + (2 * oy + 1) * w, ow, yp + oy * ow, pp + oy * ow);
}
}  // namespace

MaxPool2d::MaxPool2d(std::int64_t kernel_size, std::int64_t stride, std::int64_t padding)
    : kernel_(kernel_size), stride_(stride == 0 ? kernel_size : stride), padding_(padding) {
  if (kernel_ <= 0 || stride_ <= 0 || padding_ < 0 || padding_ * 2 > kernel_) {
    throw std::invalid_argument("MaxPool2d: kernel and stride must be positive and padding at most half the kernel");
  }
  if (kernel_ > 255) throw std::invalid_argument("MaxPool2d: kernel_size at most 255");
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
  context->out_h = oh;
  context->out_w = ow;
  context->positions = CachingAllocator::for_device(Device::cpu)
                           .allocate(static_cast<std::size_t>(output.numel()) * sizeof(WindowPosition));
  const float* x = input.data();
  float* y = output.data();
  auto* position = static_cast<WindowPosition*>(context->positions->data());
  const std::int64_t k = kernel_, s = stride_, pad = padding_;
  detail::for_each_item(n * c, n * c * h * w, [&](std::int64_t plane) {
    const float* xp = x + plane * h * w;
    float* yp = y + plane * oh * ow;
    WindowPosition* pp = position + plane * oh * ow;
    if (k == 2 && s == 2 && pad == 0) {
      max_pool_2x2(xp, w, oh, ow, yp, pp);
      return;
    }
    if (pad == 0) {
      max_pool_inside(xp, w, k, s, oh, ow, yp, pp);
      return;
    }
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      const auto y0 = oy * s - pad;
      const auto ky0 = std::max<std::int64_t>(0, -y0), ky1 = std::min(k, h - y0);
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const auto x0 = ox * s - pad;
        const auto kx0 = std::max<std::int64_t>(0, -x0), kx1 = std::min(k, w - x0);
        if (ky0 >= ky1 || kx0 >= kx1) {  // only padding under this window
          yp[oy * ow + ox] = -std::numeric_limits<float>::infinity();
          pp[oy * ow + ox] = kNoInput;
          continue;
        }
        float best = xp[(y0 + ky0) * w + x0 + kx0];
        auto best_position = static_cast<WindowPosition>(ky0 * k + kx0);
        for (auto ky = ky0; ky < ky1; ++ky) {
          const float* row = xp + (y0 + ky) * w + x0;
          for (auto kx = kx0; kx < kx1; ++kx)
            if (moves_maximum(row[kx], best)) {
              best = row[kx];
              best_position = static_cast<WindowPosition>(ky * k + kx);
            }
        }
        yp[oy * ow + ox] = best;
        pp[oy * ow + ox] = best_position;
      }
    }
  });
  return {output, std::move(context)};
}

Tensor MaxPool2d::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::pool_backward(context, grad_output);
  const auto& saved = dynamic_cast<const MaxPoolContext&>(context);
  const auto n = saved.input_shape[0], c = saved.input_shape[1], h = saved.input_shape[2], w = saved.input_shape[3];
  const auto oh = saved.out_h, ow = saved.out_w;
  if (grad_output.shape() != Shape{n, c, oh, ow}) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Tensor grad_input(saved.input_shape);
  float* dx = grad_input.data();
  const float* g = grad_output.data();
  const WindowPosition* position = saved.position();
  const std::int64_t k = kernel_, s = stride_, pad = padding_;
  // A window position's offset from the window's corner in the input plane (no division per
  // element).
  std::vector<std::int64_t> offset(static_cast<std::size_t>(k * k));
  for (std::int64_t i = 0; i < k * k; ++i) offset[static_cast<std::size_t>(i)] = (i / k) * w + i % k;
  // Per plane: zero it, then add each output's gradient where its maximum was (windows may
  // overlap, so adding; planes never share an input, so they run in parallel).
  detail::for_each_item(n * c, n * c * h * w, [&](std::int64_t plane) {
    float* dp = dx + plane * h * w;
    const float* gp = g + plane * oh * ow;
    const WindowPosition* pp = position + plane * oh * ow;
    if (k == 2 && s == 2 && pad == 0) {
      for (std::int64_t oy = 0; oy < oh; ++oy) {
        float* top = dp + 2 * oy * w;
        max_pool_2x2_backward_row(gp + oy * ow, pp + oy * ow, ow, top, top + w);
        if (w > 2 * ow) top[w - 1] = top[2 * w - 1] = 0.0f;  // an odd width's last column
      }
      std::fill(dp + 2 * oh * w, dp + h * w, 0.0f);  // an odd height's last row
      return;
    }
    std::fill(dp, dp + h * w, 0.0f);
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const WindowPosition at = pp[oy * ow + ox];
        if (at == kNoInput) continue;
        dp[(oy * s - pad) * w + ox * s - pad + offset[at]] += gp[oy * ow + ox];
      }
  });
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
