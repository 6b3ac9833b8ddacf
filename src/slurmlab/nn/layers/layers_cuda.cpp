// CUDA backend of the layers: cuBLASLt/cuBLAS for Linear, cuDNN 9 for convolution, pooling
// and batch norm, own kernels (cuda_kernels.cu) for activations, dropout, adaptive pooling
// and residual sums. Host code, C++20; built only with SLURMLAB_HAVE_CUDA.
//
// cuDNN API choice: the convolution, pooling and batch-norm calls below are cuDNN 9's
// "legacy" descriptor API (cudnnConvolutionForward, cudnnGetConvolutionForwardAlgorithm_v7,
// cudnnPoolingForward, cudnnBatchNormalizationForwardTraining, ...). cuDNN 9 still ships and
// supports it (it is marked deprecated only when CUDNN_WARN_DEPRECATED is defined), it runs
// on the same engines as the graph API for these plain operations, and it needs a fraction of
// the descriptor code the backend/graph API needs for the same convolution. The cuDNN 7
// calls that cuDNN 8/9 removed (cudnnGetConvolutionForwardAlgorithm without _v7, ...) are not
// used. Moving to the graph API is the way to fuse convolution + bias + ReLU later.
//
// Descriptors and algorithm choices are made once per shape and kept in a process-wide plan
// cache keyed by everything they depend on (shapes, stride, padding, math mode), as PyTorch's
// cuDNN cache; algorithms come from cuDNN's heuristics (the _v7 queries, the choice PyTorch
// makes with torch.backends.cudnn.benchmark off), the first that succeeds within the
// workspace cap.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "slurmlab/nn/cuda/backend.hpp"
#include "slurmlab/nn/cuda/kernels.hpp"
#include "slurmlab/nn/cuda/planning.hpp"

namespace slurmlab::nn::cuda {
namespace {

cudaStream_t stream() { return Context::get().stream(); }
cudnnHandle_t dnn() { return Context::get().cudnn(); }
bool tf32_on() { return Context::get().options().tf32 == Tf32::on; }
bool bf16_on() { return Context::get().options().precision == Precision::bf16; }

void require_cuda(const Tensor& tensor, const std::string& layer) {
  if (tensor.device() != Device::cuda) {
    throw std::invalid_argument(layer + ": a tensor is on " + to_string(tensor.device()) +
                                " while the input is on cuda; move the model with nn::to_device(model, Device::cuda)");
  }
}

int as_int(std::int64_t value, const char* what) {
  if (value > 0x7fffffff) throw std::invalid_argument(std::string(what) + " exceeds the 32-bit range of cuDNN/cuBLAS");
  return static_cast<int>(value);
}

// --- RAII wrappers for the cuDNN descriptors ---------------------------------------------
struct TensorDescriptor {
  cudnnTensorDescriptor_t handle = nullptr;
  TensorDescriptor(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                   cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(handle, CUDNN_TENSOR_NCHW, type, as_int(n, "batch"),
                                                    as_int(c, "channels"), as_int(h, "height"), as_int(w, "width")));
  }
  TensorDescriptor() { SLURMLAB_CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle)); }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(handle); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};
struct FilterDescriptor {
  cudnnFilterDescriptor_t handle = nullptr;
  FilterDescriptor(std::int64_t k, std::int64_t c, std::int64_t r, std::int64_t s,
                   cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateFilterDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetFilter4dDescriptor(handle, type, CUDNN_TENSOR_NCHW, as_int(k, "filters"),
                                                    as_int(c, "channels"), as_int(r, "kernel"), as_int(s, "kernel")));
  }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(handle); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};
struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t handle = nullptr;
  // math: 0 float32 (CUDNN_FMA_MATH: no tensor cores, exact float32 products), 1 TF32
  // (CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor cores for float32 data on Ampere and
  // later), 2 bf16 data (CUDNN_TENSOR_OP_MATH). Accumulation is float32 in all three. This is
  // the math type asked of the heuristics; the chosen algorithm's replaces it (ConvPlan).
  ConvolutionDescriptor(int padding, int stride, int math) {
    SLURMLAB_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&handle));
    SLURMLAB_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(handle, padding, padding, stride, stride, 1, 1,
                                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SLURMLAB_CUDNN_CHECK(cudnnSetConvolutionMathType(
        handle, math == 2 ? CUDNN_TENSOR_OP_MATH : (math == 1 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH)));
  }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(handle); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};
