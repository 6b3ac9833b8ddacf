// data/gpu_batches: the plain-code decisions of the device-resident data set (every build).
#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "support/in_memory_images.hpp"

namespace slurmlab::data {
namespace {

TEST(DeviceImageSetPlanning, SizeAndFit) {
  testing::InMemoryImages cifar_like(100, {{3, 32, 32}});
  EXPECT_EQ(device_set_bytes(cifar_like), 100 * (3072 + 8));
  // CIFAR-10's 50000 training images (150 MiB + labels) on a 40 GB card, and not on a 256 MiB one.
  const std::int64_t cifar = 50000LL * (3072 + 8);
  EXPECT_TRUE(device_set_fits(cifar, 40LL << 30));
  EXPECT_FALSE(device_set_fits(cifar, 256LL << 20));
  EXPECT_TRUE(device_set_fits(cifar, 2 * cifar));
  EXPECT_FALSE(device_set_fits(cifar, 2 * cifar - 2));
}

TEST(DeviceImageSetPlanning, DifferingSizesAreRefused) {
  testing::InMemoryImages mixed(4, {{3, 20, 30}, {3, 40, 25}});
  try {
    device_set_bytes(mixed);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("differ in size"), std::string::npos) << e.what();
  }
  if (!cuda_device_image_set_built()) {
    testing::InMemoryImages one(4, {{3, 8, 8}});
    ImageTransform transform(TransformOptions{}, 3, one.fixed_shape());
    EXPECT_THROW(make_cuda_device_image_set(one, transform, 0), std::runtime_error);
  }
}

}  // namespace
}  // namespace slurmlab::data
