// Linear's optional CPU GEMM (oneDNN's sgemm), beside OpenBLAS in linear.cpp. CMake links
// linear_onednn.cpp when oneDNN is found (SLURMLAB_WITH_ONEDNN), else linear_noonednn.cpp, whose
// available() is false so linear.cpp never calls gemm().
#pragma once

#include <cstdint>

namespace slurmlab::nn::linear_backend {

// True when oneDNN is compiled in and SLURMLAB_LINEAR is not "openblas" (read once per process).
bool onednn_available();
// Row-major C[m, n] = A[m, k] op(B) + beta C, op(B) = B^T with B [n, k] when trans_b, else B
// [k, n]; leading dimensions as in BLAS. Split over the compute threads by columns of C, each
// part on one thread: every element is computed alike on any thread count.
void gemm(bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
          const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
// The same product of bfloat16 operands (bfloat16.hpp) into fp32 C, accumulated in fp32 (oneDNN's
// bf16 matmul): op(A) = A^T with A stored [k, m] when trans_a, else A [m, k]; beta 0 or 1. Split
// over the compute threads in fixed blocks of kBf16Columns columns of C, each on one thread, so
// every element is computed alike on any thread count.
constexpr std::int64_t kBf16Columns = 512;
void gemm_bf16(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const std::uint16_t* a,
               std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace slurmlab::nn::linear_backend