struct PoolingDescriptor {
  cudnnPoolingDescriptor_t handle = nullptr;
  PoolingDescriptor(PoolKind kind, int kernel, int stride, int padding) {
    SLURMLAB_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&handle));
    // Average pooling has no padding here (AvgPool2d), so both average modes agree.
    SLURMLAB_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        handle, kind == PoolKind::max ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
        CUDNN_PROPAGATE_NAN, kernel, kernel, padding, padding, stride, stride));
  }
  ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(handle); }
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
};

// --- Convolution plans --------------------------------------------------------------------
// Keyed by everything the descriptors and the algorithm choice depend on (cuda_planning.hpp).
using ConvKey = cuda_planning::ConvPlanKey;
using cuda_planning::ConvMath;

// cuDNN ranks (algorithm, math type) pairs (cudnnGet*Algorithm_v7's perf.mathType), and may
// rank a math type other than the descriptor's: the descriptor must then be set to the chosen
// entry's math type, or cuDNN runs another engine than the one chosen, with another workspace
// size (PyTorch's Conv_v7.cpp does the same, per direction). Hence one convolution
// descriptor per direction. With TF32 off only FMA-math entries qualify.
template <class Perf>
Perf choose_convolution_algorithm(const Perf* perf, int returned, ConvolutionDescriptor& descriptor, int math,
                                  std::size_t cap, const char* direction) {
  std::vector<cuda_planning::AlgorithmCandidate> ranked;
  for (int i = 0; i < returned; ++i) {
    ranked.push_back({.algorithm = static_cast<int>(perf[i].algo),
                      .succeeded = perf[i].status == CUDNN_STATUS_SUCCESS,
                      .workspace_bytes = perf[i].memory,
                      .fma_math = perf[i].mathType == CUDNN_FMA_MATH});
  }
  const auto chosen = cuda_planning::choose_algorithm(ranked, cap, math == 0);
  if (!chosen) {
    throw std::runtime_error(std::string("Conv2d: no cuDNN ") + direction + " algorithm fits the workspace cap of " +
                             std::to_string(cap >> 20) + " MiB" +
                             (math == 0 ? " with exact float32 (FMA) math; raise the cap or enable TF32" : "; raise the cap"));
  }
  SLURMLAB_CUDNN_CHECK(cudnnSetConvolutionMathType(descriptor.handle, perf[*chosen].mathType));
  return perf[*chosen];
}

struct ConvPlan {
  int math;
  TensorDescriptor x, y, y_float, bias;  // x, y in the data type of `math`; y_float for the bias
  FilterDescriptor w;
  // One per direction: each carries the math type of the algorithm chosen for it.
  ConvolutionDescriptor forward_conv, data_conv, filter_conv;
  Shape output_shape;
  cudnnConvolutionFwdAlgo_t forward_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  std::size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;

  ConvPlan(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t wi, std::int64_t k, std::int64_t kernel,
           std::int64_t stride, std::int64_t padding, int math_mode, std::size_t cap)
      : math(math_mode), x(n, c, h, wi, math_mode == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT), y(), y_float(),
        bias(1, k, 1, 1), w(k, c, kernel, kernel, math_mode == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT),
        forward_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode),
        data_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode),
        filter_conv(as_int(padding, "padding"), as_int(stride, "stride"), math_mode) {
    int on = 0, oc = 0, oh = 0, ow = 0;
    SLURMLAB_CUDNN_CHECK(
        cudnnGetConvolution2dForwardOutputDim(forward_conv.handle, x.handle, w.handle, &on, &oc, &oh, &ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.handle, CUDNN_TENSOR_NCHW,
                                                    math == 2 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, on, oc, oh, ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_float.handle, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow));
    output_shape = {on, oc, oh, ow};
    cudnnHandle_t handle = dnn();
    int capacity = 0, returned = 0;
    {
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &capacity));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<std::size_t>(std::max(capacity, 1)));
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x.handle, w.handle, forward_conv.handle,
                                                                  y.handle, capacity, &returned, perf.data()));
      forward_algo = choose_convolution_algorithm(perf.data(), returned, forward_conv, math, cap, "forward").algo;
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, x.handle, w.handle, forward_conv.handle,
                                                                   y.handle, forward_algo, &forward_bytes));
    }
    {
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &capacity));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<std::size_t>(std::max(capacity, 1)));
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, w.handle, y.handle, data_conv.handle,
                                                                       x.handle, capacity, &returned, perf.data()));
      data_algo = choose_convolution_algorithm(perf.data(), returned, data_conv, math, cap, "backward-data").algo;
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, w.handle, y.handle, data_conv.handle,
                                                                        x.handle, data_algo, &data_bytes));
    }
    {
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &capacity));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<std::size_t>(std::max(capacity, 1)));
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          handle, x.handle, y.handle, filter_conv.handle, w.handle, capacity, &returned, perf.data()));
      filter_algo = choose_convolution_algorithm(perf.data(), returned, filter_conv, math, cap, "backward-filter").algo;
      SLURMLAB_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle, x.handle, y.handle, filter_conv.handle, w.handle, filter_algo, &filter_bytes));
    }
    // The size query of the chosen (algorithm, math type) is what runs; it must fit too.
    const std::size_t largest = std::max({forward_bytes, data_bytes, filter_bytes});
    if (largest > cap) {
      throw std::runtime_error("Conv2d: cuDNN asks " + std::to_string(largest >> 20) +
                               " MiB of workspace for its chosen algorithm, above the cap of " +
                               std::to_string(cap >> 20) + " MiB; raise the cap");
    }
  }
};

