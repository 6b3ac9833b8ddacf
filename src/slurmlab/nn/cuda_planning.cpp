#include "slurmlab/nn/cuda_planning.hpp"

namespace slurmlab::nn::cuda_planning {

std::optional<std::size_t> choose_algorithm(const std::vector<AlgorithmCandidate>& ranked, std::size_t workspace_cap,
                                            bool float32_exact) {
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    const auto& candidate = ranked[i];
    if (!candidate.succeeded || candidate.workspace_bytes > workspace_cap) continue;
    if (float32_exact && !candidate.fma_math) continue;  // would let TF32 tensor cores round the operands
    return i;
  }
  return std::nullopt;
}

std::vector<std::vector<std::size_t>> plan_gradient_buckets(const std::vector<std::size_t>& gradient_bytes,
                                                            std::size_t bucket_bytes) {
  std::vector<std::vector<std::size_t>> buckets;
  std::size_t filled = 0;
  for (std::size_t i = gradient_bytes.size(); i-- > 0;) {
    const std::size_t bytes = gradient_bytes[i];
    if (buckets.empty() || (!buckets.back().empty() && filled + bytes > bucket_bytes)) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += bytes;
  }
  return buckets;
}

}  // namespace slurmlab::nn::cuda_planning
