// Linear, CPU backend: one SGEMM per product (OpenBLAS, threaded; the large forward and
// input-gradient products on oneDNN where built in, linear_onednn.cpp); the CUDA one is
// linear_cuda.cpp.
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "slurmlab/nn/layers/bfloat16.hpp"
#include "slurmlab/nn/layers/cpu_precision.hpp"
#include "slurmlab/nn/layers/layers.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"
#include "slurmlab/nn/layers/linear_backend.hpp"
#include "slurmlab/nn/layers/rational_tanh.hpp"
#include "slurmlab/nn/layers/vector_clones.hpp"

namespace slurmlab::nn {

namespace {

// bf16 copies live in float tensors' storage (raw allocator blocks): written here only as
// uint16_t and read only by oneDNN as bf16, never through a float pointer.
std::uint16_t* bf16_data(Tensor& t) { return reinterpret_cast<std::uint16_t*>(t.data()); }
const std::uint16_t* bf16_data(const Tensor& t) { return reinterpret_cast<const std::uint16_t*>(t.data()); }

struct LinearContext final : Context {
  Tensor input;  // [N, in]
  // bf16 products (cpu_precision.hpp): the rounded input and weight, for backward's products
  // (defined only when the forward computed in bf16).
  Tensor input_bf16, weight_bf16;
};

// A bfloat16 copy of n floats, in a float tensor of half as many elements (the caching
// allocator's reused, huge-page-backed blocks: a fresh vector per step would fault in and
// zero AlexNet's 75 MB weight copy every step).
Tensor bf16_copy(const float* x, std::int64_t n) {
  Tensor copy({(n + 1) / 2});
  detail::floats_to_bf16(x, bf16_data(copy), static_cast<std::size_t>(n));
  return copy;
}

// Layers with one input or one output feature (the regression MLP's 1 -> hidden -> 1) are
// outer products and matrix-vector products, for which BLAS's packing and threading cost
// more than the arithmetic: direct loops (vectorized; an AVX2 clone is chosen where the CPU
// has it) do them instead.

// y[i, :] = b + x[i] * w (no reduction: vectorizes over the output features), with Relu
// max(0, .) of it applied before the store (the ReLU after a one-input layer, forward_through).
// Inlined into each caller's clone, so that it takes that clone's instructions.
template <bool Relu>
inline __attribute__((always_inline)) void outer_product_rows(const float* __restrict x, const float* __restrict w,
                                                              const float* __restrict b, float* __restrict y,
                                                              std::int64_t n, std::int64_t width) {
  const auto store = [](float v) { return Relu ? (v > 0.0f ? v : 0.0f) : v; };
  for (std::int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    float* row = y + i * width;
    if (b) {
      for (std::int64_t o = 0; o < width; ++o) row[o] = store(b[o] + xi * w[o]);
    } else {
      for (std::int64_t o = 0; o < width; ++o) row[o] = store(xi * w[o]);
    }
  }
}
SLURMLAB_VECTOR_CLONES void outer_product(const float* __restrict x, const float* __restrict w,
                                          const float* __restrict b, float* __restrict y, std::int64_t n,
                                          std::int64_t width) {
  outer_product_rows<false>(x, w, b, y, n, width);
}

// y[i, :] = f(b + x[i] w) for f = ReLU and tanh: outer_product with the activation after the
// layer applied before each store (the activation's own pass rereads and rewrites every output:
// 26.5 -> 23.4 us for the regression MLP's 1400 x 64 with tanh; blocks of rows kept in L1
// between the two passes gained nothing). The same operations as outer_product followed by
// the activation, so the same bits.
SLURMLAB_VECTOR_CLONES void outer_product_relu(const float* __restrict x, const float* __restrict w,
                                               const float* __restrict b, float* __restrict y, std::int64_t n,
                                               std::int64_t width) {
  outer_product_rows<true>(x, w, b, y, n, width);
}

void outer_product_tanh_portable(const float* x, const float* w, const float* b, float* y, std::int64_t n,
                                 std::int64_t width) {
  outer_product(x, w, b, y, n, width);
  detail::tanh_array(y, y, static_cast<std::size_t>(n * width));
}

#if defined(SLURMLAB_TANH_VECTORS)
// Columns [first, width) of each row, 8 at a time, the last fewer than 8 under a mask (a scalar
// loop there was if-converted by GCC into a multiply and an add instead of outer_product's
// fused multiply-add: other bits).
__attribute__((target("avx2,fma"))) void outer_product_tanh_avx2_from(const float* x, const float* w,
                                                                      const float* b, float* y, std::int64_t n,
                                                                      std::int64_t width, std::int64_t first) {
  const auto last = static_cast<int>((width - first) % 8);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(last), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (std::int64_t i = 0; i < n; ++i) {
    const __m256 xv = _mm256_set1_ps(x[i]);
    float* row = y + i * width;
    std::int64_t o = first;
    for (; o + 8 <= width; o += 8) {
      const __m256 wv = _mm256_loadu_ps(w + o);
      const __m256 v = b ? _mm256_fmadd_ps(xv, wv, _mm256_loadu_ps(b + o)) : _mm256_mul_ps(xv, wv);
      _mm256_storeu_ps(row + o, detail::rational_tanh8(v));
    }
    if (last > 0) {
      const __m256 wv = _mm256_maskload_ps(w + o, mask);
      const __m256 v = b ? _mm256_fmadd_ps(xv, wv, _mm256_maskload_ps(b + o, mask)) : _mm256_mul_ps(xv, wv);
      _mm256_maskstore_ps(row + o, mask, detail::rational_tanh8(v));
    }
  }
}
__attribute__((target("avx2,fma"))) void outer_product_tanh_avx2(const float* x, const float* w, const float* b,
                                                                 float* y, std::int64_t n, std::int64_t width) {
  outer_product_tanh_avx2_from(x, w, b, y, n, width, 0);
}
__attribute__((target("avx512f"))) void outer_product_tanh_avx512(const float* x, const float* w, const float* b,
                                                                  float* y, std::int64_t n, std::int64_t width) {
  const std::int64_t full = width / 16 * 16;
  for (std::int64_t i = 0; i < n; ++i) {
    const __m512 xv = _mm512_set1_ps(x[i]);
    float* row = y + i * width;
    for (std::int64_t o = 0; o < full; o += 16) {
      const __m512 wv = _mm512_loadu_ps(w + o);
      const __m512 v = b ? _mm512_fmadd_ps(xv, wv, _mm512_loadu_ps(b + o)) : _mm512_mul_ps(xv, wv);
      _mm512_storeu_ps(row + o, detail::rational_tanh16(v));
    }
  }
  if (full < width) outer_product_tanh_avx2_from(x, w, b, y, n, width, full);
}
#endif

// The widest of those this CPU runs, chosen once (as ActivationLayer's tanh is).
void outer_product_tanh(const float* x, const float* w, const float* b, float* y, std::int64_t n, std::int64_t width) {
  using Kernel = void (*)(const float*, const float*, const float*, float*, std::int64_t, std::int64_t);
  static const Kernel kernel = [] {
    Kernel chosen = outer_product_tanh_portable;
#if defined(SLURMLAB_TANH_VECTORS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      chosen = __builtin_cpu_supports("avx512f") ? outer_product_tanh_avx512 : outer_product_tanh_avx2;
    }
#endif
    return chosen;
  }();
  kernel(x, w, b, y, n, width);
}

// Column block of the reductions below: its sums stay in registers over all rows (vectors
// of 8 floats, four per block), instead of being loaded and stored for every row.
using Lanes = float __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8, kSumVectors = 4, kSumColumns = kLanes * kSumVectors;
#if defined(__GNUC__)
#define SLURMLAB_UNROLL_SUMS _Pragma("GCC unroll 4")
#define SLURMLAB_UNROLL_ROWS _Pragma("GCC unroll 8")
#else
#define SLURMLAB_UNROLL_SUMS
#define SLURMLAB_UNROLL_ROWS
#endif

// dw[o] += sum_i g[i, o] x[i] and, with Bias, db[o] += sum_i g[i, o], in one pass over g. Each
// column's sum runs over the rows in order, from zero, then is added to dw (and db). Inlined
// into each caller's clone, so that it takes that clone's instructions.
template <bool Bias>
inline __attribute__((always_inline)) void weighted_column_sums(const float* __restrict g, const float* __restrict x,
                                                                float* __restrict dw, float* __restrict db,
                                                                std::int64_t n, std::int64_t width) {
  std::int64_t first = 0;
  for (; first + kSumColumns <= width; first += kSumColumns) {
    Lanes sw[kSumVectors] = {}, sb[kSumVectors] = {};
    for (std::int64_t i = 0; i < n; ++i) {
      const float xi = x[i];
      const float* row = g + i * width + first;
      SLURMLAB_UNROLL_SUMS
      for (std::int64_t v = 0; v < kSumVectors; ++v) {
        Lanes r;
        std::memcpy(&r, row + v * kLanes, sizeof r);
        sw[v] += r * xi;
        if constexpr (Bias) sb[v] += r;
      }
    }
    for (std::int64_t o = 0; o < kSumColumns; ++o) {
      dw[first + o] += sw[o / kLanes][o % kLanes];
      if constexpr (Bias) db[first + o] += sb[o / kLanes][o % kLanes];
    }
  }
  for (std::int64_t i = 0; i < n && first < width; ++i) {
    const float xi = x[i];
    const float* row = g + i * width;
    for (std::int64_t o = first; o < width; ++o) {
      dw[o] += row[o] * xi;
      if constexpr (Bias) db[o] += row[o];
    }
  }
}

SLURMLAB_VECTOR_CLONES void outer_weight_gradients(const float* __restrict g, const float* __restrict x,
                                                   float* __restrict dw, float* __restrict db, std::int64_t n,
                                                   std::int64_t width) {
  weighted_column_sums<true>(g, x, dw, db, n, width);
}

// sums[o] += sum_i g[i, o]
SLURMLAB_VECTOR_CLONES void add_column_sums(const float* __restrict g, float* __restrict sums, std::int64_t n,
                                            std::int64_t width) {
  if (width == 1) {  // one output: a sum over n in eight interleaved partial sums (one serial chain was its cost)
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) partial[k] += g[i + k];
    float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) + ((partial[2] + partial[6]) + (partial[3] + partial[7]));
    for (; i < n; ++i) sum += g[i];
    sums[0] += sum;
    return;
  }
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < width; ++o) sums[o] += g[i * width + o];
}

