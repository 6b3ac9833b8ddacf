// Element-wise layers, CPU backend: activations, Flatten, Dropout (the CUDA paths of the
// activations and Dropout: activations_cuda.cpp).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/layers/rational_tanh.hpp"
#include "slurmlab/nn/layers/vector_math.hpp"
#include "slurmlab/nn/layers/vector_clones.hpp"

namespace slurmlab::nn {

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::relu: return "ReLU";
    case Activation::tanh: return "Tanh";
    case Activation::gelu: return "GELU";
    case Activation::silu: return "SiLU";
  }
  return "?";
}

namespace {
struct SavedTensor final : Context {
  Tensor tensor;
};
struct SavedShape final : Context {
  Shape shape;
};

// Standard normal density and distribution, for the exact (erf) GELU, on the branch-free exp
// and erf of vector_math.hpp so that the GELU loops vectorize.
SLURMLAB_ALWAYS_INLINE float normal_pdf(float x) {
  return detail::vector_exp(-0.5f * x * x) * (1.0f / std::sqrt(2.0f * std::numbers::pi_v<float>));
}
SLURMLAB_ALWAYS_INLINE float normal_cdf(float x) {
  return 0.5f * (1.0f + detail::vector_erf(x * std::numbers::sqrt2_v<float> * 0.5f));
}
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

using detail::rational_tanh;

// Separate loops on raw pointers so that they vectorize (built with -fno-trapping-math, see
// src/slurmlab/CMakeLists.txt). On x86-64 GCC also builds an AVX2+FMA clone of each, chosen at
// load time where the CPU has it (8 floats per instruction instead of SSE2's 4; an AVX-512 clone
// of these loops measured slower here). tanh has explicit AVX2 and AVX-512 kernels besides.
// x and y may be the same array (in place): element i is read before it is written.
SLURMLAB_VECTOR_CLONES void tanh_forward_portable(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = rational_tanh(x[i]);
}

#if defined(SLURMLAB_TANH_VECTORS)
// rational_tanh in explicit vectors (rational_tanh.hpp). Measured on the 1400 x 64
// fit-regression activations: 26 -> 22 us alone, 21 us with AVX-512 (Zen 4, which splits
// 512-bit operations in two; Xeons with two 512-bit FMA units gain more).
__attribute__((target("avx2,fma"))) void tanh_forward_avx2(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, detail::rational_tanh8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = rational_tanh(x[i]);
}

__attribute__((target("avx512f"))) void tanh_forward_avx512(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, detail::rational_tanh16(_mm512_loadu_ps(x + i)));
  tanh_forward_avx2(x + i, y + i, n - i);
}

__attribute__((target("avx2,fma"))) void tanh_affine_avx2(const float* x, float scale, float shift, float* y,
                                                          std::size_t n) {
  const __m256 a = _mm256_set1_ps(scale), b = _mm256_set1_ps(shift);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, detail::rational_tanh8(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), a, b)));
  }
  for (; i < n; ++i) y[i] = rational_tanh(std::fma(x[i], scale, shift));
}

__attribute__((target("avx512f"))) void tanh_affine_avx512(const float* x, float scale, float shift, float* y,
                                                            std::size_t n) {
  const __m512 a = _mm512_set1_ps(scale), b = _mm512_set1_ps(shift);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, detail::rational_tanh16(_mm512_fmadd_ps(_mm512_loadu_ps(x + i), a, b)));
  }
  tanh_affine_avx2(x + i, scale, shift, y + i, n - i);
}
#endif
}  // namespace

// Narrowest first; the AVX-512 kernel finishes its tail with the AVX2 one, so it needs both.
std::vector<detail::TanhKernelEntry> detail::tanh_kernels() {
  std::vector<TanhKernelEntry> kernels{{"portable", tanh_forward_portable}};
#if defined(SLURMLAB_TANH_VECTORS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernels.push_back({"avx2", tanh_forward_avx2});
    if (__builtin_cpu_supports("avx512f")) kernels.push_back({"avx512", tanh_forward_avx512});
  }
#endif
  return kernels;
}

void detail::tanh_array(const float* x, float* y, std::size_t n) {
  static const auto kernel = tanh_kernels().back().kernel;
  kernel(x, y, n);
}

