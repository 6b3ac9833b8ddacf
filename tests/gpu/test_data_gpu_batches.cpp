// Label gpu: the device-resident data set's CUDA transform against the CPU pipeline (its
// reference), batch by batch, for the AlexNet practical's transforms and the other shapes of
// the options. Skipped, with the runtime's reason, when no GPU answers.
#include <gtest/gtest.h>

#include <cmath>

#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "slurmlab/data/sampler.hpp"
#include "support/in_memory_images.hpp"

using namespace slurmlab;
using namespace slurmlab::data;

namespace {
#define SKIP_WITHOUT_GPU()                                                                 \
  do {                                                                                     \
    if (!cuda_device_image_set_built()) GTEST_SKIP() << "slurmlab was built without CUDA"; \
    const auto status = cluster::probe_gpu_runtime();                                      \
    if (status.device_count == 0) GTEST_SKIP() << "no GPU answers: " << status.note;       \
  } while (0)

void expect_gpu_equals_cpu(const TransformOptions& options, ImageShape shape) {
  slurmlab::testing::InMemoryImages data(300, {shape}, 10, 5);
  ImageTransform transform(options, shape.channels, shape);
  auto gpu = make_cuda_device_image_set(data, transform, 0);
  EXPECT_EQ(gpu->device_bytes(), device_set_bytes(data));
  ShardedSampler sampler(data.size(), 64, 2, 1, 3, LastBatch::pad);
  TransformWorkspace workspace;
  std::vector<std::uint8_t> scratch;
  const auto floats = static_cast<std::size_t>(transform.output_floats());
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    for (std::int64_t b = 0; b < sampler.batches_per_epoch(); ++b) {
      const auto indices = sampler.local_indices(epoch, b);
      std::vector<float> images(indices.size() * floats);
      std::vector<std::int64_t> labels(indices.size());
      gpu->transform_batch_to_host(indices, epoch, 11, images, labels);
      std::vector<float> expected(floats);
      for (std::size_t i = 0; i < indices.size(); ++i) {
        EXPECT_EQ(labels[i], data.label(indices[i]));
        transform.apply(data.image(indices[i], scratch), 11, epoch, indices[i], expected.data(), workspace);
        for (std::size_t k = 0; k < floats; ++k) {
          ASSERT_NEAR(images[i * floats + k], expected[k], 1e-6)
              << "epoch " << epoch << " batch " << b << " sample " << indices[i] << " float " << k;
        }
      }
    }
  }
}
}  // namespace

TEST(DeviceImageSet, AlexNetPracticalEqualsTheCpuPipeline) {
  SKIP_WITHOUT_GPU();
  expect_gpu_equals_cpu(alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}, true),
                        {3, 32, 32});
  expect_gpu_equals_cpu(alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}, false),
                        {3, 32, 32});
}

TEST(DeviceImageSet, PaddedCropDownscaleAndPlain) {
  SKIP_WITHOUT_GPU();
  TransformOptions padded;
  padded.crop = ImageSize{32, 32};
  padded.crop_padding = 4;
  padded.horizontal_flip = true;
  padded.mean = {0.5f, 0.5f, 0.5f};
  padded.std = {0.25f, 0.25f, 0.25f};
  expect_gpu_equals_cpu(padded, {3, 32, 32});
  TransformOptions down;
  down.resize = ImageSize{17, 23};
  expect_gpu_equals_cpu(down, {1, 40, 30});
  expect_gpu_equals_cpu(TransformOptions{}, {1, 28, 28});
}
