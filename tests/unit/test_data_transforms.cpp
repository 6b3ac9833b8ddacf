// data/transforms: resize (bilinear, half-pixel centres), crop (random/centre, zero padding),
// flip and normalize against a naive per-pixel reference written from the definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/transforms.hpp"
#include "support/in_memory_images.hpp"

namespace slurmlab::data {
namespace {

using testing::InMemoryImages;

// Bilinear sample of the image resized to (rh, rw) at (ry, rx), straight from the definition
// (align_corners=False), in double.
double resized_pixel(const ImageView& image, int c, int rh, int rw, int ry, int rx) {
  auto source = [](int in, int out, int r, int& i0, int& i1, double& l) {
    double s = (r + 0.5) * in / out - 0.5;
    if (s < 0) s = 0;
    i0 = static_cast<int>(std::floor(s));
    i1 = std::min(i0 + 1, in - 1);
    l = s - i0;
  };
  int y0, y1, x0, x1;
  double ly, lx;
  source(image.shape.height, rh, ry, y0, y1, ly);
  source(image.shape.width, rw, rx, x0, x1, lx);
  const double top = (1 - lx) * image.at(c, y0, x0) + lx * image.at(c, y0, x1);
  const double bottom = (1 - lx) * image.at(c, y1, x0) + lx * image.at(c, y1, x1);
  return (1 - ly) * top + ly * bottom;
}

std::vector<double> naive(const ImageView& image, const TransformOptions& o, const ImageTransform::Choices& ch) {
  const int rh = o.resize ? o.resize->height : image.shape.height, rw = o.resize ? o.resize->width : image.shape.width;
  const int oh = o.crop ? o.crop->height : rh, ow = o.crop ? o.crop->width : rw;
  const int pad = o.crop ? o.crop_padding : 0;
  std::vector<double> out;
  for (int c = 0; c < image.shape.channels; ++c)
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x) {
        const int ry = y + ch.top - pad, rx = (ch.flip ? ow - 1 - x : x) + ch.left - pad;
        double v = (ry < 0 || ry >= rh || rx < 0 || rx >= rw) ? 0.0 : resized_pixel(image, c, rh, rw, ry, rx) / 255.0;
        if (!o.mean.empty()) v = (v - o.mean[static_cast<std::size_t>(c)]) / o.std[static_cast<std::size_t>(c)];
        out.push_back(v);
      }
  return out;
}

void expect_matches_naive(const TransformOptions& options, ImageShape shape, int samples = 12) {
  InMemoryImages images(samples, {shape}, 10, 7);
  ImageTransform transform(options, shape.channels, shape);
  TransformWorkspace workspace;
  std::vector<float> out(static_cast<std::size_t>(transform.output_floats()));
  std::set<std::pair<int, int>> corners;
  std::set<bool> flips;
  for (std::int64_t i = 0; i < samples; ++i) {
    std::vector<std::uint8_t> scratch;
    const auto image = images.image(i, scratch);
    const auto choices = transform.choices(shape, 5, 2, i);
    corners.insert({choices.top, choices.left});
    flips.insert(choices.flip);
    transform.apply(image, 5, 2, i, out.data(), workspace);
    const auto expected = naive(image, options, choices);
    ASSERT_EQ(expected.size(), out.size());
    for (std::size_t k = 0; k < out.size(); ++k) {
      ASSERT_NEAR(out[k], expected[k], 2e-5) << "sample " << i << " at " << k;
    }
  }
  if (options.crop && options.crop_placement == CropPlacement::random) {
    EXPECT_GT(corners.size(), 3u);
  }
  if (options.horizontal_flip) {
    EXPECT_EQ(flips.size(), 2u);
  }
}

TEST(ImageTransform, AlexNetPracticalMatchesTheDefinition) {
  expect_matches_naive(alexnet_practical_transforms({0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}, true), {3, 32, 32});
  expect_matches_naive(alexnet_practical_transforms({0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}, false), {3, 32, 32});
}

TEST(ImageTransform, DownscaleNonSquareAndPlainToFloat) {
  TransformOptions down;
  down.resize = ImageSize{17, 23};
  expect_matches_naive(down, {1, 40, 30});
  expect_matches_naive(TransformOptions{}, {3, 9, 11});  // ToTensor alone: ÷255
}

TEST(ImageTransform, PaddedRandomCropWithFlip) {
  TransformOptions o;
  o.crop = ImageSize{32, 32};
  o.crop_padding = 4;  // the classic CIFAR augmentation
  o.horizontal_flip = true;
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {0.2f, 0.3f, 0.4f};
  expect_matches_naive(o, {3, 32, 32}, 40);
}

TEST(ImageTransform, CentreCropRoundsHalfToEvenAsTorchvision) {
  TransformOptions o;
  o.crop = ImageSize{4, 4};
  o.crop_placement = CropPlacement::center;
  for (auto [size, expected] : {std::pair{10, 3}, {9, 2}, {11, 4}, {4, 0}, {5, 0}, {7, 2}}) {
    ImageTransform t(o, 1, ImageShape{1, size, size});
    EXPECT_EQ(t.choices({1, size, size}, 0, 0, 0).top, expected) << size;
  }
}

TEST(ImageTransform, ChoicesArePerSeedEpochAndSample) {
  auto o = alexnet_practical_transforms({0, 0, 0}, {1, 1, 1}, true);
  ImageTransform t(o, 3, ImageShape{3, 32, 32});
  auto same = [&](std::uint64_t s, std::int64_t e, std::int64_t i, std::uint64_t s2, std::int64_t e2, std::int64_t i2) {
    int equal = 0;
    for (int k = 0; k < 50; ++k) {
      auto a = t.choices({3, 32, 32}, s, e, i + k), b = t.choices({3, 32, 32}, s2, e2, i2 + k);
      equal += a.top == b.top && a.left == b.left && a.flip == b.flip;
    }
    return equal;
  };
  EXPECT_EQ(same(1, 2, 3, 1, 2, 3), 50);
  EXPECT_LT(same(1, 2, 3, 1, 3, 3), 10);  // another epoch
  EXPECT_LT(same(1, 2, 3, 2, 2, 3), 10);  // another seed
}

TEST(ImageTransform, DifferingSizesNeedAResize) {
  InMemoryImages mixed(4, {{3, 20, 30}, {3, 40, 25}});
  try {
    ImageTransform(TransformOptions{}, 3, mixed.fixed_shape());
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--resize"), std::string::npos) << e.what();
  }
  TransformOptions o;
  o.resize = ImageSize{16, 16};
  ImageTransform t(o, 3, mixed.fixed_shape());
  TransformWorkspace w;
  std::vector<float> out(static_cast<std::size_t>(t.output_floats()));
  for (std::int64_t i = 0; i < 4; ++i) {
    std::vector<std::uint8_t> scratch;
    const auto image = mixed.image(i, scratch);
    t.apply(image, 0, 0, i, out.data(), w);
    const auto expected = naive(image, o, {});
    for (std::size_t k = 0; k < out.size(); ++k) {
      ASSERT_NEAR(out[k], expected[k], 2e-5);
    }
  }
  // A crop alone works while every image is large enough, and names the fix when one is not.
  TransformOptions crop;
  crop.crop = ImageSize{24, 24};
  ImageTransform c(crop, 3, mixed.fixed_shape());
  std::vector<std::uint8_t> scratch;
  out.resize(static_cast<std::size_t>(c.output_floats()));
  try {
    c.apply(mixed.image(0, scratch), 0, 0, 0, out.data(), w);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("image 0 (20x30) is smaller than --crop 24x24"), std::string::npos)
        << e.what();
  }
}