void detail::tanh_affine_array(const float* x, float scale, float shift, float* y, std::size_t n) {
  using Kernel = void (*)(const float*, float, float, float*, std::size_t);
  static const Kernel kernel = [] {
    Kernel chosen = nullptr;
#if defined(SLURMLAB_TANH_VECTORS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      chosen = __builtin_cpu_supports("avx512f") ? tanh_affine_avx512 : tanh_affine_avx2;
    }
#endif
    return chosen;
  }();
  if (kernel != nullptr) return kernel(x, scale, shift, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = shift + x[i] * scale;
  tanh_array(y, y, n);
}

namespace {

SLURMLAB_VECTOR_CLONES void tanh_backward(const float* __restrict y, const float* __restrict g, float* __restrict d, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = g[i] * (1.0f - y[i] * y[i]);
}
// In place: g[i] *= tanh'(from the output y[i]); g[i] = 0 where the ReLU's output or input is not positive.
SLURMLAB_VECTOR_CLONES void tanh_backward_in_place(const float* __restrict y, float* __restrict g, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g[i] *= 1.0f - y[i] * y[i];
}
SLURMLAB_VECTOR_CLONES void relu_backward_in_place(const float* __restrict x, float* __restrict g, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g[i] = x[i] > 0.0f ? g[i] : 0.0f;
}
SLURMLAB_VECTOR_CLONES void relu_in_place(float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
SLURMLAB_VECTOR_CLONES void relu_forward(const float* __restrict x, float* __restrict y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
SLURMLAB_VECTOR_CLONES void relu_backward(const float* __restrict x, const float* __restrict g, float* __restrict d, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = x[i] > 0.0f ? g[i] : 0.0f;
}
SLURMLAB_VECTOR_CLONES void gelu_forward(const float* __restrict x, float* __restrict y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * normal_cdf(x[i]);
}
SLURMLAB_VECTOR_CLONES void gelu_backward(const float* __restrict x, const float* __restrict g, float* __restrict d, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = g[i] * (normal_cdf(x[i]) + x[i] * normal_pdf(x[i]));
}
}  // namespace

Forward ActivationLayer::forward_impl(const Tensor& input, Mode) {
  if (input.device() == Device::cuda) return cuda::activation_forward(kind_, input);
  Tensor output(input.shape());
  const auto x = input.span();
  auto y = output.span();
  switch (kind_) {
    case Activation::relu:
      relu_forward(x.data(), y.data(), x.size());
      break;
    case Activation::tanh:
      detail::tanh_array(x.data(), y.data(), x.size());
      break;
    case Activation::gelu:
      gelu_forward(x.data(), y.data(), x.size());
      break;
    case Activation::silu:
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * sigmoid(x[i]);
      break;
  }
  auto context = std::make_unique<SavedTensor>();
  // tanh's derivative needs only the output; the others need the input.
  context->tensor = kind_ == Activation::tanh ? output : input;
  return {output, std::move(context)};
}

Tensor ActivationLayer::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::activation_backward(kind_, context, grad_output);
  const auto& saved = dynamic_cast<const SavedTensor&>(context).tensor;
  if (grad_output.numel() != saved.numel()) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  Tensor grad_input(saved.shape());
  const auto s = saved.span();
  const auto g = grad_output.span();
  auto d = grad_input.span();
  switch (kind_) {
    case Activation::relu:
      relu_backward(s.data(), g.data(), d.data(), s.size());
      break;
    case Activation::tanh:
      tanh_backward(s.data(), g.data(), d.data(), s.size());
      break;
    case Activation::gelu:
      gelu_backward(s.data(), g.data(), d.data(), s.size());
      break;
    case Activation::silu:
      for (std::size_t i = 0; i < s.size(); ++i) {
        const float sg = sigmoid(s[i]);
        d[i] = g[i] * sg * (1.0f + s[i] * (1.0f - sg));
      }
      break;
  }
  return grad_input;
}

std::unique_ptr<Context> ActivationLayer::forward_in_place(Tensor& x) {
  if (!runs_in_place() || x.device() != Device::cpu) throw std::logic_error(describe() + ": forward_in_place needs ReLU or tanh on the CPU");
  auto y = x.span();
  if (kind_ == Activation::tanh) {
    detail::tanh_array(y.data(), y.data(), y.size());
  } else {
    relu_in_place(y.data(), y.size());
  }
  auto context = std::make_unique<SavedTensor>();
  context->tensor = x;  // the output; ReLU's backward tests it as it tests the input (> 0 alike)
  return context;
}

std::unique_ptr<Context> ActivationLayer::context_of_output(const Tensor& output) const {
  if (!runs_in_place()) throw std::logic_error(describe() + ": context_of_output needs ReLU or tanh");
  auto context = std::make_unique<SavedTensor>();
  context->tensor = output;  // as forward_in_place keeps it
  return context;
}

void ActivationLayer::backward_in_place(const Context& context, Tensor& grad) {
  if (!runs_in_place() || grad.device() != Device::cpu) throw std::logic_error(describe() + ": backward_in_place needs ReLU or tanh on the CPU");
  const auto& saved = dynamic_cast<const SavedTensor&>(context).tensor;
  if (grad.numel() != saved.numel()) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  const auto s = saved.span();
  auto g = grad.span();
  if (kind_ == Activation::tanh) {
    tanh_backward_in_place(s.data(), g.data(), s.size());
  } else {
    relu_backward_in_place(s.data(), g.data(), s.size());
  }
}

InputSpec Flatten::expected_input() const { return {.min_rank = 2}; }

Forward Flatten::forward_impl(const Tensor& input, Mode) {
  auto context = std::make_unique<SavedShape>();
  context->shape = input.shape();
  return {input.reshape({input.size(0), -1}), std::move(context)};
}

Tensor Flatten::backward_impl(const Context& context, const Tensor& grad_output) {
  return grad_output.reshape(dynamic_cast<const SavedShape&>(context).shape);
}

Dropout::Dropout(float p, std::uint64_t seed) : p_(p), generator_(seed) {
  if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("Dropout: p must lie in [0, 1)");
}

std::string Dropout::describe() const { return "Dropout(p=" + std::to_string(p_) + ")"; }

void Dropout::visit_generators(const std::string& prefix, const GeneratorVisitor& visit) {
  visit(join_name(prefix, "generator"), generator_);
}

std::string Scale::describe() const {
  std::ostringstream text;
  text << "Scale(" << factor_ << ")";
  return text.str();
}

namespace {
Tensor scaled_on_cpu(const Tensor& x, float factor) {
  Tensor y(x.shape());
  const auto in = x.span();
  auto out = y.span();
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = factor * in[i];
  return y;
}
}  // namespace

Forward Scale::forward_impl(const Tensor& input, Mode) {
  return {input.device() == Device::cuda ? cuda::scaled(input, factor_) : scaled_on_cpu(input, factor_),
          std::make_unique<Context>()};
}

Tensor Scale::backward_impl(const Context&, const Tensor& grad_output) {
  return grad_output.device() == Device::cuda ? cuda::scaled(grad_output, factor_) : scaled_on_cpu(grad_output, factor_);
}

Forward Dropout::forward_impl(const Tensor& input, Mode mode) {
  if (input.device() == Device::cuda) return cuda::dropout_forward(p_, generator_, input, mode);
  if (mode == Mode::eval || p_ == 0.0f) return {input, std::make_unique<Context>()};
  auto context = std::make_unique<SavedTensor>();
  context->tensor = Tensor(input.shape());
  const float keep_scale = 1.0f / (1.0f - p_);
  for (auto& m : context->tensor.span()) m = generator_.uniform(0.0f, 1.0f) < p_ ? 0.0f : keep_scale;
  Tensor output(input.shape());
  const auto x = input.span();
  const auto m = context->tensor.span();
  auto y = output.span();
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * m[i];
  return {output, std::move(context)};
}

Tensor Dropout::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::dropout_backward(context, grad_output);
  const auto* saved = dynamic_cast<const SavedTensor*>(&context);
  if (saved == nullptr) return grad_output;  // eval mode or p == 0: identity
  Tensor grad_input(grad_output.shape());
  const auto g = grad_output.span();
  const auto m = saved->tensor.span();
  auto d = grad_input.span();
  for (std::size_t i = 0; i < g.size(); ++i) d[i] = g[i] * m[i];
  return grad_input;
}

}  // namespace slurmlab::nn
