// slurmlab::nn's own CUDA kernels (see cuda_kernels.hpp for what each computes and why it is
// not a library call). Grid-stride loops, 256 threads per block (kernel_geometry.hpp), every
// launch on the caller's stream. Every launch is checked at once with cudaGetLastError: a
// launch that fails to start (bad configuration, no kernel image for this GPU) sets only that
// per-thread error and is not reported by later runtime calls on the stream.
#include <cuda_bf16.h>
#include <curand_kernel.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/cuda/kernel_geometry.hpp"

namespace slurmlab::nn::cuda_kernels {
namespace {

using kernel_geometry::blocks_for;
using kernel_geometry::kThreads;
using kernel_geometry::tensor_of;

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA launch of ") + kernel + " failed: " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
  }
}

#define SLURMLAB_GRID_STRIDE(i, n)                                                                         \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);        \
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

__global__ void fill_kernel(float* y, std::int64_t n, float value) {
  SLURMLAB_GRID_STRIDE(i, n) y[i] = value;
}
__global__ void add_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
__global__ void multiply_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}
__global__ void add_scalar_kernel(float* y, std::int64_t n, float value) {
  SLURMLAB_GRID_STRIDE(i, n) y[i] += value;
}
__global__ void scale_kernel(float* y, std::int64_t n, float factor) {
  SLURMLAB_GRID_STRIDE(i, n) y[i] *= factor;
}

__device__ float normal_cdf(float x) { return 0.5f * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ float normal_pdf(float x) { return expf(-0.5f * x * x) * 0.39894228040143268f; }
__device__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void activation_forward_kernel(int kind, const float* x, float* y, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) {
    const float v = x[i];
    switch (kind) {
      case 0: y[i] = v > 0.0f ? v : 0.0f; break;
      case 1: y[i] = tanhf(v); break;
      case 2: y[i] = v * normal_cdf(v); break;
      default: y[i] = v * sigmoid(v); break;
    }
  }
}

__global__ void activation_backward_kernel(int kind, const float* s, const float* dy, float* dx, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) {
    const float v = s[i];
    const float g = dy[i];
    switch (kind) {
      case 0: dx[i] = v > 0.0f ? g : 0.0f; break;
      case 1: dx[i] = g * (1.0f - v * v); break;
      case 2: dx[i] = g * (normal_cdf(v) + v * normal_pdf(v)); break;
      default: {
        const float sg = sigmoid(v);
        dx[i] = g * sg * (1.0f + v * (1.0f - sg));
      }
    }
  }
}

__global__ void dropout_kernel(const float* x, float* y, float* mask, std::int64_t n, float p,
                               unsigned long long seed) {
  const float keep_scale = 1.0f / (1.0f - p);
  SLURMLAB_GRID_STRIDE(i, n) {
    // Philox4x32-10 at subsequence i: a pure function of (seed, i).
    curandStatePhilox4_32_10_t state;
    curand_init(seed, static_cast<unsigned long long>(i), 0, &state);
    const float u = curand_uniform(&state);  // (0, 1]
    const float m = (1.0f - u) < p ? 0.0f : keep_scale;  // 1 - u is uniform on [0, 1)
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

__global__ void column_sums_kernel(const float* g, float* sums, std::int64_t rows, std::int64_t width) {
  SLURMLAB_GRID_STRIDE(o, width) {
    float total = 0.0f;
    for (std::int64_t i = 0; i < rows; ++i) total += g[i * width + o];
    sums[o] += total;
  }
}

__global__ void channel_bias_kernel(float* y, const float* bias, std::int64_t n, std::int64_t channels,
                                    std::int64_t plane) {
  SLURMLAB_GRID_STRIDE(i, n) y[i] += bias[(i / plane) % channels];
}

// Block-wide reductions over kThreads threads in shared memory (arrays of kThreads entries,
// halved per step: the kernels that use them declare __launch_bounds__(kThreads), and every
// launch uses exactly kThreads).
__device__ float block_max(float value, float* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + stride]);
    __syncthreads();
  }
  const float result = shared[0];
  __syncthreads();
  return result;
}
__device__ double block_sum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const double result = shared[0];
  __syncthreads();
  return result;
}
// The lowest index holding the row maximum (argmax's tie rule).
__device__ std::int64_t block_argmax(const float* row, std::int64_t classes, float max, std::int64_t* shared) {
  std::int64_t best = classes;
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x)
    if (row[j] == max && j < best) best = j;
  shared[threadIdx.x] = best;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride && shared[threadIdx.x + stride] < shared[threadIdx.x])
      shared[threadIdx.x] = shared[threadIdx.x + stride];
    __syncthreads();
  }
  const std::int64_t result = shared[0];
  __syncthreads();
  return result;
}

