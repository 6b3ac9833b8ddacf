// data/batch_loader: in-order prefetch by worker threads, bit-identical for any worker count,
// resumable, worker errors surfacing on next(), prompt shutdown mid-epoch.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/data/batch_loader.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "support/in_memory_images.hpp"

namespace slurmlab::data {
namespace {

using testing::InMemoryImages;

struct Copy {
  std::int64_t epoch, batch;
  std::vector<float> images;
  std::vector<std::int64_t> labels, indices;
  friend bool operator==(const Copy&, const Copy&) = default;
};

Copy copy(const Batch& b) {
  return {b.epoch,
          b.batch,
          {b.images.begin(), b.images.end()},
          {b.labels.begin(), b.labels.end()},
          {b.indices.begin(), b.indices.end()}};
}

ShardedSampler sampler_for(const ImageDataset& data, int world = 2, int rank = 1) {
  return ShardedSampler(data.size(), 12, world, rank, 4, LastBatch::pad);
}

ImageTransform practical(const ImageDataset& data) {
  return ImageTransform(alexnet_practical_transforms({0.5f, 0.4f, 0.3f}, {0.2f, 0.2f, 0.2f}, true), data.channels(),
                        data.fixed_shape());
}

std::vector<Copy> run(const ImageDataset& data, int workers, int batches, BatchPosition start = {}, int prefetch = 0) {
  BatchLoader loader(data, sampler_for(data), practical(data),
                     {.workers = workers, .prefetch_batches = prefetch, .seed = 3}, start);
  std::vector<Copy> out;
  for (int i = 0; i < batches; ++i) out.push_back(copy(loader.next()));
  return out;
}

// pinned_memory (for batches copied to a GPU): the same batches in page-locked memory where a
// GPU answers; elsewhere the constructor says in one sentence why it cannot.
TEST(BatchLoader, PinnedMemoryGivesTheSameBatchesOrSaysWhy) {
  InMemoryImages data(30, {{3, 32, 32}});
  const auto reference = run(data, 2, 4);
  const auto pinned = [&] {
    BatchLoader loader(data, sampler_for(data), practical(data), {.workers = 2, .seed = 3, .pinned_memory = true});
    EXPECT_TRUE(loader.pinned_memory());
    std::vector<Copy> out;
    for (int i = 0; i < 4; ++i) out.push_back(copy(loader.next()));
    return out;
  };
  if (!cuda_device_image_set_built()) {
    try {
      pinned();
      FAIL() << "a build without CUDA made pinned memory";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("needs CUDA, and this slurmlab was built without it"), std::string::npos)
          << e.what();
    }
  } else if (cluster::probe_gpu_runtime().device_count == 0) {
    try {
      pinned();
      FAIL() << "pinned memory without a GPU or driver";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("cudaHostAlloc (pinned batch buffers)"), std::string::npos) << e.what();
    }
  } else {
    EXPECT_TRUE(pinned() == reference);
  }
}

TEST(BatchLoader, SameBatchesForAnyWorkerCount) {
  InMemoryImages data(50, {{3, 32, 32}});
  const auto reference = run(data, 0, 11);  // 5 batches per epoch: crosses two epoch ends
  ASSERT_EQ(reference.size(), 11u);
  EXPECT_EQ(reference[4].epoch, 0);
  EXPECT_EQ(reference[5].epoch, 1);
  EXPECT_EQ(reference[5].batch, 0);
  for (int workers : {1, 2, 4}) EXPECT_TRUE(run(data, workers, 11) == reference) << workers << " workers";
  EXPECT_TRUE(run(data, 3, 11, {}, 1) == reference) << "a ring of one slot";
  // Images are the transform of the sampled images with their labels.
  const auto sampler = sampler_for(data);
  EXPECT_EQ(reference[7].indices, sampler.local_indices(1, 2));
  ImageTransform transform = practical(data);
  TransformWorkspace workspace;
  std::vector<float> one(static_cast<std::size_t>(transform.output_floats()));
  std::vector<std::uint8_t> scratch;
  for (std::size_t k = 0; k < reference[7].indices.size(); ++k) {
    const auto index = reference[7].indices[k];
    EXPECT_EQ(reference[7].labels[k], data.label(index));
    transform.apply(data.image(index, scratch), 3, 1, index, one.data(), workspace);
    EXPECT_EQ(0, std::memcmp(one.data(), reference[7].images.data() + k * one.size(), one.size() * sizeof(float)));
  }
}