// y[i] (+)= sum_j a[i, j] x[j]: per row, eight partial sums p[k] += a[i, j + k] x[j + k] over
// the row's blocks of eight columns, then ((p0 + p4) + (p1 + p5)) + ((p2 + p6) + (p3 + p7)), then
// the row's last columns in order: a fixed order (results are reproducible) that vectorizes
// without reassociating flags. Eight rows at a time where the rows are that long: their eight
// vectors of partial sums are independent chains (one row's chain of multiply-adds was the
// loop's latency: 7 -> 3.5 us for the regression MLP's 1400 x 64 forward), combined by shuffles
// in the same order for all eight rows at once.
SLURMLAB_VECTOR_CLONES void matrix_vector(const float* __restrict a, const float* __restrict x, float* __restrict y,
                                          std::int64_t rows, std::int64_t cols, bool accumulate) {
  std::int64_t i = 0;
  for (; cols >= kLanes && i + kLanes <= rows; i += kLanes) {
    Lanes p[kLanes] = {};
    std::int64_t j = 0;
    for (; j + kLanes <= cols; j += kLanes) {
      Lanes xv;
      std::memcpy(&xv, x + j, sizeof xv);
      SLURMLAB_UNROLL_ROWS
      for (std::int64_t r = 0; r < kLanes; ++r) {
        Lanes av;
        std::memcpy(&av, a + (i + r) * cols + j, sizeof av);
        p[r] += av * xv;
      }
    }
    // h[q]: h_k = p_k + p_(k+4), k = 0..3, of rows 2q and 2q + 1.
    Lanes h[4];
    SLURMLAB_UNROLL_SUMS
    for (int q = 0; q < 4; ++q) {
      h[q] = __builtin_shufflevector(p[2 * q], p[2 * q + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
             __builtin_shufflevector(p[2 * q], p[2 * q + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    }
    // s[q]: h_0 + h_1 and h_2 + h_3 of rows 4q .. 4q + 3; then the two added, rows 0 .. 7.
    Lanes s[2];
    for (int q = 0; q < 2; ++q) {
      s[q] = __builtin_shufflevector(h[2 * q], h[2 * q + 1], 0, 2, 4, 6, 8, 10, 12, 14) +
             __builtin_shufflevector(h[2 * q], h[2 * q + 1], 1, 3, 5, 7, 9, 11, 13, 15);
    }
    const Lanes sums = __builtin_shufflevector(s[0], s[1], 0, 2, 4, 6, 8, 10, 12, 14) +
                       __builtin_shufflevector(s[0], s[1], 1, 3, 5, 7, 9, 11, 13, 15);
    for (std::int64_t r = 0; r < kLanes; ++r) {
      const float* row = a + (i + r) * cols;
      float sum = sums[r];
      for (std::int64_t k = j; k < cols; ++k) sum += row[k] * x[k];
      y[i + r] = accumulate ? y[i + r] + sum : sum;
    }
  }
  for (; i < rows; ++i) {
    const float* row = a + i * cols;
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int k = 0; k < 8; ++k) partial[k] += row[j + k] * x[j + k];
    float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) + ((partial[2] + partial[6]) + (partial[3] + partial[7]));
    for (; j < cols; ++j) sum += row[j] * x[j];
    y[i] = accumulate ? y[i] + sum : sum;
  }
}

// y[j] += sum_i a[i, j] x[i]  (a transposed product, vectorized over j: the weight-gradient
// sums without a bias)
SLURMLAB_VECTOR_CLONES void transposed_matrix_vector(const float* __restrict a, const float* __restrict x,
                                                     float* __restrict y, std::int64_t rows, std::int64_t cols) {
  weighted_column_sums<false>(a, x, y, nullptr, rows, cols);
}

// The one-output backward through the ReLU or tanh before the layer, in one pass over the
// layer's input x (that activation's output): dw[o] += sum_i x[i, o] g[i], summed as
// transposed_matrix_vector sums (per column over the rows in order, from zero), and
// dx[i, o] = (g[i] w[o]) f'(x[i, o]) with tanh' = 1 - x^2 and ReLU' = [x > 0]: outer_product
// and the activation's backward_in_place without writing and rereading dx in between.
template <bool Tanh>
inline __attribute__((always_inline)) void fold_activation_rows(const float* __restrict x, const float* __restrict g,
                                                                const float* __restrict w, float* __restrict dw,
                                                                float* __restrict dx, std::int64_t n,
                                                                std::int64_t width) {
  const auto derivative = [](float gw, float xo) {
    if constexpr (Tanh) return gw * (1.0f - xo * xo);
    return xo > 0.0f ? gw : 0.0f;
  };
  std::int64_t first = 0;
  for (; first + kSumColumns <= width; first += kSumColumns) {
    Lanes sw[kSumVectors] = {}, wv[kSumVectors];
    std::memcpy(wv, w + first, sizeof wv);
    for (std::int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      const float* row = x + i * width + first;
      float* out = dx + i * width + first;
      SLURMLAB_UNROLL_SUMS
      for (std::int64_t v = 0; v < kSumVectors; ++v) {
        Lanes r;
        std::memcpy(&r, row + v * kLanes, sizeof r);
        sw[v] += r * gi;
        Lanes d = gi * wv[v];
        if constexpr (Tanh) {
          d = d * (1.0f - r * r);
        } else {
          d = r > 0.0f ? d : Lanes{};
        }
        std::memcpy(out + v * kLanes, &d, sizeof d);
      }
    }
    for (std::int64_t o = 0; o < kSumColumns; ++o) dw[first + o] += sw[o / kLanes][o % kLanes];
  }
  for (std::int64_t i = 0; i < n && first < width; ++i) {
    const float* row = x + i * width;
    float* out = dx + i * width;
    for (std::int64_t o = first; o < width; ++o) {
      dw[o] += row[o] * g[i];
      out[o] = derivative(g[i] * w[o], row[o]);
    }
  }
}

SLURMLAB_VECTOR_CLONES void fold_tanh_rows(const float* __restrict x, const float* __restrict g,
                                           const float* __restrict w, float* __restrict dw, float* __restrict dx,
                                           std::int64_t n, std::int64_t width) {
  fold_activation_rows<true>(x, g, w, dw, dx, n, width);
}
SLURMLAB_VECTOR_CLONES void fold_relu_rows(const float* __restrict x, const float* __restrict g,
                                           const float* __restrict w, float* __restrict dw, float* __restrict dx,
                                           std::int64_t n, std::int64_t width) {
  fold_activation_rows<false>(x, g, w, dw, dx, n, width);
}

// Products of at least this many multiply-adds go to oneDNN where it is built in (measured
// faster there: AlexNet's classifier); smaller ones stay on OpenBLAS.
constexpr std::int64_t kOneDnnMinMacs = std::int64_t{1} << 24;

bool use_onednn(std::int64_t m, std::int64_t n, std::int64_t k) {
  return m * n * k >= kOneDnnMinMacs && linear_backend::onednn_available();
}
}  // namespace

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& init, bool bias)
    : in_(in_features), out_(out_features), has_bias_(bias), weight_({out_features, in_features}),
      bias_({bias ? out_features : 0}) {
  if (in_features <= 0 || out_features <= 0) throw std::invalid_argument("Linear: feature counts must be positive");
  // Kaiming-uniform with a = sqrt(5): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in).
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_features));
  init.fill_uniform(weight_.value.span(), -bound, bound);
  if (has_bias_) init.fill_uniform(bias_.value.span(), -bound, bound);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + (has_bias_ ? ")" : ", bias=False)");
}

