#include "slurmlab/nn/cuda/planning.hpp"

namespace slurmlab::nn::cuda_planning {

ConvMath convolution_math(const CudaOptions& options) {
  if (options.precision == Precision::bf16) return ConvMath::bf16;
  return options.tf32 == Tf32::on ? ConvMath::tf32 : ConvMath::float32;
}

ConvPlanKey conv_plan_key(const Shape& input, const Shape& weight, std::int64_t stride, std::int64_t padding,
                          const CudaOptions& options) {
  return {.batch = input.at(0),
          .channels = input.at(1),
          .height = input.at(2),
          .width = input.at(3),
          .filters = weight.at(0),
          .kernel = weight.at(2),
          .stride = stride,
          .padding = padding,
          .math = convolution_math(options),
          .workspace_cap = options.workspace_cap_bytes,
          .device = options.device};
}

LinearPlanKey linear_plan_key(std::int64_t rows, std::int64_t in, std::int64_t out, bool bias,
                              const CudaOptions& options) {
  return {.m = out,
          .n = rows,
          .k = in,
          .bias = bias,
          .bf16 = options.precision == Precision::bf16,
          .tf32 = options.tf32 == Tf32::on,
          .workspace_cap = options.workspace_cap_bytes,
          .device = options.device};
}

WorkspaceAction workspace_action(std::size_t requested, std::size_t current, std::size_t cap) {
  if (requested <= current) return WorkspaceAction::keep;
  return requested > cap ? WorkspaceAction::over_cap : WorkspaceAction::grow;
}

std::optional<std::size_t> choose_algorithm(const std::vector<AlgorithmCandidate>& ranked, std::size_t workspace_cap,
                                            bool float32_exact, std::size_t first) {
  for (std::size_t i = first; i < ranked.size(); ++i) {
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
