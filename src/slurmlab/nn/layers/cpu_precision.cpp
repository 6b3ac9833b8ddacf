// The CPU's compute precision (cpu_precision.hpp) and the float -> bfloat16 conversion that
// Linear's bf16 products use (bfloat16.hpp).
#include "slurmlab/nn/layers/cpu_precision.hpp"

#include <algorithm>
#include <atomic>

#include "slurmlab/core/compute_pool.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/layers/bfloat16.hpp"
#include "slurmlab/nn/layers/conv2d_backend.hpp"
#include "slurmlab/nn/layers/linear_backend.hpp"
#include "slurmlab/nn/layers/vector_clones.hpp"

extern "C" int openblas_get_num_threads(void);  // the process's compute threads (one thread policy)

namespace slurmlab::nn {
namespace {

std::atomic<Precision> precision{Precision::float32};


SLURMLAB_VECTOR_CLONES_AVX512 void convert(const float* __restrict x, std::uint16_t* __restrict y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = detail::float_to_bf16(x[i]);
}

}  // namespace

void detail::floats_to_bf16(const float* x, std::uint16_t* y, std::size_t n) {
  // Memory-bound: a second thread helps only for large arrays (a weight matrix, not a batch).
  const int parts = n >= (std::size_t{1} << 20) ? std::max(1, openblas_get_num_threads()) : 1;
  ComputePool::instance().run(parts, static_cast<std::int64_t>(n), [&](std::int64_t begin, std::int64_t end) {
    convert(x + begin, y + begin, static_cast<std::size_t>(end - begin));
  });
}

bool cpu_bf16_available(std::string* reason) {
  const auto say = [&](const char* text) {
    if (reason) *reason = text;
    return false;
  };
  if (!conv_backend::onednn_available() || !linear_backend::onednn_available()) {
    return say("bf16 on the CPU runs on oneDNN, and this build has none or SLURMLAB_CONV=im2col / "
               "SLURMLAB_LINEAR=openblas turned it off; build with oneDNN (libdnnl-dev) and unset those, or use fp32");
  }
  if (!conv_backend::onednn_bf16_native()) {
    return say("this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX, as on AMD Zen 4 or Intel Cooper Lake "
               "and later; or DNNL_MAX_CPU_ISA limits oneDNN below them), so bf16 would be slower than fp32 here; "
               "use --precision fp32, or a GPU");
  }
  if (reason) reason->clear();
  return true;
}

void set_cpu_precision(Precision wanted) {
  if (wanted == Precision::float64) throw UsageError("nn computes in fp32 or bf16, not fp64");
  std::string reason;
  if (wanted == Precision::bf16 && !cpu_bf16_available(&reason)) throw UsageError("--precision bf16 on the CPU: " + reason);
  precision.store(wanted);
}

Precision cpu_precision() { return precision.load(); }

}  // namespace slurmlab::nn