void Linear::visit_parameters(const std::string& prefix, const ParameterVisitor& visit) {
  visit(join_name(prefix, "weight"), weight_);
  if (has_bias_) visit(join_name(prefix, "bias"), bias_);
}

InputSpec Linear::expected_input() const {
  return {.min_rank = 2, .max_rank = 2, .axis1 = in_, .axis1_name = "features"};
}

Forward Linear::forward_impl(const Tensor& input, Mode) {
  if (input.device() == Device::cuda) return cuda::linear_forward(*this, input);
  const auto n = input.size(0);
  Tensor output({n, out_});
  float* y = output.data();
  auto context = std::make_unique<LinearContext>();
  context->input = input;
  if (in_ == 1) {  // y = x w^T + b, an outer product
    outer_product(input.data(), weight_.value.data(), has_bias_ ? bias_.value.data() : nullptr, y, n, out_);
    return {output, std::move(context)};
  }
  if (out_ == 1) {  // y = X w + b
    const float b = has_bias_ ? bias_.value.data()[0] : 0.0f;
    for (std::int64_t i = 0; i < n; ++i) y[i] = b;
    matrix_vector(input.data(), weight_.value.data(), y, n, in_, true);
    return {output, std::move(context)};
  }
  if (has_bias_) {
    const float* b = bias_.value.data();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out_; ++o) y[i * out_ + o] = b[o];
  }
  // y[N, out] (+)= x[N, in] * W[out, in]^T
  if (cpu_precision() == Precision::bf16) {
    context->input_bf16 = bf16_copy(input.data(), n * in_);
    context->weight_bf16 = bf16_copy(weight_.value.data(), out_ * in_);
    linear_backend::gemm_bf16(false, true, n, out_, in_, bf16_data(context->input_bf16), in_,
                              bf16_data(context->weight_bf16), in_, has_bias_ ? 1.0f : 0.0f, y, out_);
    return {output, std::move(context)};
  }
  if (use_onednn(n, out_, in_)) {
    linear_backend::gemm(true, n, out_, in_, input.data(), in_, weight_.value.data(), in_, has_bias_ ? 1.0f : 0.0f, y,
                         out_);
    return {output, std::move(context)};
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out_),
              static_cast<int>(in_), 1.0f, input.data(), static_cast<int>(in_), weight_.value.data(),
              static_cast<int>(in_), has_bias_ ? 1.0f : 0.0f, y, static_cast<int>(out_));
  return {output, std::move(context)};
}