ConvPlan& conv_plan(const ConvKey& key) {
  static std::map<ConvKey, std::unique_ptr<ConvPlan>> plans;
  auto& slot = plans[key];
  if (!slot) {
    slot = std::make_unique<ConvPlan>(key.batch, key.channels, key.height, key.width, key.filters, key.kernel,
                                      key.stride, key.padding, static_cast<int>(key.math), key.workspace_cap);
  }
  return *slot;
}

std::set<ConvKey>& bf16_unsupported_shapes() {
  static std::set<ConvKey> shapes;
  return shapes;
}

struct ConvContext final : nn::Context {
  Tensor input;  // float32, or its bf16 copy when the plan computes in bf16
  ConvKey key;
};

// --- cuBLAS products ----------------------------------------------------------------------
// Column-major GEMM C = alpha op(A) op(B) + beta C through cublasGemmEx: float32 operands
// (TF32 per the context's math mode) or bfloat16 operands with float32 accumulation and output.
void gemm(cublasOperation_t transa, cublasOperation_t transb, std::int64_t m, std::int64_t n, std::int64_t k,
          const void* a, std::int64_t lda, const void* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc,
          bool bf16) {
  const float alpha = 1.0f;
  const cudaDataType_t operand = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute = (!bf16 && tf32_on()) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  SLURMLAB_CUBLAS_CHECK(cublasGemmEx(Context::get().cublas(), transa, transb, as_int(m, "rows"), as_int(n, "columns"),
                                     as_int(k, "inner dimension"), &alpha, a, operand, as_int(lda, "lda"), b, operand,
                                     as_int(ldb, "ldb"), &beta, c, CUDA_R_32F, as_int(ldc, "ldc"), compute,
                                     CUBLAS_GEMM_DEFAULT));
}

// A bfloat16 copy of a float32 tensor, in storage from the caching allocator.
Tensor to_bf16(const Tensor& x) {
  Tensor half({(x.numel() + 1) / 2}, Device::cuda);
  cuda_kernels::float_to_bf16(x.device_data(), reinterpret_cast<std::uint16_t*>(half.device_data()), x.numel(),
                              stream());
  return half;
}

