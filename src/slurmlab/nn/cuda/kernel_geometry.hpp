#pragma once
// Launch geometry and index helpers of slurmlab::nn's own CUDA kernels (kernels.cu).
// Host-device and free of CUDA headers (C++17, as the .cu files), so that the unit tests
// check them on the CPU of a build without a GPU (tests/unit/test_nn_cuda_planning.cpp).
#include <cstdint>

#if !defined(SLURMLAB_HOST_DEVICE)
#if defined(__CUDACC__)
#define SLURMLAB_HOST_DEVICE __host__ __device__
#else
#define SLURMLAB_HOST_DEVICE
#endif
#endif

namespace slurmlab::nn::kernel_geometry {

// Threads per block of every kernel. The block reductions halve a shared array, so this must
// be a power of two.
constexpr int kThreads = 256;
static_assert((kThreads & (kThreads - 1)) == 0, "block reductions need a power-of-two block");

// Enough blocks to fill an H200 (132 SMs) several times over; grid-stride loops cover the rest.
constexpr std::int64_t kMaxBlocks = 132 * 32;

// Blocks for a grid-stride loop over n elements: ceil(n / threads), at least 1 (a launch
// needs one), at most kMaxBlocks.
SLURMLAB_HOST_DEVICE constexpr unsigned blocks_for(std::int64_t n, int threads = kThreads) {
  const std::int64_t wanted = (n + threads - 1) / threads;
  return static_cast<unsigned>(wanted < 1 ? 1 : (wanted > kMaxBlocks ? kMaxBlocks : wanted));
}

// Which tensor of a concatenation holds flat index k, for the fused optimizer kernels that
// walk all parameters as one range. offsets holds count + 1 prefix sums (offsets[0] = 0,
// offsets[count] = total) and 0 <= k < total. Answers the largest t with offsets[t] <= k, so
// an empty tensor (offsets[t] == offsets[t + 1]) is never answered: its successor is larger.
SLURMLAB_HOST_DEVICE inline int tensor_of(const std::int64_t* offsets, int count, std::int64_t k) {
  int low = 0, high = count - 1;
  while (low < high) {
    const int mid = (low + high + 1) / 2;
    if (offsets[mid] <= k) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

}  // namespace slurmlab::nn::kernel_geometry
