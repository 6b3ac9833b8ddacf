// Linear's large products on oneDNN's sgemm. Measured on AlexNet's Linear(9216, 4096) at batch
// 64 (docs/benchmarks.md): forward 79 -> 72 ms and input gradient 75 -> 59 ms on one thread
// against OpenBLAS 0.3.21 (Cooperlake kernels), 43 -> 37 and 38 -> 30 ms on two; the weight
// gradient (k = batch) was slower on oneDNN (58 vs 68 ms) and stays on OpenBLAS.
//
// Threads as for the convolutions (conv2d_onednn.cpp): the columns of C are split over the
// process's ComputePool and each part runs oneDNN on one thread (no spinning OpenMP team);
// oneDNN computes each element of C alike however the columns are split (tested).
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.h>
#include <stdexcept>
#include <string>

#include "slurmlab/core/compute_pool.hpp"
#include "slurmlab/nn/layers/linear_backend.hpp"

extern "C" int openblas_get_num_threads(void);  // the process's compute threads (one thread policy)

namespace slurmlab::nn::linear_backend {

bool onednn_available() {
  static const bool use = [] {
    const char* choice = std::getenv("SLURMLAB_LINEAR");
    return !(choice && std::string(choice) == "openblas");
  }();
  return use;
}

void gemm(bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
          const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  const int threads = std::max(1, openblas_get_num_threads());
  ComputePool::instance().run(
      threads, n,
      [&](std::int64_t first, std::int64_t last) {
        omp_set_num_threads(1);  // this thread's OpenMP regions (oneDNN's) stay on this thread
        // Columns [first, last) of C take rows [first, last) of B (B^T) or its columns (B).
        const float* b_part = trans_b ? b + first * ldb : b + first;
        const auto status = dnnl_sgemm('N', trans_b ? 'T' : 'N', m, last - first, k, 1.0f, a, lda, b_part, ldb, beta,
                                       c + first, ldc);
        if (status != dnnl_success) {
          throw std::runtime_error("Linear: oneDNN sgemm failed (status " + std::to_string(static_cast<int>(status)) +
                                   "); run with SLURMLAB_LINEAR=openblas to use OpenBLAS instead");
        }
      },
      16);
}

}  // namespace slurmlab::nn::linear_backend