// cuBLASLt plan for Linear's forward, D[out, N] = op(W) X + bias (column-major view of the
// row-major y = x W^T + b) with the BIAS epilogue: bias added in the GEMM's epilogue, no
// second pass over y.
// Keyed by everything the heuristic's answer depends on (cuda_planning.hpp).
using LinearKey = cuda_planning::LinearPlanKey;
struct LinearPlan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic{};
  bool has_algorithm = false;

  LinearPlan(std::int64_t m, std::int64_t n, std::int64_t k, bool bias, bool bf16, bool tf32, std::size_t cap) {
    const cublasComputeType_t compute = (!bf16 && tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    SLURMLAB_CUBLAS_CHECK(cublasLtMatmulDescCreate(&operation, compute, CUDA_R_32F));
    const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
    SLURMLAB_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
    SLURMLAB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none));
    if (bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      SLURMLAB_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
      const cudaDataType_t bias_type = CUDA_R_32F;
      SLURMLAB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                           sizeof bias_type));
    }
    const cudaDataType_t operand = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    // Stored shapes (before the transposes): W is k x m (ld k), X is k x n (ld k), D is m x n.
    SLURMLAB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a, operand, static_cast<std::uint64_t>(k),
                                                     static_cast<std::uint64_t>(m), k));
    SLURMLAB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b, operand, static_cast<std::uint64_t>(k),
                                                     static_cast<std::uint64_t>(n), k));
    SLURMLAB_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, static_cast<std::uint64_t>(m),
                                                     static_cast<std::uint64_t>(n), m));
    cublasLtMatmulPreference_t preference = nullptr;
    SLURMLAB_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    const std::uint64_t workspace = std::min<std::size_t>(cap, std::size_t{32} << 20);
    SLURMLAB_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                               &workspace, sizeof workspace));
    int returned = 0;
    const auto status = cublasLtMatmulAlgoGetHeuristic(Context::get().cublas_lt(), operation, a, b, d, d, preference, 1,
                                                       &heuristic, &returned);
    cublasLtMatmulPreferenceDestroy(preference);
    has_algorithm = status == CUBLAS_STATUS_SUCCESS && returned > 0;
  }
  ~LinearPlan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (operation) cublasLtMatmulDescDestroy(operation);
  }
  LinearPlan(const LinearPlan&) = delete;
  LinearPlan& operator=(const LinearPlan&) = delete;
};

LinearPlan& linear_plan(const LinearKey& key) {
  static std::map<LinearKey, std::unique_ptr<LinearPlan>> plans;
  auto& slot = plans[key];
  if (!slot) {
    slot = std::make_unique<LinearPlan>(key.m, key.n, key.k, key.bias, key.bf16, key.tf32, key.workspace_cap);
  }
  return *slot;
}

struct LinearContext final : nn::Context {
  Tensor input;       // [N, in] float32, or its bf16 copy under bf16 precision
  std::int64_t rows = 0;
  bool bf16 = false;
};

struct SavedTensorContext final : nn::Context {
  Tensor tensor;
};

struct PoolContext final : nn::Context {
  Tensor input, output;
  PoolKind kind{};
  std::int64_t kernel = 0, stride = 0, padding = 0;
};

struct AdaptivePoolContext final : nn::Context {
  Shape input_shape;
  std::int64_t out_h = 0, out_w = 0;
};

struct BatchNormContext final : nn::Context {
  Tensor input, save_mean, save_inv_variance;
  Mode mode{};
  float eps = 0.0f;
};

}  // namespace

// --- Linear --------------------------------------------------------------------------------
Forward linear_forward(Linear& layer, const Tensor& input) {
  auto& w = layer.weight().value;
  require_cuda(w, layer.describe());
  const auto n = input.size(0), in = input.size(1), out = w.size(0);
  const bool bf16 = bf16_on();
  Tensor output({n, out}, Device::cuda);
  auto context = std::make_unique<LinearContext>();
  context->rows = n;
  context->bf16 = bf16;
  Tensor x_operand = bf16 ? to_bf16(input) : input;
  Tensor w_operand = bf16 ? to_bf16(w) : w;
  context->input = x_operand;
  auto& plan = linear_plan(cuda_planning::linear_plan_key(n, in, out, layer.has_bias(), Context::get().options()));
  if (plan.has_algorithm) {
    if (layer.has_bias()) {
      const void* bias = layer.bias().value.device_data();
      SLURMLAB_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                           sizeof bias));
    }
    const float alpha = 1.0f, beta = 0.0f;
    auto& ctx = Context::get();
    void* workspace = ctx.workspace(plan.heuristic.workspaceSize);
    SLURMLAB_CUBLAS_CHECK(cublasLtMatmul(ctx.cublas_lt(), plan.operation, &alpha, w_operand.device_data(), plan.a,
                                         x_operand.device_data(), plan.b, &beta, output.device_data(), plan.d,
                                         output.device_data(), plan.d, &plan.heuristic.algo, workspace,
                                         plan.heuristic.workspaceSize, stream()));
  } else {
    // No cuBLASLt algorithm for this shape: GEMM, then the bias as a broadcast add.
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, w_operand.device_data(), in, x_operand.device_data(), in, 0.0f,
         output.device_data(), out, bf16);
    if (layer.has_bias())
      cuda_kernels::add_channel_bias(output.device_data(), layer.bias().value.device_data(), n, out, 1, stream());
  }
  return {output, std::move(context)};
}

