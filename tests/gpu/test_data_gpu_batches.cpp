// Label gpu: the device-resident data set's CUDA transform against the CPU pipeline (its
// reference), batch by batch, for the AlexNet practical's transforms and the other shapes of
// the options. Skipped, with the runtime's reason, when no GPU answers.
#include <gtest/gtest.h>

#include <cmath>

#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "slurmlab/data/sampler.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"
#include "slurmlab/nn/tensor/tensor.hpp"
#include "slurmlab/train/module.hpp"
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

// What train-classifier trains from with --device cuda: DeviceBatchSource over the resident set
// gives the trainer the batches the CPU loader gives (labels, padding counts, images to 1e-6),
// as tensors on the GPU with the labels beside them, across an epoch boundary, after a resume,
// and with more batches queued on nn's stream than the set's ring of job buffers holds.
TEST(DeviceBatchSource, EqualsTheLoaderBatchSourceOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const ImageShape shape{3, 32, 32};
  slurmlab::testing::InMemoryImages data(200, {shape}, 10, 7);
  const auto options = alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}, true);
  const ImageTransform transform(options, shape.channels, shape);
  const ShardedSampler sampler(data.size(), 48, 1, 0, 21, LastBatch::pad);
  BatchLoader loader(data, sampler, transform, {.workers = 2, .seed = 5});
  train::LoaderBatchSource reference(loader);
  auto set = make_cuda_device_image_set(data, transform, 0);
  train::DeviceBatchSource source(*set, data, sampler, 5, nn::Device::cuda);
  const auto compare = [](const train::TrainBatch& batch, const train::TrainBatch& expected, const std::string& where) {
    ASSERT_EQ(batch.inputs.device(), nn::Device::cuda) << where;
    EXPECT_EQ(batch.labels, expected.labels) << where;
    ASSERT_EQ(batch.device_labels.size(), std::ssize(expected.labels)) << where;
    std::vector<std::int64_t> device_labels(expected.labels.size());
    nn::cuda::copy(device_labels.data(), nn::Device::cpu, batch.device_labels.data(), nn::Device::cuda,
                   device_labels.size() * sizeof(std::int64_t));
    EXPECT_EQ(device_labels, expected.labels) << where;
    EXPECT_EQ(batch.counted, expected.counted) << where;
    const auto got = batch.inputs.to(nn::Device::cpu).to_vector(), want = expected.inputs.to_vector();
    ASSERT_EQ(got.size(), want.size()) << where;
    for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], 1e-6) << where << " float " << k;
  };
  const auto expect_same = [&](const std::string& where) { compare(source.next(), reference.next(), where); };
  for (std::int64_t b = 0; b < source.batches_per_epoch() + 2; ++b) expect_same("batch " + std::to_string(b));
  source.set_position({2, 1});
  reference.set_position({2, 1});
  expect_same("resumed at epoch 2 batch 1");
  // Queued without reading: twice the ring's slots and one more, then compared.
  std::vector<train::TrainBatch> queued, expected;
  for (int b = 0; b < 2 * DeviceImageSet::kRingSlots + 1; ++b) {
    queued.push_back(source.next());
    expected.push_back(reference.next());
  }
  for (std::size_t b = 0; b < queued.size(); ++b) compare(queued[b], expected[b], "queued batch " + std::to_string(b));
}

// A set on another GPU than nn's is refused before any batch (its kernels could not run on
// nn's stream, and switching devices would send nn's allocations to the wrong GPU).
TEST(DeviceBatchSource, RefusesASetOnAnotherGpuThanNns) {
  SKIP_WITHOUT_GPU();
  const ImageShape shape{1, 8, 8};
  slurmlab::testing::InMemoryImages data(16, {shape}, 2, 3);
  const ImageTransform transform(TransformOptions{}, shape.channels, shape);
  auto set = make_cuda_device_image_set(data, transform, 0);
  class Elsewhere final : public DeviceImageSet {
   public:
    explicit Elsewhere(DeviceImageSet& inner) : inner_(inner) {}
    std::int64_t device_bytes() const override { return inner_.device_bytes(); }
    int device() const override { return 7; }
    std::string describe() const override { return "on GPU 7"; }
    const ImageTransform& transform() const override { return inner_.transform(); }
    void transform_batch(std::span<const std::int64_t>, std::int64_t, std::uint64_t, float*, std::int64_t*) override {}
    void enqueue_batch(std::span<const std::int64_t>, std::int64_t, std::uint64_t, float*, std::int64_t*,
                       void*) override {}
    void transform_batch_to_host(std::span<const std::int64_t>, std::int64_t, std::uint64_t, std::span<float>,
                                 std::span<std::int64_t>) override {}

   private:
    DeviceImageSet& inner_;
  } elsewhere(*set);
  const ShardedSampler sampler(data.size(), 8, 1, 0, 1, LastBatch::pad);
  try {
    train::DeviceBatchSource source(elsewhere, data, sampler, 5, nn::Device::cuda);
    FAIL() << "a set on GPU 7 was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("is on GPU 7 but nn computes on GPU 0"), std::string::npos) << e.what();
  }
}

// The loader's path to the GPU (sets that are not resident): LoaderBatchSource copies each
// batch to the device, queued without waiting from a pinned loader, synchronously from an
// ordinary one; both give the CPU source's batches, bit for bit, also after a resume.
TEST(LoaderBatchSource, CopiesToTheGpuFromPinnedAndOrdinaryMemory) {
  SKIP_WITHOUT_GPU();
  const ImageShape shape{3, 32, 32};
  slurmlab::testing::InMemoryImages data(150, {shape}, 10, 9);
  const ImageTransform transform(alexnet_practical_transforms({0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}, true),
                                 shape.channels, shape);
  const ShardedSampler sampler(data.size(), 32, 1, 0, 4, LastBatch::pad);
  BatchLoader cpu_loader(data, sampler, transform, {.workers = 2, .seed = 8});
  train::LoaderBatchSource reference(cpu_loader);
  for (const bool pinned : {true, false}) {
    BatchLoader loader(data, sampler, transform, {.workers = 2, .seed = 8, .pinned_memory = pinned});
    train::LoaderBatchSource source(loader, nn::Device::cuda);
    reference.set_position({0, 0});
    for (std::int64_t b = 0; b < source.batches_per_epoch() + 2; ++b) {
      const auto expected = reference.next();
      const auto batch = source.next();
      ASSERT_EQ(batch.inputs.device(), nn::Device::cuda);
      EXPECT_EQ(batch.labels, expected.labels) << "pinned " << pinned << " batch " << b;
      EXPECT_EQ(batch.inputs.to(nn::Device::cpu).to_vector(), expected.inputs.to_vector()) << "pinned " << pinned << " batch " << b;
    }
    source.set_position({1, 1});
    reference.set_position({1, 1});
    EXPECT_EQ(source.next().inputs.to(nn::Device::cpu).to_vector(), reference.next().inputs.to_vector()) << "pinned " << pinned;
  }
}