__global__ void __launch_bounds__(kThreads) softmax_cross_entropy_kernel(const float* logits, const std::int64_t* labels, std::int64_t rows,
                                             std::int64_t classes, double label_smoothing, float* grad, double* loss_sum,
                                             unsigned long long* correct) {
  __shared__ float shared_float[kThreads];
  __shared__ double shared_double[kThreads];
  __shared__ std::int64_t shared_index[kThreads];
  const std::int64_t i = blockIdx.x;
  const float* row = logits + i * classes;
  float local_max = -INFINITY;  // a row of -inf then has its argmax at 0, as the CPU path
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x) local_max = fmaxf(local_max, row[j]);
  const float max = block_max(local_max, shared_float);
  double local_total = 0.0;
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x) local_total += exp(static_cast<double>(row[j]) - max);
  const double log_total = log(block_sum(local_total, shared_double));
  // Label smoothing (as the CPU path): target q = on_label * onehot + everywhere.
  const double on_label = 1.0 - label_smoothing, everywhere = label_smoothing / static_cast<double>(classes);
  double local_shifted = 0.0;
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x) local_shifted += static_cast<double>(row[j]) - max;
  const double shifted_sum = everywhere != 0.0 ? block_sum(local_shifted, shared_double) : 0.0;
  const std::int64_t label = labels[i];
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
    const double softmax = exp(static_cast<double>(row[j]) - max - log_total);
    const double target = (j == label ? on_label : 0.0) + everywhere;
    grad[i * classes + j] = static_cast<float>((softmax - target) / static_cast<double>(rows));
  }
  const std::int64_t best = block_argmax(row, classes, max, shared_index);
  if (threadIdx.x == 0) {
    atomicAdd(loss_sum, log_total - on_label * (static_cast<double>(row[label]) - max) - everywhere * shifted_sum);
    if (correct != nullptr && best == label) atomicAdd(correct, 1ull);
  }
}

__global__ void __launch_bounds__(kThreads) count_correct_kernel(const float* logits, const std::int64_t* labels, std::int64_t classes,
                                     unsigned long long* correct) {
  __shared__ float shared_float[kThreads];
  __shared__ std::int64_t shared_index[kThreads];
  const float* row = logits + static_cast<std::int64_t>(blockIdx.x) * classes;
  float local_max = -INFINITY;  // a row of -inf then has its argmax at 0, as the CPU path
  for (std::int64_t j = threadIdx.x; j < classes; j += blockDim.x) local_max = fmaxf(local_max, row[j]);
  const float max = block_max(local_max, shared_float);
  const std::int64_t best = block_argmax(row, classes, max, shared_index);
  if (threadIdx.x == 0 && best == labels[blockIdx.x]) atomicAdd(correct, 1ull);
}

__global__ void __launch_bounds__(kThreads) mse_kernel(const float* p, const float* t, const float* w, std::int64_t rows, std::int64_t per_row,
                           double norm, float* grad, double* loss_sum) {
  __shared__ double shared_double[kThreads];
  double local = 0.0;
  const std::int64_t n = rows * per_row;
  SLURMLAB_GRID_STRIDE(k, n) {
    const double weight = w == nullptr ? 1.0 : static_cast<double>(w[k / per_row]);
    const double d = static_cast<double>(p[k]) - t[k];
    local += weight * d * d;
    grad[k] = static_cast<float>(2.0 * weight * d / norm);
  }
  const double total = block_sum(local, shared_double);
  if (threadIdx.x == 0) atomicAdd(loss_sum, total);
}