Tensor linear_backward(Linear& layer, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const LinearContext&>(context);
  auto& w = layer.weight();
  const auto n = saved.rows, out = w.value.size(0), in = w.value.size(1);
  if (grad_output.shape() != Shape{n, out}) throw std::invalid_argument(layer.describe() + ": gradient shape mismatch");
  Tensor g_operand = saved.bf16 ? to_bf16(grad_output) : grad_output;
  Tensor w_operand = saved.bf16 ? to_bf16(w.value) : w.value;
  // dW^T[in, out] (+)= X^T[in, N] G[N, out]  (column-major view of dW += G^T X)
  gemm(CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, saved.input.device_data(), in, g_operand.device_data(), out, 1.0f,
       w.grad.device_data(), in, saved.bf16);
  if (layer.has_bias())
    cuda_kernels::add_column_sums(grad_output.device_data(), layer.bias().grad.device_data(), n, out, stream());
  // dX^T[in, N] = W^T[in, out] G^T[out, N]  (dX = G W)
  Tensor grad_input({n, in}, Device::cuda);
  gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w_operand.device_data(), in, g_operand.device_data(), out, 0.0f,
       grad_input.device_data(), in, saved.bf16);
  return grad_input;
}

// --- Conv2d --------------------------------------------------------------------------------
std::size_t bf16_convolution_fallbacks() { return bf16_unsupported_shapes().size(); }

Forward conv2d_forward(Conv2d& layer, const Tensor& input) {
  auto& w = layer.weight().value;
  require_cuda(w, "Conv2d");
  ConvKey key = cuda_planning::conv_plan_key(input.shape(), w.shape(), layer.stride(), layer.padding(),
                                             Context::get().options());
  ConvPlan* plan = nullptr;
  if (key.math == ConvMath::bf16) {
    // Shapes cuDNN has no bf16 engine for run in float32/TF32 instead (remembered per shape).
    auto& unsupported = bf16_unsupported_shapes();
    if (!unsupported.count(key)) {
      try {
        plan = &conv_plan(key);
      } catch (const std::runtime_error&) {
        unsupported.insert(key);
      }
    }
    if (plan == nullptr) key.math = tf32_on() ? ConvMath::tf32 : ConvMath::float32;
  }
  if (plan == nullptr) plan = &conv_plan(key);
  const bool bf16 = plan->math == 2;
  Tensor output(plan->output_shape, Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  auto context = std::make_unique<ConvContext>();
  context->key = key;
  context->input = bf16 ? to_bf16(input) : input;
  const Tensor w_operand = bf16 ? to_bf16(w) : w;
  Tensor y_operand = bf16 ? Tensor({(output.numel() + 1) / 2}, Device::cuda) : output;
  // Grown here to what backward will need too: growing frees the old block (cudaFree waits
  // for the whole device), which during backward would also wait for the NCCL all-reduces
  // launched from the backward hook, outside their timeout.
  Context::get().workspace(std::max({plan->forward_bytes, plan->data_bytes, plan->filter_bytes}));
  void* workspace = Context::get().workspace(plan->forward_bytes);
  SLURMLAB_CUDNN_CHECK(cudnnConvolutionForward(dnn(), &one, plan->x.handle, context->input.device_data(), plan->w.handle,
                                               w_operand.device_data(), plan->forward_conv.handle, plan->forward_algo,
                                               workspace, plan->forward_bytes, &zero, plan->y.handle,
                                               y_operand.device_data()));
  if (bf16) {
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(y_operand.device_data()), output.device_data(),
                                output.numel(), stream());
  }
  if (layer.bias().value.numel() > 0) {
    SLURMLAB_CUDNN_CHECK(cudnnAddTensor(dnn(), &one, plan->bias.handle, layer.bias().value.device_data(), &one,
                                        plan->y_float.handle, output.device_data()));
  }
  return {output, std::move(context)};
}

