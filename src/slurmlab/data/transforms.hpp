#pragma once
// Image transforms as torchvision composes them for training, applied in one pass from a uint8
// CHW image straight into a float CHW slot of a batch:
//
//   ToTensor (÷255) -> Resize(antialias=False) -> [Pad] RandomCrop / CenterCrop
//   -> RandomHorizontalFlip(p=0.5) -> Normalize(mean, std)
//
// Each step is optional (TransformOptions). Their meaning, matched to torchvision 0.14 on
// tensors and checked against it (tests/reference, label `reference`):
//   resize   to exactly height x width (both given), bilinear with align_corners=False (half-pixel
//            centres: source = (dst + 0.5) * in/out - 0.5, clamped at 0; the second tap clamped to
//            the last pixel), no antialiasing, i.e. torch.nn.functional.interpolate(mode="bilinear")
//            and torchvision.transforms.functional.resize(..., antialias=False) on a float tensor.
//            A downscale therefore aliases, as torchvision's tensor path without antialias does.
//   crop     a height x width window of the resized image padded by `crop_padding` zeros on every
//            side (RandomCrop(size, padding)); its top-left corner uniform over the valid
//            placements (random) or centred as CenterCrop rounds it (Python's round: half to even).
//   flip     mirror left-right with probability 1/2 (after the crop, as the composition above).
//   normalize (x - mean[c]) / std[c] per channel on the [0, 1] values; padding zeros become
//            -mean/std as they do in torchvision, where the pad happens before Normalize.
// Arithmetic: the bilinear taps are those of PyTorch's CPU kernel (horizontal, then vertical, in
// float); ÷255 and normalize are folded into one multiply-add per pixel, so results agree with
// torchvision to float rounding (a few 1e-7), not bit for bit.
//
// Randomness: the crop corner and the flip are a pure function of (seed, epoch, sample index
// in the data set), never of a thread or a call order, so any thread count and a resumed run
// produce identical batches. (A sample that appears twice in an epoch, by the sampler's
// padding, gets the same augmentation both times.)
//
// Threads: an ImageTransform is immutable after construction and may be shared by threads;
// each thread passes its own TransformWorkspace (which holds the only intermediate buffer: the
// horizontally resized rows of one image).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slurmlab/data/images.hpp"

namespace slurmlab::data {

struct ImageSize {
  int height = 0;
  int width = 0;
  friend bool operator==(const ImageSize&, const ImageSize&) = default;
};

// "70x70" or "70" (a square) -> ImageSize; UsageError naming `option` otherwise.
ImageSize parse_image_size(const std::string& text, const std::string& option);

enum class CropPlacement { random, center };

struct TransformOptions {
  std::optional<ImageSize> resize;                       // --resize HxW
  std::optional<ImageSize> crop;                         // --crop HxW
  int crop_padding = 0;                                  // --crop-padding P on every side
  bool reflect_padding = false;                          // --crop-padding-mode reflect (else zeros)
  CropPlacement crop_placement = CropPlacement::random;  // center for validation and test
  bool horizontal_flip = false;                          // --flip (p = 0.5)
  std::vector<float> mean, std;                          // --normalize: per channel, on [0, 1]; empty: none
};

// The AlexNet practical's training transforms for CIFAR-10 (70x70, random 64x64, flip,
// normalize) and their evaluation twin (70x70, centre 64x64).
TransformOptions alexnet_practical_transforms(std::vector<float> mean, std::vector<float> std, bool train);

// Per-worker scratch: reused between images, never shared between threads.
struct TransformWorkspace {
  std::vector<std::uint8_t> image_scratch;         // for data sets that make images on demand
  std::vector<float> rows;                         // the horizontally resized rows of one image
  std::vector<std::int32_t> x0, x1, y0, y1;        // bilinear taps (input pixel indices)
  std::vector<float> wx, wy;                       // weight of the second tap
  std::vector<std::uint8_t> row_valid, col_valid;  // 0 where the crop falls in the padding
};

class ImageTransform {
 public:
  // `input` is the data set's fixed_shape(): nullopt when images differ in size, which needs a
  // resize (or a crop no larger than the smallest image). Throws slurmlab::UsageError, naming
  // the option and the fix, for an impossible set of options: images of differing size with
  // neither resize nor crop ("pass --resize"), a crop larger than the (resized, padded) image,
  // mean/std not one per channel or a std <= 0, sizes < 1, negative padding.
  ImageTransform(TransformOptions options, int channels, std::optional<ImageShape> input);

  const TransformOptions& options() const { return options_; }
  ImageShape output_shape() const { return output_; }
  std::int64_t output_floats() const { return output_.bytes(); }

  // The random choices for one sample of an image of `input` shape.
  struct Choices {
    int top = 0, left = 0;  // crop corner in the padded, resized image
    bool flip = false;
  };
  Choices choices(ImageShape input, std::uint64_t seed, std::int64_t epoch, std::int64_t sample) const;

  // Writes output_floats() floats (CHW) to `out`. Throws slurmlab::UsageError when this image
  // (of a set with differing sizes) is smaller than the crop, naming the sample and --resize.
  void apply(const ImageView& image, std::uint64_t seed, std::int64_t epoch, std::int64_t sample, float* out,
             TransformWorkspace& workspace) const;
  void apply(const ImageView& image, const Choices& choices, float* out, TransformWorkspace& workspace) const;

  // What other backends (gpu_batches.cu) need to compute exactly the same: the size an input
  // is resized to, and per channel out = value (0..255, after the bilinear taps) * scale + bias.
  ImageSize resized(ImageShape input) const;
  std::span<const float> channel_scale() const { return scale_; }
  std::span<const float> channel_bias() const { return bias_; }

 private:
  TransformOptions options_;
  int channels_;
  ImageShape output_;
  std::vector<float> scale_, bias_;  // per channel: out = value * scale + bias (value in 0..255)
};

// Per-channel mean and standard deviation (population, ddof = 0) of the pixel values ÷255 over
// the given images (all of the data set when `indices` is empty), computed in double: what
// one feeds to Normalize ("compute from the training set"). Differing image sizes weigh each
// pixel alike.
struct ChannelStatistics {
  std::vector<float> mean, std;
};
ChannelStatistics compute_channel_statistics(const ImageDataset& dataset, std::span<const std::int64_t> indices = {});

}  // namespace slurmlab::data