__global__ void __launch_bounds__(kThreads) batch_norm_eval_backward_kernel(const float* x, const float* dy, const float* gamma,
                                               const float* running_mean, const float* running_var, float eps,
                                               std::int64_t batch, std::int64_t channels, std::int64_t plane,
                                               float* dx, float* dgamma, float* dbeta) {
  __shared__ double shared_double[kThreads];
  const std::int64_t c = blockIdx.x;
  const float inv_std = 1.0f / sqrtf(running_var[c] + eps);
  const float mean = running_mean[c];
  const float scale = gamma[c] * inv_std;
  double sum_g = 0.0, sum_gx = 0.0;
  const std::int64_t count = batch * plane;
  for (std::int64_t e = threadIdx.x; e < count; e += blockDim.x) {
    const std::int64_t k = ((e / plane) * channels + c) * plane + e % plane;
    const float g = dy[k];
    sum_g += g;
    sum_gx += static_cast<double>(g) * ((x[k] - mean) * inv_std);
    dx[k] = g * scale;
  }
  const double total_g = block_sum(sum_g, shared_double);
  const double total_gx = block_sum(sum_gx, shared_double);
  if (threadIdx.x == 0) {
    dbeta[c] += static_cast<float>(total_g);
    dgamma[c] += static_cast<float>(total_gx);
  }
}

__global__ void sgd_kernel(TensorList list, SgdStep step) {
  SLURMLAB_GRID_STRIDE(k, list.total) {
    const int t = tensor_of(list.offsets, list.count, k);
    const std::int64_t e = k - list.offsets[t];
    float* value = list.values[t] + e;
    float d = list.grads[t][e];
    if (step.weight_decay != 0.0f) d += step.weight_decay * *value;
    if (step.momentum != 0.0f) {
      float& buffer = list.state0[t][e];
      buffer = step.first_step ? d : step.momentum * buffer + step.keep * d;
      d = step.nesterov ? d + step.momentum * buffer : buffer;
    }
    *value -= step.lr * d;
  }
}

__global__ void adam_kernel(TensorList list, AdamStep step) {
  SLURMLAB_GRID_STRIDE(k, list.total) {
    const int t = tensor_of(list.offsets, list.count, k);
    const std::int64_t e = k - list.offsets[t];
    float& value = list.values[t][e];
    float g = list.grads[t][e];
    if (step.decoupled) {
      value *= step.decay_factor;
    } else if (step.weight_decay != 0.0f) {
      g += step.weight_decay * value;
    }
    float& m = list.state0[t][e];
    float& v = list.state1[t][e];
    m = m * step.beta1 + (1.0f - step.beta1) * g;
    v = v * step.beta2 + (1.0f - step.beta2) * g * g;
    const float denom = sqrtf(v) / step.bias_correction2_sqrt + step.eps;
    value -= step.step_size * (m / denom);
  }
}

__global__ void __launch_bounds__(kThreads) squared_norm_kernel(TensorList list, double* out_sum) {
  __shared__ double shared_double[kThreads];
  double local = 0.0;
  SLURMLAB_GRID_STRIDE(k, list.total) {
    const int t = tensor_of(list.offsets, list.count, k);
    const double g = list.grads[t][k - list.offsets[t]];
    local += g * g;
  }
  const double total = block_sum(local, shared_double);
  if (threadIdx.x == 0) atomicAdd(out_sum, total);
}

__global__ void scale_all_kernel(TensorList list, float factor) {
  SLURMLAB_GRID_STRIDE(k, list.total) {
    const int t = tensor_of(list.offsets, list.count, k);
    list.grads[t][k - list.offsets[t]] *= factor;
  }
}

__global__ void clamp_all_kernel(TensorList list, float limit) {
  SLURMLAB_GRID_STRIDE(k, list.total) {
    const int t = tensor_of(list.offsets, list.count, k);
    float& g = list.grads[t][k - list.offsets[t]];
    g = g < -limit ? -limit : (g > limit ? limit : g);
  }
}