Tensor conv2d_backward(Conv2d& layer, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const ConvContext&>(context);
  auto& plan = conv_plan(saved.key);
  if (grad_output.shape() != plan.output_shape) throw std::invalid_argument("Conv2d: gradient shape mismatch");
  const bool bf16 = plan.math == 2;
  const float one = 1.0f, zero = 0.0f;
  auto& w = layer.weight();
  if (layer.bias().value.numel() > 0) {
    SLURMLAB_CUDNN_CHECK(cudnnConvolutionBackwardBias(dnn(), &one, plan.y_float.handle, grad_output.device_data(), &one,
                                                      plan.bias.handle, layer.bias().grad.device_data()));
  }
  const Tensor g_operand = bf16 ? to_bf16(grad_output) : grad_output;
  const Tensor w_operand = bf16 ? to_bf16(w.value) : w.value;
  // bf16: the weight gradient of the bf16 weight copy, then added into the float32 master
  // gradient (autocast's cast-back); float32: accumulated in place (beta = 1).
  Tensor dw_operand = bf16 ? Tensor({(w.grad.numel() + 1) / 2}, Device::cuda) : w.grad;
  void* workspace = Context::get().workspace(plan.filter_bytes);
  SLURMLAB_CUDNN_CHECK(cudnnConvolutionBackwardFilter(dnn(), &one, plan.x.handle, saved.input.device_data(),
                                                      plan.y.handle, g_operand.device_data(), plan.filter_conv.handle,
                                                      plan.filter_algo, workspace, plan.filter_bytes,
                                                      bf16 ? &zero : &one, plan.w.handle,
                                                      dw_operand.device_data()));
  if (bf16) {
    Tensor dw(w.grad.shape(), Device::cuda);
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(dw_operand.device_data()), dw.device_data(),
                                dw.numel(), stream());
    cuda_kernels::add(w.grad.device_data(), dw.device_data(), w.grad.device_data(), dw.numel(), stream());
  }
  const Shape input_shape{saved.key.batch, saved.key.channels, saved.key.height, saved.key.width};
  Tensor grad_input(input_shape, Device::cuda);
  Tensor dx_operand = bf16 ? Tensor({(grad_input.numel() + 1) / 2}, Device::cuda) : grad_input;
  workspace = Context::get().workspace(plan.data_bytes);
  SLURMLAB_CUDNN_CHECK(cudnnConvolutionBackwardData(dnn(), &one, plan.w.handle, w_operand.device_data(), plan.y.handle,
                                                    g_operand.device_data(), plan.data_conv.handle, plan.data_algo,
                                                    workspace, plan.data_bytes, &zero, plan.x.handle,
                                                    dx_operand.device_data()));
  if (bf16) {
    cuda_kernels::bf16_to_float(reinterpret_cast<const std::uint16_t*>(dx_operand.device_data()),
                                grad_input.device_data(), grad_input.numel(), stream());
  }
  return grad_input;
}

// --- Activations, dropout, sums (own kernels: element-wise, bandwidth-bound; cuDNN's
// activation functions have no exact-erf GELU, so one kernel family serves all four) ---------
Forward activation_forward(Activation kind, const Tensor& input) {
  Tensor output(input.shape(), Device::cuda);
  cuda_kernels::activation_forward(static_cast<int>(kind), input.device_data(), output.device_data(), input.numel(),
                                   stream());
  auto context = std::make_unique<SavedTensorContext>();
  context->tensor = kind == Activation::tanh ? output : input;  // as the CPU layer
  return {output, std::move(context)};
}

Tensor activation_backward(Activation kind, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const SavedTensorContext&>(context).tensor;
  if (grad_output.numel() != saved.numel()) throw std::invalid_argument(to_string(kind) + ": gradient shape mismatch");
  Tensor grad_input(saved.shape(), Device::cuda);
  cuda_kernels::activation_backward(static_cast<int>(kind), saved.device_data(), grad_output.device_data(),
                                    grad_input.device_data(), saved.numel(), stream());
  return grad_input;
}

Forward dropout_forward(float p, Generator& generator, const Tensor& input, Mode mode) {
  if (mode == Mode::eval || p == 0.0f) return {input, std::make_unique<nn::Context>()};
  auto context = std::make_unique<SavedTensorContext>();
  context->tensor = Tensor(input.shape(), Device::cuda);
  Tensor output(input.shape(), Device::cuda);
  // One draw from the layer's generator seeds this call's Philox stream, so checkpoints that
  // restore the generator restore the masks; the masks differ from the CPU layer's.
  cuda_kernels::dropout_forward(input.device_data(), output.device_data(), context->tensor.device_data(),
                                input.numel(), p, generator.next(), stream());
  return {output, std::move(context)};
}

Tensor dropout_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto* saved = dynamic_cast<const SavedTensorContext*>(&context);
  if (saved == nullptr) return grad_output;  // eval mode or p == 0: identity
  Tensor grad_input(grad_output.shape(), Device::cuda);
  cuda_kernels::multiply(grad_output.device_data(), saved->tensor.device_data(), grad_input.device_data(),
                         grad_output.numel(), stream());
  return grad_input;
}

