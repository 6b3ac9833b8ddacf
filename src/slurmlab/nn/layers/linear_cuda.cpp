// Linear, CUDA backend: cuBLASLt with the bias in the GEMM's epilogue, cuBLAS where cuBLASLt
// has no algorithm for a shape and for the gradients. Host code, C++20; built only with CUDA
// (linear.cpp is the CPU reference).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "slurmlab/nn/cuda/planning.hpp"
#include "slurmlab/nn/layers/cuda_support.hpp"
#include "slurmlab/nn/layers/layers_cuda.hpp"

namespace slurmlab::nn::cuda {
namespace {

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

// cuBLASLt plan for Linear's forward, D[out, N] = op(W) X + bias (column-major view of the
// row-major y = x W^T + b) with the BIAS epilogue: bias added in the GEMM's epilogue, no
// second pass over y.
// Keyed by everything the heuristic's answer depends on (cuda/planning.hpp).
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
    // NOT_SUPPORTED: no cuBLASLt kernel for this shape (cublasGemmEx serves it); any other
    // failure is a mistake in the plan above, which a silent fallback would hide.
    if (status != CUBLAS_STATUS_SUCCESS && status != CUBLAS_STATUS_NOT_SUPPORTED) SLURMLAB_CUBLAS_CHECK(status);
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

}  // namespace

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
  // dW^T[in, out] (+)= X^T[in, N] G[N, out]  (column-major view of dW += G^T X)
  gemm(CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, saved.input.device_data(), in, g_operand.device_data(), out, 1.0f,
       w.grad.device_data(), in, saved.bf16);
  if (layer.has_bias())
    cuda_kernels::add_column_sums(grad_output.device_data(), layer.bias().grad.device_data(), n, out, stream());
  if (!layer.input_grad_needed()) return {};  // the network's first layer: its input is data
  // dX^T[in, N] = W^T[in, out] G^T[out, N]  (dX = G W)
  const Tensor w_operand = saved.bf16 ? to_bf16(w.value) : w.value;
  Tensor grad_input({n, in}, Device::cuda);
  gemm(CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, w_operand.device_data(), in, g_operand.device_data(), out, 0.0f,
       grad_input.device_data(), in, saved.bf16);
  return grad_input;
}

}  // namespace slurmlab::nn::cuda