__global__ void to_bf16_kernel(const float* x, std::uint16_t* y, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) {
    const __nv_bfloat16 b = __float2bfloat16_rn(x[i]);
    y[i] = *reinterpret_cast<const std::uint16_t*>(&b);
  }
}
__global__ void from_bf16_kernel(const std::uint16_t* x, float* y, std::int64_t n) {
  SLURMLAB_GRID_STRIDE(i, n) {
    // A bf16 is the upper half of the float with the same bits.
    y[i] = __uint_as_float(static_cast<unsigned>(x[i]) << 16);
  }
}

__device__ std::int64_t bin_start(std::int64_t i, std::int64_t in, std::int64_t out) { return (i * in) / out; }
__device__ std::int64_t bin_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

__global__ void adaptive_pool_forward_kernel(const float* x, float* y, std::int64_t planes, std::int64_t h,
                                             std::int64_t w, std::int64_t oh, std::int64_t ow) {
  const std::int64_t n = planes * oh * ow;
  SLURMLAB_GRID_STRIDE(k, n) {
    const std::int64_t plane = k / (oh * ow), r = (k / ow) % oh, c = k % ow;
    const std::int64_t r0 = bin_start(r, h, oh), r1 = bin_end(r, h, oh);
    const std::int64_t c0 = bin_start(c, w, ow), c1 = bin_end(c, w, ow);
    float total = 0.0f;
    for (std::int64_t i = r0; i < r1; ++i)
      for (std::int64_t j = c0; j < c1; ++j) total += x[(plane * h + i) * w + j];
    y[k] = total / static_cast<float>((r1 - r0) * (c1 - c0));
  }
}

// Gather form (one thread per input element, summing the bins that cover it): no atomics,
// deterministic.
__global__ void adaptive_pool_backward_kernel(const float* dy, float* dx, std::int64_t planes, std::int64_t h,
                                              std::int64_t w, std::int64_t oh, std::int64_t ow) {
  const std::int64_t n = planes * h * w;
  SLURMLAB_GRID_STRIDE(k, n) {
    const std::int64_t plane = k / (h * w), i = (k / w) % h, j = k % w;
    float total = 0.0f;
    for (std::int64_t r = 0; r < oh; ++r) {
      const std::int64_t r0 = bin_start(r, h, oh), r1 = bin_end(r, h, oh);
      if (i < r0 || i >= r1) continue;
      for (std::int64_t c = 0; c < ow; ++c) {
        const std::int64_t c0 = bin_start(c, w, ow), c1 = bin_end(c, w, ow);
        if (j < c0 || j >= c1) continue;
        total += dy[(plane * oh + r) * ow + c] / static_cast<float>((r1 - r0) * (c1 - c0));
      }
    }
    dx[k] = total;
  }
}

}  // namespace