TEST(BatchLoader, ResumeSeesTheUninterruptedBatches) {
  InMemoryImages data(50, {{3, 32, 32}});
  const auto uninterrupted = run(data, 2, 12);
  // A new loader started at (1, 3) = step 8, as a restarted job would.
  const auto resumed = run(data, 2, 4, {1, 3});
  for (std::size_t i = 0; i < resumed.size(); ++i) EXPECT_TRUE(resumed[i] == uninterrupted[8 + i]) << i;
  // set_position mid-stream, with batches prefetched for the old position in flight.
  BatchLoader loader(data, sampler_for(data), practical(data), {.workers = 2, .seed = 3});
  loader.next();
  loader.next();
  loader.set_position({1, 3});
  EXPECT_EQ(loader.position(), (BatchPosition{1, 3}));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(copy(loader.next()) == uninterrupted[static_cast<std::size_t>(8 + i)]) << i;
  EXPECT_EQ(loader.position(), (BatchPosition{2, 2}));
  loader.set_position({0, 0});
  EXPECT_TRUE(copy(loader.next()) == uninterrupted[0]);
}

TEST(BatchLoader, DifferingImageSizesWithAResize) {
  InMemoryImages data(24, {{3, 20, 31}, {3, 40, 25}, {3, 17, 17}});
  data.set_copy_to_scratch(true);
  TransformOptions options;
  options.resize = ImageSize{24, 24};
  options.crop = ImageSize{20, 20};
  options.horizontal_flip = true;
  auto load = [&](int workers) {
    BatchLoader loader(data, ShardedSampler(24, 8, 1, 0, 2, LastBatch::drop), ImageTransform(options, 3, std::nullopt),
                       {.workers = workers, .seed = 1});
    std::vector<Copy> out;
    for (int i = 0; i < 6; ++i) out.push_back(copy(loader.next()));
    return out;
  };
  const auto a = load(0);
  EXPECT_EQ(a[0].images.size(), 8u * 3 * 20 * 20);
  EXPECT_TRUE(load(3) == a);
}

TEST(BatchLoader, WorkerErrorSurfacesOnNextWithItsMessage) {
  InMemoryImages data(50, {{3, 32, 32}});
  const auto sampler = sampler_for(data);
  // The data set index that batch 2 of epoch 0 loads first on this rank.
  const auto bad = sampler.local_indices(0, 2).front();
  data.make_corrupt(bad, "cifar/data_batch_1.bin: record " + std::to_string(bad) + " is corrupt; re-download it.");
  for (int workers : {0, 1, 3}) {
    BatchLoader loader(data, sampler_for(data), practical(data), {.workers = workers, .seed = 3});
    EXPECT_EQ(loader.next().batch, 0);
    EXPECT_EQ(loader.next().batch, 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        loader.next();
        FAIL() << workers;
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("record " + std::to_string(bad) + " is corrupt"), std::string::npos)
            << e.what();
      }
    }
    loader.set_position({0, 3});  // skips the bad batch
    EXPECT_EQ(loader.next().batch, 3);
  }
}

TEST(BatchLoader, DestructionMidEpochDoesNotHang) {
  InMemoryImages data(400, {{3, 32, 32}});
  auto finished = std::async(std::launch::async, [&] {
    for (int workers : {1, 2, 4}) {
      for (int consumed : {0, 1, 3}) {
        BatchLoader loader(data, ShardedSampler(400, 32, 1, 0, 1, LastBatch::drop), practical(data),
                           {.workers = workers, .prefetch_batches = 3, .seed = 0});
        for (int i = 0; i < consumed; ++i) loader.next();
        if (consumed == 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ring full, workers waiting
      }
    }
  });
  ASSERT_EQ(finished.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "a loader's destructor hung";
}

TEST(BatchLoader, BadOptionsAreUsageErrors) {
  InMemoryImages data(20, {{3, 32, 32}});
  EXPECT_THROW(BatchLoader(data, sampler_for(data), practical(data), {.workers = -1}), UsageError);
  EXPECT_THROW(BatchLoader(data, sampler_for(data), practical(data), {.workers = 1, .prefetch_batches = -2}),
               UsageError);
}

}  // namespace
}  // namespace slurmlab::data
