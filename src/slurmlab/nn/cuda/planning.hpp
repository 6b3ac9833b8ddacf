#pragma once
// Host-side decisions of the CUDA backend that need no GPU to be made or tested: the keys of
// the per-shape plan caches, the shared workspace's growth, which cuDNN convolution algorithm
// to run, and how gradients are grouped into all-reduce buckets.
// Compiled in every build (no CUDA header here); tests/unit/test_nn_cuda_planning.cpp checks
// them on the CPU, and layers/linear_cuda.cpp, layers/conv2d_cuda.cpp and
// distributed/nccl_gradient_reducer.cpp use them on the GPU.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "slurmlab/nn/cuda/device.hpp"

namespace slurmlab::nn::cuda_planning {

// Plans (descriptors plus the algorithms chosen for them) are made once per key and kept for
// the process; a key holds everything a plan depends on, so that a plan made under other
// options (precision, TF32, workspace cap, device: configure_cuda can change them) is never
// reused.
enum class ConvMath { float32 = 0, tf32 = 1, bf16 = 2 };  // the compute mode asked of cuDNN
ConvMath convolution_math(const CudaOptions& options);

struct ConvPlanKey {
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;  // input, NCHW
  std::int64_t filters = 0, kernel = 0, stride = 1, padding = 0;
  ConvMath math = ConvMath::float32;
  std::size_t workspace_cap = 0;
  int device = 0;
  auto operator<=>(const ConvPlanKey&) const = default;
};
// input [N, C, H, W], weight [K, C, k, k].
ConvPlanKey conv_plan_key(const Shape& input, const Shape& weight, std::int64_t stride, std::int64_t padding,
                          const CudaOptions& options);

// Linear's cuBLASLt plan: D[m, n] = op(W) X with k the inner dimension (m = out, n = rows,
// k = in).
struct LinearPlanKey {
  std::int64_t m = 0, n = 0, k = 0;
  bool bias = false, bf16 = false, tf32 = false;
  std::size_t workspace_cap = 0;
  int device = 0;
  auto operator<=>(const LinearPlanKey&) const = default;
};
LinearPlanKey linear_plan_key(std::int64_t rows, std::int64_t in, std::int64_t out, bool bias,
                              const CudaOptions& options);

// The shared workspace: kept when large enough, grown up to the cap, refused above it.
enum class WorkspaceAction { keep, grow, over_cap };
WorkspaceAction workspace_action(std::size_t requested, std::size_t current, std::size_t cap);

// One entry of cuDNN's ranked answer to cudnnGet*Algorithm_v7 (fastest first). cuDNN ranks
// (algorithm, math type) pairs, and the math type is part of the choice: the convolution
// descriptor must be set to the entry's math type before the workspace query and the call.
struct AlgorithmCandidate {
  int algorithm = 0;
  bool succeeded = false;           // perf.status == CUDNN_STATUS_SUCCESS
  std::size_t workspace_bytes = 0;  // perf.memory
  bool fma_math = false;            // perf.mathType == CUDNN_FMA_MATH (float32 products, no TF32)
};

// The first candidate, in cuDNN's order from index `first` on, that succeeded, fits under
// `workspace_cap` bytes and, when `float32_exact` (float32 data with TF32 off), computes with
// FMA math only (PyTorch asserts the same for allow_tf32 = False). nullopt when none qualifies.
// `first` past the one in use: the next choice when cuDNN refused to run it.
std::optional<std::size_t> choose_algorithm(const std::vector<AlgorithmCandidate>& ranked, std::size_t workspace_cap,
                                            bool float32_exact, std::size_t first = 0);

// Gradient buckets for the data-parallel all-reduce, in the order backward produces the
// gradients: parameters are taken from last to first (PyTorch DDP's order), and a bucket is
// closed when the next gradient would take it past `bucket_bytes` (a gradient larger than
// that gets a bucket of its own). Each bucket lists parameter indices. Every rank plans
// from the same model, so every rank issues the same collectives in the same order.
std::vector<std::vector<std::size_t>> plan_gradient_buckets(const std::vector<std::size_t>& gradient_bytes,
                                                            std::size_t bucket_bytes);

}  // namespace slurmlab::nn::cuda_planning
