// Conv2d, CPU backend: im2col over the whole batch, then one SGEMM (OpenBLAS, threaded)
// for the output, one for the weight gradient and one for the input gradient (col2im). The
// CUDA one (cuDNN) is conv2d_cuda.cpp. When built with oneDNN, the CPU work goes through
// conv2d_onednn.cpp instead unless SLURMLAB_CONV=im2col; im2col stays the reference.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "slurmlab/nn/layers/cpu_precision.hpp"
#include "slurmlab/nn/layers/conv2d_backend.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn {

namespace {

struct Geometry {
  std::int64_t n, c, h, w, k, stride, pad, out_h, out_w;
  std::int64_t patch() const { return c * k * k; }          // rows of the column matrix
  std::int64_t positions() const { return out_h * out_w; }  // per image
};

// Output columns [lo, hi) read input columns inside the image for kernel column kj: the
// edges outside it are padding (zero). Computing the range once per row keeps the inner
// loops free of bounds checks (a plain copy for stride 1).
struct ValidRange {
  std::int64_t lo, hi;
};
ValidRange valid_columns(const Geometry& g, std::int64_t kj) {
  // ix = ox*s - p + kj must satisfy 0 <= ix < w.
  const std::int64_t first = g.pad - kj;  // ox*s >= first
  std::int64_t lo = first <= 0 ? 0 : (first + g.stride - 1) / g.stride;
  const std::int64_t last = g.w - 1 + g.pad - kj;  // ox*s <= last
  std::int64_t hi = last < 0 ? 0 : last / g.stride + 1;
  lo = std::min(lo, g.out_w);
  hi = std::max(std::min(hi, g.out_w), lo);
  return {lo, hi};
}

// columns[(ci*k + ki)*k + kj][img*P + oy*OW + ox] = x[img, ci, oy*s - p + ki, ox*s - p + kj] (0 outside)
void im2col(const float* x, const Geometry& g, float* columns) {
  const std::int64_t total = g.n * g.positions();
  for (std::int64_t ci = 0; ci < g.c; ++ci) {
    for (std::int64_t ki = 0; ki < g.k; ++ki) {
      for (std::int64_t kj = 0; kj < g.k; ++kj) {
        float* row = columns + ((ci * g.k + ki) * g.k + kj) * total;
        const auto [lo, hi] = valid_columns(g, kj);
        const std::int64_t shift = kj - g.pad;  // ix = ox*s + shift
        for (std::int64_t img = 0; img < g.n; ++img) {
          const float* plane = x + (img * g.c + ci) * g.h * g.w;
          float* out = row + img * g.positions();
          for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
            const std::int64_t iy = oy * g.stride - g.pad + ki;
            float* out_row = out + oy * g.out_w;
            if (iy < 0 || iy >= g.h) {
              std::fill_n(out_row, g.out_w, 0.0f);
              continue;
            }
            const float* in_row = plane + iy * g.w;
            std::fill_n(out_row, lo, 0.0f);
            if (g.stride == 1) {
              if (hi > lo) std::copy(in_row + lo + shift, in_row + hi + shift, out_row + lo);
            } else {
              for (std::int64_t ox = lo; ox < hi; ++ox) out_row[ox] = in_row[ox * g.stride + shift];
            }
            std::fill(out_row + hi, out_row + g.out_w, 0.0f);
          }
        }
      }
    }
  }
}

