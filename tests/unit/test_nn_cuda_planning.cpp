// The CUDA backend's host-side decisions, checked on the CPU (no GPU needed): launch geometry
// and the fused optimizer's tensor lookup (kernel_geometry.hpp, the same code the kernels
// run), the plan-cache keys, the workspace's growth, cuDNN algorithm choice under the
// workspace cap and the TF32 policy, the gradient buckets of the NCCL reducer
// (nn/cuda/planning.hpp), and the precision option.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/cuda/planning.hpp"
#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/cuda/kernel_geometry.hpp"

namespace slurmlab::nn {
namespace {

using cuda_planning::AlgorithmCandidate;
using cuda_planning::choose_algorithm;
using cuda_planning::ConvMath;
using cuda_planning::plan_gradient_buckets;
using cuda_planning::WorkspaceAction;
using kernel_geometry::blocks_for;
using kernel_geometry::kMaxBlocks;
using kernel_geometry::kThreads;
using kernel_geometry::tensor_of;

TEST(KernelGeometry, BlocksAreCeilOfTheElementsPerBlockBetweenOneAndTheCap) {
  // (The grid-stride loops over these blocks are the kernels' own; the gpu tests check that
  // every element is written, against the CPU backend.)
  EXPECT_EQ(blocks_for(0), 1u);  // a launch needs a block even when the wrappers skip n = 0
  EXPECT_EQ(blocks_for(1), 1u);
  EXPECT_EQ(blocks_for(kThreads), 1u);
  EXPECT_EQ(blocks_for(kThreads + 1), 2u);
  EXPECT_EQ(blocks_for(1000), 4u);
  EXPECT_EQ(blocks_for(kMaxBlocks * kThreads), static_cast<unsigned>(kMaxBlocks));
  EXPECT_EQ(blocks_for(kMaxBlocks * kThreads + 1), static_cast<unsigned>(kMaxBlocks));
  EXPECT_EQ(blocks_for(std::int64_t{1} << 40), static_cast<unsigned>(kMaxBlocks));
  EXPECT_EQ(blocks_for(1000, 128), 8u);
}

TEST(KernelGeometry, TensorOfFindsTheOwnerAndSkipsEmptyTensors) {
  // Sizes with empty tensors at the start, in the middle, twice in a row and at the end.
  const std::vector<std::int64_t> sizes{0, 3, 1, 0, 0, 5, 0, 2, 0};
  std::vector<std::int64_t> offsets(sizes.size() + 1, 0);
  std::partial_sum(sizes.begin(), sizes.end(), offsets.begin() + 1);
  const int count = static_cast<int>(sizes.size());
  for (std::int64_t k = 0; k < offsets.back(); ++k) {
    const int t = tensor_of(offsets.data(), count, k);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, count);
    EXPECT_LE(offsets[static_cast<std::size_t>(t)], k) << "k " << k;
    EXPECT_LT(k, offsets[static_cast<std::size_t>(t) + 1]) << "k " << k << " landed on tensor " << t;
  }
  const std::int64_t one[] = {0, 7};
  for (std::int64_t k = 0; k < 7; ++k) EXPECT_EQ(tensor_of(one, 1, k), 0);
}

TEST(CudnnAlgorithmChoice, FirstSuccessfulUnderTheCapInCudnnOrder) {
  const std::vector<AlgorithmCandidate> ranked{
      {.algorithm = 7, .succeeded = false, .workspace_bytes = 0, .fma_math = true},
      {.algorithm = 6, .succeeded = true, .workspace_bytes = 300, .fma_math = true},
      {.algorithm = 1, .succeeded = true, .workspace_bytes = 100, .fma_math = true},
      {.algorithm = 0, .succeeded = true, .workspace_bytes = 0, .fma_math = true},
  };
  EXPECT_EQ(choose_algorithm(ranked, 1000, false), 1u);
  EXPECT_EQ(choose_algorithm(ranked, 300, false), 1u) << "a workspace equal to the cap fits";
  EXPECT_EQ(choose_algorithm(ranked, 299, false), 2u);
  EXPECT_EQ(choose_algorithm(ranked, 0, false), 3u);
  EXPECT_FALSE(choose_algorithm({ranked[0]}, 1000, false).has_value());
  EXPECT_FALSE(choose_algorithm({}, 1000, false).has_value());
  // After cuDNN refused to run candidate 1: the next qualifying one, then none.
  EXPECT_EQ(choose_algorithm(ranked, 1000, false, 2), 2u);
  EXPECT_EQ(choose_algorithm(ranked, 99, false, 2), 3u) << "skipping one over the cap";
  EXPECT_FALSE(choose_algorithm(ranked, 1000, false, 4).has_value());
}

TEST(CudnnAlgorithmChoice, Tf32OffTakesOnlyFmaMath) {
  // cuDNN may rank a tensor-op (TF32) variant first even when asked for FMA math.
  const std::vector<AlgorithmCandidate> ranked{
      {.algorithm = 1, .succeeded = true, .workspace_bytes = 0, .fma_math = false},
      {.algorithm = 1, .succeeded = true, .workspace_bytes = 0, .fma_math = true},
  };
  EXPECT_EQ(choose_algorithm(ranked, 0, true), 1u);
  EXPECT_EQ(choose_algorithm(ranked, 0, false), 0u) << "TF32 or bf16: the fastest, whatever its math";
  EXPECT_FALSE(choose_algorithm({ranked[0]}, 0, true).has_value());
}

TEST(GradientBuckets, ReverseOrderUnderTheCapOversizedAlone) {
  // Parameters 0..4 of 16, 1024, 16, 288 and 16 bytes, buckets of 256 bytes.
  const auto buckets = plan_gradient_buckets({16, 1024, 16, 288, 16}, 256);
  const std::vector<std::vector<std::size_t>> expected{{4}, {3}, {2}, {1}, {0}};
  EXPECT_EQ(buckets, expected);
  const auto packed = plan_gradient_buckets({100, 100, 100, 100, 100}, 250);
  EXPECT_EQ(packed, (std::vector<std::vector<std::size_t>>{{4, 3}, {2, 1}, {0}}));
  const auto exact = plan_gradient_buckets({128, 128, 128}, 256);
  EXPECT_EQ(exact, (std::vector<std::vector<std::size_t>>{{2, 1}, {0}})) << "a bucket may be filled exactly";
  EXPECT_TRUE(plan_gradient_buckets({}, 256).empty());
}

TEST(GradientBuckets, EveryParameterExactlyOnce) {
  std::vector<std::size_t> bytes;
  for (std::size_t i = 0; i < 57; ++i) bytes.push_back((i * 7919) % 5000 + 4);
  for (std::size_t cap : {std::size_t{1}, std::size_t{4096}, std::size_t{25} << 20}) {
    std::vector<int> seen(bytes.size(), 0);
    std::size_t last = bytes.size();
    for (const auto& bucket : plan_gradient_buckets(bytes, cap)) {
      ASSERT_FALSE(bucket.empty());
      std::size_t total = 0;
      for (auto i : bucket) {
        ++seen[i];
        EXPECT_LT(i, last) << "buckets run from the last parameter to the first";
        last = i;
        total += bytes[i];
      }
      if (bucket.size() > 1) {
        EXPECT_LE(total, cap);
      }
    }
    for (int s : seen) EXPECT_EQ(s, 1);
  }
}

// A plan made under one set of options must not serve another: every option a plan depends
// on changes its key, and the shape fields land where the plan reads them.
TEST(PlanKeys, ConvolutionKeyHoldsShapeAndEveryOptionItDependsOn) {
  const CudaOptions base{
      .device = 0, .workspace_cap_bytes = 256u << 20, .tf32 = Tf32::off, .precision = Precision::float32};
  const auto key = cuda_planning::conv_plan_key({8, 3, 32, 30}, {16, 3, 5, 5}, 2, 1, base);
  EXPECT_EQ(key.batch, 8);
  EXPECT_EQ(key.channels, 3);
  EXPECT_EQ(key.height, 32);
  EXPECT_EQ(key.width, 30);
  EXPECT_EQ(key.filters, 16);
  EXPECT_EQ(key.kernel, 5);
  EXPECT_EQ(key.stride, 2);
  EXPECT_EQ(key.padding, 1);
  EXPECT_EQ(key.math, ConvMath::float32);
  auto with = [&](auto change) {
    CudaOptions options = base;
    change(options);
    return cuda_planning::conv_plan_key({8, 3, 32, 30}, {16, 3, 5, 5}, 2, 1, options);
  };
  EXPECT_EQ(with([](CudaOptions&) {}), key);
  EXPECT_EQ(with([](CudaOptions& o) { o.tf32 = Tf32::on; }).math, ConvMath::tf32);
  EXPECT_EQ(with([](CudaOptions& o) { o.precision = Precision::bf16; }).math, ConvMath::bf16);
  EXPECT_EQ(with([](CudaOptions& o) {
              o.precision = Precision::bf16;
              o.tf32 = Tf32::on;
            }).math,
            ConvMath::bf16);
  EXPECT_NE(with([](CudaOptions& o) { o.workspace_cap_bytes = 64u << 20; }), key);
  EXPECT_NE(with([](CudaOptions& o) { o.device = 1; }), key);
  EXPECT_NE(cuda_planning::conv_plan_key({8, 3, 32, 30}, {16, 3, 5, 5}, 1, 1, base), key);
  EXPECT_NE(cuda_planning::conv_plan_key({8, 3, 32, 30}, {16, 3, 5, 5}, 2, 0, base), key);
  EXPECT_NE(cuda_planning::conv_plan_key({9, 3, 32, 30}, {16, 3, 5, 5}, 2, 1, base), key);
}

TEST(PlanKeys, LinearKeyIsTheColumnMajorProductAndItsOptions) {
  const CudaOptions base{};
  const auto key = cuda_planning::linear_plan_key(32, 20, 64, true, base);  // rows 32, in 20, out 64
  EXPECT_EQ(key.m, 64) << "D has one row per output feature";
  EXPECT_EQ(key.n, 32) << "and one column per sample";
  EXPECT_EQ(key.k, 20);
  EXPECT_TRUE(key.bias);
  EXPECT_FALSE(key.bf16);
  EXPECT_FALSE(key.tf32);
  EXPECT_NE(cuda_planning::linear_plan_key(32, 20, 64, false, base), key);
  CudaOptions other = base;
  other.precision = Precision::bf16;
  EXPECT_TRUE(cuda_planning::linear_plan_key(32, 20, 64, true, other).bf16);
  other = base;
  other.tf32 = Tf32::on;
  EXPECT_TRUE(cuda_planning::linear_plan_key(32, 20, 64, true, other).tf32);
  other = base;
  other.workspace_cap_bytes = 1u << 20;
  EXPECT_NE(cuda_planning::linear_plan_key(32, 20, 64, true, other), key);
  other = base;
  other.device = 3;
  EXPECT_NE(cuda_planning::linear_plan_key(32, 20, 64, true, other), key);
}

TEST(Workspace, KeptWhenLargeEnoughGrownUpToTheCapRefusedAbove) {
  EXPECT_EQ(cuda_planning::workspace_action(0, 0, 100), WorkspaceAction::keep);
  EXPECT_EQ(cuda_planning::workspace_action(50, 64, 100), WorkspaceAction::keep);
  EXPECT_EQ(cuda_planning::workspace_action(64, 64, 100), WorkspaceAction::keep);
  EXPECT_EQ(cuda_planning::workspace_action(65, 64, 100), WorkspaceAction::grow);
  EXPECT_EQ(cuda_planning::workspace_action(100, 64, 100), WorkspaceAction::grow) << "the cap itself is allowed";
  EXPECT_EQ(cuda_planning::workspace_action(101, 64, 100), WorkspaceAction::over_cap);
}

TEST(CudaOptions, PrecisionParsesBothSpellingsAndNamesTheFix) {
  EXPECT_EQ(parse_precision("fp32"), Precision::float32);
  EXPECT_EQ(parse_precision("float32"), Precision::float32);
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(parse_precision("bfloat16"), Precision::bf16);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  EXPECT_EQ(parse_precision(to_string(Precision::float32)), Precision::float32) << "to_string reads back";
  try {
    parse_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("'fp16'"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("use fp32 or bf16"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace slurmlab::nn