Tensor add(const Tensor& a, const Tensor& b) {
  require_cuda(b, "Residual");
  Tensor sum(a.shape(), Device::cuda);
  cuda_kernels::add(a.device_data(), b.device_data(), sum.device_data(), a.numel(), stream());
  return sum;
}

// --- Pooling ---------------------------------------------------------------------------------
namespace {
using PoolKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t>;  // kind, n, c, h, w, kernel, stride, padding
struct PoolPlan {
  PoolingDescriptor pool;
  TensorDescriptor x, y;
  Shape output_shape;
  PoolPlan(PoolKind kind, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t kernel,
           std::int64_t stride, std::int64_t padding)
      : pool(kind, as_int(kernel, "kernel"), as_int(stride, "stride"), as_int(padding, "padding")), x(n, c, h, w), y() {
    int on = 0, oc = 0, oh = 0, ow = 0;
    SLURMLAB_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pool.handle, x.handle, &on, &oc, &oh, &ow));
    SLURMLAB_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y.handle, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow));
    output_shape = {on, oc, oh, ow};
  }
};
PoolPlan& pool_plan(const PoolKey& key) {
  static std::map<PoolKey, std::unique_ptr<PoolPlan>> plans;
  auto& slot = plans[key];
  if (!slot) {
    const auto& [kind, n, c, h, w, kernel, stride, padding] = key;
    slot = std::make_unique<PoolPlan>(static_cast<PoolKind>(kind), n, c, h, w, kernel, stride, padding);
  }
  return *slot;
}
PoolKey pool_key(PoolKind kind, const Shape& shape, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  return {static_cast<int>(kind), shape[0], shape[1], shape[2], shape[3], kernel, stride, padding};
}
}  // namespace

Forward pool_forward(PoolKind kind, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                     const Tensor& input) {
  auto& plan = pool_plan(pool_key(kind, input.shape(), kernel, stride, padding));
  Tensor output(plan.output_shape, Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  SLURMLAB_CUDNN_CHECK(cudnnPoolingForward(dnn(), plan.pool.handle, &one, plan.x.handle, input.device_data(), &zero,
                                           plan.y.handle, output.device_data()));
  auto context = std::make_unique<PoolContext>();
  context->input = input;
  context->output = output;
  context->kind = kind;
  context->kernel = kernel;
  context->stride = stride;
  context->padding = padding;
  return {output, std::move(context)};
}

Tensor pool_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const PoolContext&>(context);
  auto& plan = pool_plan(pool_key(saved.kind, saved.input.shape(), saved.kernel, saved.stride, saved.padding));
  if (grad_output.shape() != plan.output_shape) throw std::invalid_argument("pooling: gradient shape mismatch");
  Tensor grad_input(saved.input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  SLURMLAB_CUDNN_CHECK(cudnnPoolingBackward(dnn(), plan.pool.handle, &one, plan.y.handle, saved.output.device_data(),
                                            plan.y.handle, grad_output.device_data(), plan.x.handle,
                                            saved.input.device_data(), &zero, plan.x.handle,
                                            grad_input.device_data()));
  return grad_input;
}

// cuDNN has no adaptive pooling: own kernels with PyTorch's bins.
Forward adaptive_avg_pool_forward(std::int64_t out_h, std::int64_t out_w, const Tensor& input) {
  const auto n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  Tensor output({n, c, out_h, out_w}, Device::cuda);
  cuda_kernels::adaptive_avg_pool_forward(input.device_data(), output.device_data(), n * c, h, w, out_h, out_w,
                                          stream());
  auto context = std::make_unique<AdaptivePoolContext>();
  context->input_shape = input.shape();
  context->out_h = out_h;
  context->out_w = out_w;
  return {output, std::move(context)};
}

Tensor adaptive_avg_pool_backward(const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const AdaptivePoolContext&>(context);
  const auto& s = saved.input_shape;
  if (grad_output.shape() != Shape{s[0], s[1], saved.out_h, saved.out_w})
    throw std::invalid_argument("AdaptiveAvgPool2d: gradient shape mismatch");
  Tensor grad_input(s, Device::cuda);
  cuda_kernels::adaptive_avg_pool_backward(grad_output.device_data(), grad_input.device_data(), s[0] * s[1], s[2],
                                           s[3], saved.out_h, saved.out_w, stream());
  return grad_input;
}

// --- Batch norm (cuDNN spatial mode on an [N, C, S, 1] view: per channel over N and S) ------
namespace {
struct BatchNormDescriptors {
  TensorDescriptor x, parameters;
  BatchNormDescriptors(const Shape& shape, std::int64_t channels)
      : x(shape[0], channels, element_count(shape) / (shape[0] * channels), 1), parameters() {
    SLURMLAB_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(parameters.handle, x.handle, CUDNN_BATCHNORM_SPATIAL));
  }
};
BatchNormDescriptors& batch_norm_descriptors(const Shape& shape, std::int64_t channels) {
  static std::map<Shape, std::unique_ptr<BatchNormDescriptors>> cache;
  auto& slot = cache[shape];
  if (!slot) slot = std::make_unique<BatchNormDescriptors>(shape, channels);
  return *slot;
}
}  // namespace