// The adjoint of im2col: accumulates column entries back onto the input positions.
void col2im(const float* columns, const Geometry& g, float* dx) {
  const std::int64_t total = g.n * g.positions();
  for (std::int64_t ci = 0; ci < g.c; ++ci) {
    for (std::int64_t ki = 0; ki < g.k; ++ki) {
      for (std::int64_t kj = 0; kj < g.k; ++kj) {
        const float* row = columns + ((ci * g.k + ki) * g.k + kj) * total;
        const auto [lo, hi] = valid_columns(g, kj);
        const std::int64_t shift = kj - g.pad;
        for (std::int64_t img = 0; img < g.n; ++img) {
          float* plane = dx + (img * g.c + ci) * g.h * g.w;
          const float* in = row + img * g.positions();
          for (std::int64_t oy = 0; oy < g.out_h; ++oy) {
            const std::int64_t iy = oy * g.stride - g.pad + ki;
            if (iy < 0 || iy >= g.h) continue;
            float* __restrict out_row = plane + iy * g.w;
            const float* __restrict in_row = in + oy * g.out_w;
            if (g.stride == 1) {
              for (std::int64_t ox = lo; ox < hi; ++ox) out_row[ox + shift] += in_row[ox];
            } else {
              for (std::int64_t ox = lo; ox < hi; ++ox) out_row[ox * g.stride + shift] += in_row[ox];
            }
          }
        }
      }
    }
  }
}

struct Conv2dContext final : Context {
  Geometry geometry{};
  Tensor columns;  // [patch, N*P] (im2col path)
  Tensor input;    // oneDNN path
  bool onednn = false;
  bool bf16 = false;  // the forward's precision, which backward keeps
};

conv_backend::Dims dims(const Geometry& g, std::int64_t out) {
  return {g.n, g.c, g.h, g.w, out, g.k, g.stride, g.pad, g.out_h, g.out_w};
}

}  // namespace

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, Generator& init,
               std::int64_t stride, std::int64_t padding, bool bias)
    : in_(in_channels), out_(out_channels), kernel_(kernel_size), stride_(stride), padding_(padding),
      has_bias_(bias), weight_({out_channels, in_channels, kernel_size, kernel_size}),
      bias_({bias ? out_channels : 0}) {
  if (in_channels <= 0 || out_channels <= 0 || kernel_size <= 0 || stride <= 0 || padding < 0) {
    throw std::invalid_argument("Conv2d: channels, kernel size and stride must be positive, padding non-negative");
  }
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_channels * kernel_size * kernel_size));
  init.fill_uniform(weight_.value.span(), -bound, bound);
  if (has_bias_) init.fill_uniform(bias_.value.span(), -bound, bound);
}

std::string Conv2d::describe() const {
  return "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + std::to_string(kernel_) +
         ", stride=" + std::to_string(stride_) + ", padding=" + std::to_string(padding_) + ")";
}

void Conv2d::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  visit(join_name(prefix, "weight"), weight_);
  if (has_bias_) visit(join_name(prefix, "bias"), bias_);
}

InputSpec Conv2d::expected_input() const { return {.min_rank = 4, .max_rank = 4, .axis1 = in_}; }

Forward Conv2d::forward_impl(const Tensor& input, Mode) {
  Geometry g{input.size(0), in_, input.size(2), input.size(3), kernel_, stride_, padding_, 0, 0};
  g.out_h = (g.h + 2 * g.pad - g.k) / g.stride + 1;
  g.out_w = (g.w + 2 * g.pad - g.k) / g.stride + 1;
  if (g.h + 2 * g.pad < g.k || g.w + 2 * g.pad < g.k) {
    throw std::invalid_argument(describe() + ": input " + to_string(input.shape()) + " is smaller than the kernel");
  }
  if (input.device() == Device::cuda) return cuda::conv2d_forward(*this, input);
  auto context = std::make_unique<Conv2dContext>();
  context->geometry = g;
  // bf16 is set only where oneDNN is (set_cpu_precision checks), so im2col stays fp32.
  if (conv_backend::onednn_available()) {
    Tensor output({g.n, out_, g.out_h, g.out_w});
    context->bf16 = cpu_precision() == Precision::bf16;
    conv_backend::onednn_forward(dims(g, out_), input.data(), weight_.value.data(),
                                 has_bias_ ? bias_.value.data() : nullptr, output.data(), context->bf16);
    context->input = input;
    context->onednn = true;
    return {output, std::move(context)};
  }
  const std::int64_t total = g.n * g.positions();
  context->columns = Tensor({g.patch(), total});
  im2col(input.data(), g, context->columns.data());

  Tensor product({out_, total});
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(out_), static_cast<int>(total),
              static_cast<int>(g.patch()), 1.0f, weight_.value.data(), static_cast<int>(g.patch()),
              context->columns.data(), static_cast<int>(total), 0.0f, product.data(), static_cast<int>(total));
  // [out, N*P] -> [N, out, P] plus bias
  Tensor output({g.n, out_, g.out_h, g.out_w});
  float* y = output.data();
  const float* p = product.data();
  const float* b = has_bias_ ? bias_.value.data() : nullptr;
  for (std::int64_t img = 0; img < g.n; ++img)
    for (std::int64_t o = 0; o < out_; ++o) {
      const float offset = b ? b[o] : 0.0f;
      const float* src = p + o * total + img * g.positions();
      float* dst = y + (img * out_ + o) * g.positions();
      for (std::int64_t q = 0; q < g.positions(); ++q) dst[q] = src[q] + offset;
    }
  return {output, std::move(context)};
}