Tensor Linear::backward_impl(const Context& context, const Tensor& grad_output) {
  if (grad_output.device() == Device::cuda) return cuda::linear_backward(*this, context, grad_output);
  const auto& saved = dynamic_cast<const LinearContext&>(context);
  const auto n = saved.input.size(0);
  if (grad_output.shape() != Shape{n, out_}) throw std::invalid_argument(describe() + ": gradient shape mismatch");
  const float* g = grad_output.data();
  if (in_ == 1 || out_ == 1) {
    Tensor grad_input;
    if (input_grad_needed()) grad_input = Tensor({n, in_});
    if (in_ == 1) {
      if (has_bias_) {
        outer_weight_gradients(g, saved.input.data(), weight_.grad.data(), bias_.grad.data(), n, out_);
      } else {
        transposed_matrix_vector(g, saved.input.data(), weight_.grad.data(), n, out_);  // dw += G^T x
      }
      if (grad_input.defined()) matrix_vector(g, weight_.value.data(), grad_input.data(), n, out_, false);  // dx = G w
    } else {
      transposed_matrix_vector(saved.input.data(), g, weight_.grad.data(), n, in_);  // dw += X^T g
      if (grad_input.defined()) outer_product(g, weight_.value.data(), nullptr, grad_input.data(), n, in_);  // dx = g w^T
      if (has_bias_) add_column_sums(g, bias_.grad.data(), n, out_);
    }
    return grad_input;
  }
  if (saved.input_bf16.defined()) return backward_bf16(saved, grad_output);
  // dW[out, in] += g[N, out]^T * x[N, in]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(out_), static_cast<int>(in_),
              static_cast<int>(n), 1.0f, g, static_cast<int>(out_), saved.input.data(), static_cast<int>(in_), 1.0f,
              weight_.grad.data(), static_cast<int>(in_));
  if (has_bias_) add_column_sums(g, bias_.grad.data(), n, out_);
  if (!input_grad_needed()) return {};
  // dx[N, in] = g[N, out] * W[out, in]
  Tensor grad_input({n, in_});
  if (use_onednn(n, in_, out_)) {
    linear_backend::gemm(false, n, in_, out_, g, out_, weight_.value.data(), in_, 0.0f, grad_input.data(), in_);
    return grad_input;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(in_),
              static_cast<int>(out_), 1.0f, g, static_cast<int>(out_), weight_.value.data(), static_cast<int>(in_),
              0.0f, grad_input.data(), static_cast<int>(in_));
  return grad_input;
}