void fill(float* y, std::int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, value);
  check_launch("fill_kernel");
}
void add(const float* a, const float* b, float* out, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
  check_launch("add_kernel");
}
void multiply(const float* a, const float* b, float* out, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  multiply_kernel<<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
  check_launch("multiply_kernel");
}
void add_scalar(float* y, std::int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  add_scalar_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, value);
  check_launch("add_scalar_kernel");
}
void scale(float* y, std::int64_t n, float factor, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, factor);
  check_launch("scale_kernel");
}
void activation_forward(int kind, const float* x, float* y, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  activation_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(kind, x, y, n);
  check_launch("activation_forward_kernel");
}
void activation_backward(int kind, const float* s, const float* dy, float* dx, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  activation_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(kind, s, dy, dx, n);
  check_launch("activation_backward_kernel");
}
void dropout_forward(const float* x, float* y, float* mask, std::int64_t n, float p, std::uint64_t seed,
                     cudaStream_t stream) {
  if (n <= 0) return;
  dropout_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, mask, n, p, seed);
  check_launch("dropout_kernel");
}
void add_column_sums(const float* g, float* sums, std::int64_t rows, std::int64_t width, cudaStream_t stream) {
  if (width <= 0) return;
  column_sums_kernel<<<blocks_for(width), kThreads, 0, stream>>>(g, sums, rows, width);
  check_launch("column_sums_kernel");
}
void add_channel_bias(float* y, const float* bias, std::int64_t batch, std::int64_t channels, std::int64_t plane,
                      cudaStream_t stream) {
  const std::int64_t n = batch * channels * plane;
  if (n <= 0) return;
  channel_bias_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, bias, n, channels, plane);
  check_launch("channel_bias_kernel");
}
void softmax_cross_entropy(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                           double label_smoothing, float* grad, double* loss_sum, unsigned long long* correct,
                           cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_cross_entropy_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, labels, rows, classes, label_smoothing, grad, loss_sum, correct);
  check_launch("softmax_cross_entropy_kernel");
}
void count_correct(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                   unsigned long long* correct, cudaStream_t stream) {
  if (rows <= 0) return;
  count_correct_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, labels, classes, correct);
  check_launch("count_correct_kernel");
}
void mse(const float* prediction, const float* target, const float* row_weights, std::int64_t rows,
         std::int64_t per_row, double norm, float* grad, double* loss_sum, cudaStream_t stream) {
  const std::int64_t n = rows * per_row;
  if (n <= 0) return;
  mse_kernel<<<blocks_for(n), kThreads, 0, stream>>>(prediction, target, row_weights, rows, per_row, norm, grad,
                                                     loss_sum);
  check_launch("mse_kernel");
}
void sgd_step(const TensorList& tensors, const SgdStep& step, cudaStream_t stream) {
  if (tensors.total <= 0) return;
  sgd_kernel<<<blocks_for(tensors.total), kThreads, 0, stream>>>(tensors, step);
  check_launch("sgd_kernel");
}
void adam_step(const TensorList& tensors, const AdamStep& step, cudaStream_t stream) {
  if (tensors.total <= 0) return;
  adam_kernel<<<blocks_for(tensors.total), kThreads, 0, stream>>>(tensors, step);
  check_launch("adam_kernel");
}
void squared_norm(const TensorList& tensors, double* out_sum, cudaStream_t stream) {
  if (tensors.total <= 0) return;
  squared_norm_kernel<<<blocks_for(tensors.total), kThreads, 0, stream>>>(tensors, out_sum);
  check_launch("squared_norm_kernel");
}
void scale_all(const TensorList& tensors, float factor, cudaStream_t stream) {
  if (tensors.total <= 0) return;
  scale_all_kernel<<<blocks_for(tensors.total), kThreads, 0, stream>>>(tensors, factor);
  check_launch("scale_all_kernel");
}
void clamp_all(const TensorList& tensors, float limit, cudaStream_t stream) {
  if (tensors.total <= 0) return;
  clamp_all_kernel<<<blocks_for(tensors.total), kThreads, 0, stream>>>(tensors, limit);
  check_launch("clamp_all_kernel");
}
void float_to_bf16(const float* x, std::uint16_t* y, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  check_launch("to_bf16_kernel");
}
void bf16_to_float(const std::uint16_t* x, float* y, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  from_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  check_launch("from_bf16_kernel");
}
void batch_norm_eval_backward(const float* x, const float* dy, const float* gamma, const float* running_mean,
                              const float* running_var, float eps, std::int64_t batch, std::int64_t channels,
                              std::int64_t plane, float* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  if (channels <= 0) return;
  batch_norm_eval_backward_kernel<<<static_cast<unsigned>(channels), kThreads, 0, stream>>>(
      x, dy, gamma, running_mean, running_var, eps, batch, channels, plane, dx, dgamma, dbeta);
  check_launch("batch_norm_eval_backward_kernel");
}
void adaptive_avg_pool_forward(const float* x, float* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                               std::int64_t out_h, std::int64_t out_w, cudaStream_t stream) {
  const std::int64_t n = planes * out_h * out_w;
  if (n <= 0) return;
  adaptive_pool_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, planes, h, w, out_h, out_w);
  check_launch("adaptive_pool_forward_kernel");
}
void adaptive_avg_pool_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t h, std::int64_t w,
                                std::int64_t out_h, std::int64_t out_w, cudaStream_t stream) {
  const std::int64_t n = planes * h * w;
  if (n <= 0) return;
  adaptive_pool_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dy, dx, planes, h, w, out_h, out_w);
  check_launch("adaptive_pool_backward_kernel");
}

}  // namespace slurmlab::nn::cuda_kernels
