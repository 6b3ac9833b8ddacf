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
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <tuple>

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

namespace {

// The one CPU engine of the bf16 products: primitives, streams and memory objects all on it.
dnnl::engine& bf16_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One block's bf16 matmul: a primitive and a stream of its own (blocks run at the same time on
// different threads), built once per shape and block and kept for the process.
struct Bf16Plan {
  dnnl::matmul product;
  dnnl::memory::desc a, b, c;
  dnnl::stream stream;
};

using Bf16Key = std::tuple<bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t, bool, std::int64_t>;

Bf16Plan& bf16_plan(const Bf16Key& key) {
  static std::mutex mutex;
  static std::map<Bf16Key, Bf16Plan> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const auto [trans_a, trans_b, m, cols, k, lda, ldb, ldc, accumulate, block] = key;
  auto& engine = bf16_engine();
  using dt = dnnl::memory::data_type;
  Bf16Plan p;
  // Plain strided layouts: oneDNN's brgemm matmul reads them directly (a blocked weight layout
  // would need a reorder per call that cost twice the product for AlexNet's 9216 x 4096).
  p.a = dnnl::memory::desc({m, k}, dt::bf16, trans_a ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
  p.b = dnnl::memory::desc({k, cols}, dt::bf16, trans_b ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  p.c = dnnl::memory::desc({m, cols}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  p.product = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.a, p.b, p.c), attr, engine));
  p.stream = dnnl::stream(engine);
  return cache.emplace(key, std::move(p)).first->second;
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const std::uint16_t* a,
               std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (beta != 0.0f && beta != 1.0f) throw std::invalid_argument("Linear: gemm_bf16 takes beta 0 or 1");
  const std::int64_t blocks = (n + kBf16Columns - 1) / kBf16Columns;
  const int threads = static_cast<int>(std::min<std::int64_t>(std::max(1, openblas_get_num_threads()), blocks));
  auto& engine = bf16_engine();
  ComputePool::instance().run(
      threads, blocks,
      [&](std::int64_t first_block, std::int64_t last_block) {
        omp_set_num_threads(1);  // this thread's OpenMP regions (oneDNN's) stay on this thread
        for (std::int64_t block = first_block; block < last_block; ++block) {
          const std::int64_t first = block * kBf16Columns, cols = std::min(kBf16Columns, n - first);
          auto& p = bf16_plan({trans_a, trans_b, m, cols, k, lda, ldb, ldc, beta != 0.0f, block});
          // Columns [first, first + cols) of C take rows of B (B^T) or its columns (B).
          const std::uint16_t* b_part = trans_b ? b + first * ldb : b + first;
          p.product.execute(p.stream, {{DNNL_ARG_SRC, dnnl::memory(p.a, engine, const_cast<std::uint16_t*>(a))},
                                       {DNNL_ARG_WEIGHTS, dnnl::memory(p.b, engine, const_cast<std::uint16_t*>(b_part))},
                                       {DNNL_ARG_DST, dnnl::memory(p.c, engine, c + first)}});
          p.stream.wait();
        }
      },
      1);
}

}  // namespace slurmlab::nn::linear_backend