Forward batch_norm_forward(BatchNorm& layer, float eps, float momentum, const Tensor& input, Mode mode) {
  require_cuda(layer.weight().value, layer.describe());
  // cuDNN 9's minimum is 0 (cuDNN 7 had 1e-5, which float 1e-5f, the default, is below).
  if (!(static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON)) {
    throw std::invalid_argument(layer.describe() + ": eps " + std::to_string(eps) + " is below cuDNN's minimum of " +
                                std::to_string(CUDNN_BN_MIN_EPSILON) + "; use a larger eps on CUDA");
  }
  const auto channels = input.size(1);
  auto& descriptors = batch_norm_descriptors(input.shape(), channels);
  Tensor output(input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  auto context = std::make_unique<BatchNormContext>();
  context->mode = mode;
  context->eps = eps;
  context->input = input;
  if (mode == Mode::train) {
    context->save_mean = Tensor({channels}, Device::cuda);
    context->save_inv_variance = Tensor({channels}, Device::cuda);
    // cuDNN updates the running variance with the unbiased batch variance, as PyTorch.
    SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.x.handle, input.device_data(), descriptors.x.handle,
        output.device_data(), descriptors.parameters.handle, layer.weight().value.device_data(),
        layer.bias().value.device_data(), static_cast<double>(momentum), layer.running_mean().device_data(),
        layer.running_var().device_data(), static_cast<double>(eps), context->save_mean.device_data(),
        context->save_inv_variance.device_data()));
    cuda_kernels::add_scalar(layer.batches_tracked().device_data(), 1, 1.0f, stream());
  } else {
    SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, descriptors.x.handle, input.device_data(), descriptors.x.handle,
        output.device_data(), descriptors.parameters.handle, layer.weight().value.device_data(),
        layer.bias().value.device_data(), layer.running_mean().device_data(), layer.running_var().device_data(),
        static_cast<double>(eps)));
  }
  return {output, std::move(context)};
}

Tensor batch_norm_backward(BatchNorm& layer, const nn::Context& context, const Tensor& grad_output) {
  const auto& saved = dynamic_cast<const BatchNormContext&>(context);
  if (grad_output.shape() != saved.input.shape()) throw std::invalid_argument(layer.describe() + ": gradient shape mismatch");
  if (saved.mode != Mode::train) {
    const auto& shape = saved.input.shape();
    const auto channels = shape[1];
    Tensor grad_input(shape, Device::cuda);
    cuda_kernels::batch_norm_eval_backward(
        saved.input.device_data(), grad_output.device_data(), layer.weight().value.device_data(),
        layer.running_mean().device_data(), layer.running_var().device_data(), saved.eps, shape[0], channels,
        element_count(shape) / (shape[0] * channels), grad_input.device_data(), layer.weight().grad.device_data(),
        layer.bias().grad.device_data(), stream());
    return grad_input;
  }
  auto& descriptors = batch_norm_descriptors(saved.input.shape(), saved.input.size(1));
  Tensor grad_input(saved.input.shape(), Device::cuda);
  const float one = 1.0f, zero = 0.0f;
  // alphaParamDiff = betaParamDiff = 1: the weight and bias gradients accumulate.
  SLURMLAB_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      dnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &one, descriptors.x.handle, saved.input.device_data(),
      descriptors.x.handle, grad_output.device_data(), descriptors.x.handle, grad_input.device_data(),
      descriptors.parameters.handle, layer.weight().value.device_data(), layer.weight().grad.device_data(),
      layer.bias().grad.device_data(), static_cast<double>(saved.eps), saved.save_mean.device_data(),
      saved.save_inv_variance.device_data()));
  return grad_input;
}

}  // namespace slurmlab::nn::cuda