Tensor Conv2d::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::conv2d_backward(*this, context, grad_output);
  const auto& saved = dynamic_cast<const Conv2dContext&>(context);
  const Geometry& g = saved.geometry;
  if (grad_output.shape() != Shape{g.n, out_, g.out_h, g.out_w}) {
    throw std::invalid_argument(describe() + ": gradient shape " + to_string(grad_output.shape()) + " mismatch");
  }
  if (saved.onednn) {
    Tensor grad_input;
    if (input_grad_needed()) grad_input = Tensor({g.n, g.c, g.h, g.w});
    conv_backend::onednn_backward(dims(g, out_), saved.input.data(), weight_.value.data(), grad_output.data(),
                                  grad_input.defined() ? grad_input.data() : nullptr, weight_.grad.data(),
                                  has_bias_ ? bias_.grad.data() : nullptr, saved.bf16);
    return grad_input;
  }
  const std::int64_t total = g.n * g.positions();
  // [N, out, P] -> [out, N*P]
  Tensor gathered({out_, total});
  const float* go = grad_output.data();
  float* gm = gathered.data();
  for (std::int64_t img = 0; img < g.n; ++img)
    for (std::int64_t o = 0; o < out_; ++o) {
      const float* src = go + (img * out_ + o) * g.positions();
      float* dst = gm + o * total + img * g.positions();
      for (std::int64_t q = 0; q < g.positions(); ++q) dst[q] = src[q];
    }
  if (has_bias_) {
    float* db = bias_.grad.data();
    for (std::int64_t o = 0; o < out_; ++o) {
      double sum = 0.0;
      const float* row = gm + o * total;
      for (std::int64_t q = 0; q < total; ++q) sum += row[q];
      db[o] += static_cast<float>(sum);
    }
  }
  // dW[out, patch] += G[out, NP] * columns[patch, NP]^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(out_), static_cast<int>(g.patch()),
              static_cast<int>(total), 1.0f, gm, static_cast<int>(total), saved.columns.data(),
              static_cast<int>(total), 1.0f, weight_.grad.data(), static_cast<int>(g.patch()));
  if (!input_grad_needed()) return {};
  // dcolumns[patch, NP] = W[out, patch]^T * G[out, NP]
  Tensor grad_columns({g.patch(), total});
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(g.patch()), static_cast<int>(total),
              static_cast<int>(out_), 1.0f, weight_.value.data(), static_cast<int>(g.patch()), gm,
              static_cast<int>(total), 0.0f, grad_columns.data(), static_cast<int>(total));
  Tensor grad_input = Tensor::zeros({g.n, g.c, g.h, g.w});
  col2im(grad_columns.data(), g, grad_input.data());
  return grad_input;
}

}  // namespace slurmlab::nn