bool Linear::folds_activation_forward(Activation kind) const {
  return (kind == Activation::tanh || kind == Activation::relu) && in_ == 1 && weight_.value.device() == Device::cpu;
}

Forward Linear::forward_through(const Tensor& input, Activation kind) {
  if (!folds_activation_forward(kind)) {
    throw std::logic_error(describe() + ": forward_through runs only where folds_activation_forward(" +
                           to_string(kind) + ") holds");
  }
  check_input(input);
  if (input.device() != Device::cpu) throw std::invalid_argument(describe() + ": input on the GPU, weights on the CPU");
  const auto n = input.size(0);
  Tensor output({n, out_});
  const float* b = has_bias_ ? bias_.value.data() : nullptr;
  const auto product = kind == Activation::tanh ? outer_product_tanh : outer_product_relu;
  product(input.data(), weight_.value.data(), b, output.data(), n, out_);
  auto context = std::make_unique<LinearContext>();
  context->input = input;
  return {output, std::move(context)};
}

bool Linear::folds_activation_backward(Activation kind) const {
  return (kind == Activation::tanh || kind == Activation::relu) && out_ == 1 && input_grad_needed() &&
         weight_.value.device() == Device::cpu;
}

Tensor Linear::backward_through(const Context& context, const Tensor& grad_output, Activation kind) {
  if (!folds_activation_backward(kind)) {
    throw std::logic_error(describe() + ": backward_through runs only where folds_activation_backward(" +
                           to_string(kind) + ") holds");
  }
  const auto& saved = dynamic_cast<const LinearContext&>(context);
  const auto n = saved.input.size(0);
  if (!grad_output.defined() || grad_output.device() != Device::cpu || grad_output.shape() != Shape{n, out_}) {
    throw std::invalid_argument(describe() + ": gradient shape mismatch");
  }
  const float* g = grad_output.data();
  Tensor grad_input({n, in_});
  const auto fold = kind == Activation::tanh ? fold_tanh_rows : fold_relu_rows;
  fold(saved.input.data(), g, weight_.value.data(), weight_.grad.data(), grad_input.data(), n, in_);
  if (has_bias_) add_column_sums(g, bias_.grad.data(), n, out_);
  return grad_input;
}

// The backward products of a bf16 forward: the gradient rounded once, then the weight gradient
// from it and the rounded input, and the input gradient from it and the rounded weight (both
// accumulated in fp32); the bias gradient is summed in fp32 from the unrounded gradient.
Tensor Linear::backward_bf16(const Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const LinearContext&>(context);
  const auto n = saved.input.size(0);
  const float* g = grad_output.data();
  const Tensor g_bf16 = bf16_copy(g, n * out_);
  // dW[out, in] += (g[N, out])^T x[N, in]
  linear_backend::gemm_bf16(true, false, out_, in_, n, bf16_data(g_bf16), out_, bf16_data(saved.input_bf16), in_, 1.0f,
                            weight_.grad.data(), in_);
  if (has_bias_) add_column_sums(g, bias_.grad.data(), n, out_);
  if (!input_grad_needed()) return {};
  // dx[N, in] = g[N, out] W[out, in]
  Tensor grad_input({n, in_});
  linear_backend::gemm_bf16(false, false, n, in_, out_, bf16_data(g_bf16), out_, bf16_data(saved.weight_bf16), in_, 0.0f,
                            grad_input.data(), in_);
  return grad_input;
}

}  // namespace slurmlab::nn
