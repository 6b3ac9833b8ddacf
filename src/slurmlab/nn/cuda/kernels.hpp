#pragma once
// The own CUDA kernels of slurmlab::nn (kernels.cu): only what no library call does
// (cuBLAS and cuDNN do the products, convolutions, pooling and batch norm; see the layers'
// *_cuda.cpp files). Plain pointers and counts, no C++20: the .cu files build as C++17
// (CMake 3.25 knows no C++20 flag for nvcc), the host code that calls them is C++20.
// Every launch goes on the stream passed in and returns without synchronising.
#include <cuda_runtime.h>

#include <cstdint>

namespace slurmlab::nn::cuda_kernels {

// y[i] = value
void fill(float* y, std::int64_t n, float value, cudaStream_t stream);
// out[i] = a[i] + b[i]
void add(const float* a, const float* b, float* out, std::int64_t n, cudaStream_t stream);
// out[i] = a[i] * b[i]
void multiply(const float* a, const float* b, float* out, std::int64_t n, cudaStream_t stream);
// y[i] += value
void add_scalar(float* y, std::int64_t n, float value, cudaStream_t stream);
// y[i] *= scale
void scale(float* y, std::int64_t n, float scale, cudaStream_t stream);

// Activation codes as in nn::Activation: 0 relu, 1 tanh, 2 gelu (exact erf form), 3 silu.
void activation_forward(int kind, const float* x, float* y, std::int64_t n, cudaStream_t stream);
// dx[i] = dy[i] * f'(x[i]) from the saved tensor s: the input x, except for tanh (kind 1),
// whose derivative 1 - y^2 needs only the output y (as the CPU layer saves).
void activation_backward(int kind, const float* s, const float* dy, float* dx, std::int64_t n, cudaStream_t stream);

// Dropout: mask[i] = (u_i < p ? 0 : 1/(1-p)) with u_i from Philox4x32-10 (curand) keyed by
// `seed` at counter i, and y[i] = x[i] * mask[i]. A counter-based generator makes the mask a
// pure function of (seed, i): no per-thread state, the same mask on every launch geometry.
void dropout_forward(const float* x, float* y, float* mask, std::int64_t n, float p, std::uint64_t seed,
                     cudaStream_t stream);

// sums[o] += sum_i g[i * width + o] for i < rows (the bias gradient of a Linear layer).
void add_column_sums(const float* g, float* sums, std::int64_t rows, std::int64_t width, cudaStream_t stream);
// y[(b * channels + c) * plane + k] += bias[c]  (the bias of a convolution, NCHW)
void add_channel_bias(float* y, const float* bias, std::int64_t batch, std::int64_t channels, std::int64_t plane,
                      cudaStream_t stream);

// Fused softmax cross-entropy, one block per row: grad[i, :] = (softmax(logits[i, :]) -
// onehot(label_i)) / rows, and loss_sum[0] += -log softmax(logits[i, label_i]) (double), and
// correct[0] += (argmax == label) (ties to the lowest index, as the CPU path).
void softmax_cross_entropy(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                           double label_smoothing,
                           float* grad, double* loss_sum, unsigned long long* correct, cudaStream_t stream);
// correct[0] += number of rows whose argmax equals the label.
void count_correct(const float* logits, const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                   unsigned long long* correct, cudaStream_t stream);
// MSE with optional row weights w (nullptr: all 1): grad = 2 w (p - t) / norm, loss_sum[0] +=
// sum w (p - t)^2 (double). norm = sum(w) * per_row, computed by the caller.
void mse(const float* prediction, const float* target, const float* row_weights, std::int64_t rows,
         std::int64_t per_row, double norm, float* grad, double* loss_sum, cudaStream_t stream);

// One fused optimizer launch over every parameter tensor of a model: the tensors are
// described by device arrays of pointers and sizes (built once per optimizer), and a grid
// stride over the concatenated element range updates them all. The update rules are the CPU
// ones (optim.cpp) in the same float operation order.
struct TensorList {
  float** values = nullptr;  // device array [count]
  float** grads = nullptr;
  float** state0 = nullptr;  // SGD momentum / Adam exp_avg (nullptr when unused)
  float** state1 = nullptr;  // Adam exp_avg_sq
  const std::int64_t* offsets = nullptr;  // device array [count + 1], prefix sums of sizes
  int count = 0;
  std::int64_t total = 0;
};
struct SgdStep {
  float lr, weight_decay, momentum, keep;  // keep = 1 - dampening
  bool nesterov, first_step;
};
void sgd_step(const TensorList& tensors, const SgdStep& step, cudaStream_t stream);
struct AdamStep {
  float step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay, decay_factor;
  bool decoupled;
};
void adam_step(const TensorList& tensors, const AdamStep& step, cudaStream_t stream);
// out_sum[0] += sum over all tensors of grad^2 (double), for gradient clipping.
void squared_norm(const TensorList& tensors, double* out_sum, cudaStream_t stream);
// grad *= factor over all tensors.
void scale_all(const TensorList& tensors, float factor, cudaStream_t stream);
// grad clamped into [-limit, limit] over all tensors (a NaN stays NaN, as std::clamp).
void clamp_all(const TensorList& tensors, float limit, cudaStream_t stream);

// Mixed precision: bf16 copies of fp32 tensors and back (round to nearest even).
void float_to_bf16(const float* x, std::uint16_t* y, std::int64_t n, cudaStream_t stream);
void bf16_to_float(const std::uint16_t* x, float* y, std::int64_t n, cudaStream_t stream);

// Eval-mode batch norm backward (cuDNN's backward is train-mode only), one block per channel,
// the running statistics being constants: x_hat = (x - mean) / sqrt(var + eps),
// dx = dy * gamma / sqrt(var + eps), dgamma += sum dy * x_hat, dbeta += sum dy.
void batch_norm_eval_backward(const float* x, const float* dy, const float* gamma, const float* running_mean,
                              const float* running_var, float eps, std::int64_t batch, std::int64_t channels,
                              std::int64_t plane, float* dx, float* dgamma, float* dbeta, cudaStream_t stream);

// Adaptive average pooling (PyTorch's bins) forward and backward, NCHW.
void adaptive_avg_pool_forward(const float* x, float* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                               std::int64_t out_h, std::int64_t out_w, cudaStream_t stream);
void adaptive_avg_pool_backward(const float* dy, float* dx, std::int64_t planes, std::int64_t h, std::int64_t w,
                                std::int64_t out_h, std::int64_t out_w, cudaStream_t stream);

}  // namespace slurmlab::nn::cuda_kernels