TEST(ImageTransform, ImpossibleOptionsAreUsageErrors) {
  TransformOptions big;
  big.crop = ImageSize{64, 64};
  EXPECT_THROW(ImageTransform(big, 3, ImageShape{3, 32, 32}), UsageError);
  big.resize = ImageSize{70, 70};
  EXPECT_NO_THROW(ImageTransform(big, 3, ImageShape{3, 32, 32}));
  TransformOptions norm;
  norm.mean = {0.5f};
  norm.std = {0.5f};
  try {
    ImageTransform(norm, 3, ImageShape{3, 8, 8});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("one mean and one std per channel (3 each)"), std::string::npos) << e.what();
  }
  norm.mean = {0.5f, 0.5f, 0.5f};
  norm.std = {0.5f, 0.0f, 0.5f};
  EXPECT_THROW(ImageTransform(norm, 3, ImageShape{3, 8, 8}), UsageError);
  TransformOptions negative;
  negative.crop = ImageSize{4, 4};
  negative.crop_padding = -1;
  EXPECT_THROW(ImageTransform(negative, 3, ImageShape{3, 8, 8}), UsageError);
  // Reflection needs an image larger than the padding (torchvision's rule too).
  TransformOptions mirror;
  mirror.crop = ImageSize{8, 8};
  mirror.crop_padding = 8;
  mirror.reflect_padding = true;
  try {
    ImageTransform(mirror, 3, ImageShape{3, 8, 8});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("by reflection needs images larger than the padding"), std::string::npos)
        << e.what();
  }
  mirror.crop_padding = 7;
  EXPECT_NO_THROW(ImageTransform(mirror, 3, ImageShape{3, 8, 8}));
}

TEST(ImageTransform, ParseImageSize) {
  EXPECT_EQ(parse_image_size("70x64", "--resize"), (ImageSize{70, 64}));
  EXPECT_EQ(parse_image_size("64", "--crop"), (ImageSize{64, 64}));
  for (const char* bad : {"", "x", "0x4", "4x", "-3", "4x4x4", "a"}) {
    EXPECT_THROW(parse_image_size(bad, "--resize"), UsageError) << bad;
  }
}

TEST(ChannelStatistics, MatchANaiveComputation) {
  InMemoryImages images(30, {{3, 5, 7}, {3, 6, 4}});
  const std::vector<std::int64_t> subset{1, 4, 5, 9, 20};
  const auto stats = compute_channel_statistics(images, subset);
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum2 = 0, n = 0;
    for (auto i : subset) {
      std::vector<std::uint8_t> scratch;
      const auto image = images.image(i, scratch);
      for (int y = 0; y < image.shape.height; ++y)
        for (int x = 0; x < image.shape.width; ++x) {
          const double v = image.at(c, y, x) / 255.0;
          sum += v;
          sum2 += v * v;
          ++n;
        }
    }
    const double mean = sum / n;
    EXPECT_NEAR(stats.mean[static_cast<std::size_t>(c)], mean, 1e-6);
    EXPECT_NEAR(stats.std[static_cast<std::size_t>(c)], std::sqrt(sum2 / n - mean * mean), 1e-6);
  }
  EXPECT_EQ(compute_channel_statistics(images).mean.size(), 3u);
}

}  // namespace
}  // namespace slurmlab::data
