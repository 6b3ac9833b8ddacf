#pragma once
// Host-side decisions of the CUDA backend that need no GPU to be made or tested: which
// cuDNN convolution algorithm to run, and how gradients are grouped into all-reduce buckets.
// Compiled in every build (no CUDA header here); tests/unit/test_nn_cuda_planning.cpp checks
// them on the CPU, and layers_cuda.cpp / nccl_gradient_reducer.cpp use them on the GPU.
#include <cstddef>
#include <optional>
#include <vector>

namespace slurmlab::nn::cuda_planning {

// One entry of cuDNN's ranked answer to cudnnGet*Algorithm_v7 (fastest first). cuDNN ranks
// (algorithm, math type) pairs, and the math type is part of the choice: the convolution
// descriptor must be set to the entry's math type before the workspace query and the call.
struct AlgorithmCandidate {
  int algorithm = 0;
  bool succeeded = false;           // perf.status == CUDNN_STATUS_SUCCESS
  std::size_t workspace_bytes = 0;  // perf.memory
  bool fma_math = false;            // perf.mathType == CUDNN_FMA_MATH (float32 products, no TF32)
};

// The first candidate, in cuDNN's order, that succeeded, fits under `workspace_cap` bytes and,
// when `float32_exact` (float32 data with TF32 off), computes with FMA math only (PyTorch
// asserts the same for allow_tf32 = False). nullopt when none qualifies.
std::optional<std::size_t> choose_algorithm(const std::vector<AlgorithmCandidate>& ranked, std::size_t workspace_cap,
                                            bool float32_exact);

// Gradient buckets for the data-parallel all-reduce, in the order backward produces the
// gradients: parameters are taken from last to first (PyTorch DDP's order), and a bucket is
// closed when the next gradient would take it past `bucket_bytes` (a gradient larger than
// that gets a bucket of its own). Each bucket lists parameter indices. Every rank plans
// from the same model, so every rank issues the same collectives in the same order.
std::vector<std::vector<std::size_t>> plan_gradient_buckets(const std::vector<std::size_t>& gradient_bytes,
                                                            std::size_t bucket_bytes);

}  // namespace slurmlab::nn::cuda_planning
