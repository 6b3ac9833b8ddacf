#include "slurmlab/data/transforms.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/random_stream.hpp"

namespace slurmlab::data {
namespace {

std::string size_text(ImageSize size) {
  return std::to_string(size.height) + "x" + std::to_string(size.width);
}

// The two taps and the second weight of output coordinate `r` when resizing `in` pixels to
// `out`, as PyTorch's upsample_bilinear2d (align_corners=False) computes them, in float.
struct Taps {
  std::int32_t i0, i1;
  float lambda1;
};
Taps bilinear_taps(int in, int out, int r) {
  if (in == out) return {r, r, 0.0f};
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  float real = scale * (static_cast<float>(r) + 0.5f) - 0.5f;
  if (real < 0.0f) real = 0.0f;
  const auto i0 = static_cast<std::int32_t>(real);
  const float lambda1 = std::clamp(real - static_cast<float>(i0), 0.0f, 1.0f);
  return {i0, i0 + (i0 < in - 1 ? 1 : 0), lambda1};
}

// Python's round() for a non-negative half-integer or integer: half to even.
int round_half_even(int twice) {
  return (twice / 2) + ((twice % 2 != 0 && (twice / 2) % 2 != 0) ? 1 : 0);
}

}  // namespace

ImageSize parse_image_size(const std::string& text, const std::string& option) {
  auto parse = [&](std::string_view part, int& value) {
    const auto* end = part.data() + part.size();
    auto [ptr, ec] = std::from_chars(part.data(), end, value);
    return ec == std::errc() && ptr == end && value >= 1;
  };
  ImageSize size;
  const auto x = text.find('x');
  const bool ok = x == std::string::npos ? parse(text, size.height) && (size.width = size.height, true)
                                         : parse(std::string_view(text).substr(0, x), size.height) &&
                                               parse(std::string_view(text).substr(x + 1), size.width);
  if (!ok) {
    throw UsageError(option + " '" + text +
                     "' is not an image size; give HEIGHTxWIDTH (e.g. 64x64) or one number for a square.");
  }
  return size;
}

TransformOptions alexnet_practical_transforms(std::vector<float> mean, std::vector<float> std, bool train) {
  TransformOptions options;
  options.resize = ImageSize{70, 70};
  options.crop = ImageSize{64, 64};
  options.crop_placement = train ? CropPlacement::random : CropPlacement::center;
  options.horizontal_flip = train;
  options.mean = std::move(mean);
  options.std = std::move(std);
  return options;
}

ImageTransform::ImageTransform(TransformOptions options, int channels, std::optional<ImageShape> input)
    : options_(std::move(options)), channels_(channels) {
  if (channels < 1) throw std::invalid_argument("ImageTransform: no channels");
  for (const auto* size : {options_.resize ? &*options_.resize : nullptr, options_.crop ? &*options_.crop : nullptr}) {
    if (size && (size->height < 1 || size->width < 1)) {
      throw UsageError("image size " + size_text(*size) + " is empty; give --resize/--crop sizes of at least 1x1.");
    }
  }
  if (options_.crop_padding < 0) {
    throw UsageError("--crop-padding " + std::to_string(options_.crop_padding) +
                     " is negative; give 0 or more pixels.");
  }
  if (!input && !options_.resize && !options_.crop) {
    throw UsageError(
        "the images of this data set differ in size and no transform makes them one shape; pass --resize "
        "HxW (e.g. --resize 64x64), optionally with --crop.");
  }
  if (input && input->channels != channels) {
    throw std::invalid_argument("ImageTransform: the input shape's channels disagree with `channels`");
  }
  if (!options_.mean.empty() || !options_.std.empty()) {
    if (options_.mean.size() != static_cast<std::size_t>(channels) ||
        options_.std.size() != static_cast<std::size_t>(channels)) {
      throw UsageError("--normalize needs one mean and one std per channel (" + std::to_string(channels) +
                       " each) but got " + std::to_string(options_.mean.size()) + " means and " +
                       std::to_string(options_.std.size()) + " stds; give " + std::to_string(channels) + " of each.");
    }
    for (const float s : options_.std) {
      if (!(s > 0.0f) || !std::isfinite(s)) {
        throw UsageError("--normalize std " + std::to_string(s) + " is not positive; give standard deviations > 0.");
      }
    }
  }
  // The output shape: the crop, else the resize, else the (one) input shape.
  const ImageSize out = options_.crop     ? *options_.crop
                        : options_.resize ? *options_.resize
                                          : ImageSize{input->height, input->width};
  output_ = {channels, out.height, out.width};
  if (options_.crop && (input || options_.resize)) {
    const ImageSize r = input ? resized(*input) : *options_.resize;
    const int pad = options_.crop_padding;
    if (options_.reflect_padding && (pad >= r.height || pad >= r.width)) {
      throw UsageError("--crop-padding " + std::to_string(pad) + " by reflection needs images larger than the padding, "
                       "and these are " + size_text(r) + "; give a smaller --crop-padding or --crop-padding-mode zeros.");
    }
    if (out.height > r.height + 2 * pad || out.width > r.width + 2 * pad) {
      throw UsageError("--crop " + size_text(out) + " is larger than the " + size_text(r) + " image" +
                       (pad ? " padded by " + std::to_string(pad) : std::string()) +
                       "; give a smaller --crop or a --resize of at least " + size_text(out) + ".");
    }
  }
  for (int c = 0; c < channels; ++c) {
    if (options_.mean.empty()) {
      scale_.push_back(1.0f / 255.0f);
      bias_.push_back(0.0f);
    } else {
      const auto m = options_.mean[static_cast<std::size_t>(c)], s = options_.std[static_cast<std::size_t>(c)];
      scale_.push_back(static_cast<float>(1.0 / (255.0 * static_cast<double>(s))));
      bias_.push_back(-m / s);
    }
  }
}

ImageSize ImageTransform::resized(ImageShape input) const {
  return options_.resize ? *options_.resize : ImageSize{input.height, input.width};
}

ImageTransform::Choices ImageTransform::choices(ImageShape input, std::uint64_t seed, std::int64_t epoch,
                                                std::int64_t sample) const {
  Choices choices;
  const ImageSize r = resized(input);
  const int pad = options_.crop_padding;
  if (options_.crop) {
    const int room_y = r.height + 2 * pad - output_.height, room_x = r.width + 2 * pad - output_.width;
    if (options_.crop_placement == CropPlacement::center) {
      choices.top = room_y >= 0 ? round_half_even(room_y) : 0;
      choices.left = room_x >= 0 ? round_half_even(room_x) : 0;
    } else if (room_y >= 0 && room_x >= 0) {
      SampleRandom random(seed, epoch, sample);
      // Drawn in this order always, so adding the flip does not move the crop.
      choices.top = static_cast<int>(random.below(static_cast<std::uint64_t>(room_y) + 1));
      choices.left = static_cast<int>(random.below(static_cast<std::uint64_t>(room_x) + 1));
    }
  }
  if (options_.horizontal_flip) {
    SampleRandom random(seed, epoch, sample);
    random.next();
    random.next();
    choices.flip = random.coin();
  }
  return choices;
}

void ImageTransform::apply(const ImageView& image, std::uint64_t seed, std::int64_t epoch, std::int64_t sample,
                           float* out, TransformWorkspace& workspace) const {
  if (options_.crop) {
    const ImageSize r = resized(image.shape);
    const int pad = options_.crop_padding;
    if (output_.height > r.height + 2 * pad || output_.width > r.width + 2 * pad) {
      throw UsageError("image " + std::to_string(sample) + " (" + size_text({image.shape.height, image.shape.width}) +
                       ") is smaller than --crop " + size_text({output_.height, output_.width}) +
                       "; pass --resize HxW (at least the crop size).");
    }
  }
  apply(image, choices(image.shape, seed, epoch, sample), out, workspace);
}

void ImageTransform::apply(const ImageView& image, const Choices& choices, float* out,
                           TransformWorkspace& workspace) const {
  if (image.shape.channels != channels_) {
    throw std::invalid_argument("ImageTransform::apply: image of " + std::to_string(image.shape.channels) +
                                " channels, transform for " + std::to_string(channels_));
  }
  const int in_h = image.shape.height, in_w = image.shape.width;
  const ImageSize r = resized(image.shape);
  const int out_h = output_.height, out_w = output_.width;
  const int pad = options_.crop ? options_.crop_padding : 0;
  // Reflection padding (torchvision's padding_mode="reflect", no edge repeat): a window
  // coordinate outside the resized image reads its mirror inside.
  const bool reflect = options_.reflect_padding && pad > 0;
  auto mirror = [](int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  auto& w = workspace;
  w.x0.resize(static_cast<std::size_t>(out_w));
  w.x1.resize(w.x0.size());
  w.wx.resize(w.x0.size());
  w.col_valid.resize(w.x0.size());
  for (int x = 0; x < out_w; ++x) {
    const auto i = static_cast<std::size_t>(x);
    int rx = (choices.flip ? out_w - 1 - x : x) + choices.left - pad;
    if (reflect) rx = mirror(rx, r.width);
    w.col_valid[i] = rx >= 0 && rx < r.width;
    const auto taps = w.col_valid[i] ? bilinear_taps(in_w, r.width, rx) : Taps{0, 0, 0.0f};
    w.x0[i] = taps.i0;
    w.x1[i] = taps.i1;
    w.wx[i] = taps.lambda1;
  }
  w.y0.resize(static_cast<std::size_t>(out_h));
  w.y1.resize(w.y0.size());
  w.wy.resize(w.y0.size());
  w.row_valid.resize(w.y0.size());
  int first_row = in_h, last_row = -1;
  for (int y = 0; y < out_h; ++y) {
    const auto i = static_cast<std::size_t>(y);
    int ry = y + choices.top - pad;
    if (reflect) ry = mirror(ry, r.height);
    w.row_valid[i] = ry >= 0 && ry < r.height;
    const auto taps = w.row_valid[i] ? bilinear_taps(in_h, r.height, ry) : Taps{0, 0, 0.0f};
    w.y0[i] = taps.i0;
    w.y1[i] = taps.i1;
    w.wy[i] = taps.lambda1;
    if (w.row_valid[i]) {
      first_row = std::min(first_row, taps.i0);
      last_row = std::max(last_row, taps.i1);
    }
  }
  const int rows = std::max(0, last_row - first_row + 1);
  w.rows.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(out_w));
  const std::int64_t plane = std::int64_t{out_h} * out_w;
  for (int c = 0; c < channels_; ++c) {
    // Horizontal pass over the source rows the window needs (padding columns stay 0).
    const std::uint8_t* channel = image.pixels + std::int64_t{c} * in_h * in_w;
    for (int sy = first_row; sy <= last_row; ++sy) {
      const std::uint8_t* src = channel + std::int64_t{sy} * in_w;
      float* dst = w.rows.data() + static_cast<std::size_t>(sy - first_row) * static_cast<std::size_t>(out_w);
      for (int x = 0; x < out_w; ++x) {
        const auto i = static_cast<std::size_t>(x);
        const float l1 = w.wx[i], l0 = 1.0f - l1;
        dst[x] = w.col_valid[i] ? static_cast<float>(src[w.x0[i]]) * l0 + static_cast<float>(src[w.x1[i]]) * l1 : 0.0f;
      }
    }
    // Vertical pass, ÷255 and normalize, straight into the output.
    const float scale = scale_[static_cast<std::size_t>(c)], bias = bias_[static_cast<std::size_t>(c)];
    float* out_plane = out + c * plane;
    for (int y = 0; y < out_h; ++y) {
      const auto i = static_cast<std::size_t>(y);
      float* dst = out_plane + std::int64_t{y} * out_w;
      if (!w.row_valid[i]) {
        std::fill(dst, dst + out_w, bias);
        continue;
      }
      const float* a = w.rows.data() + static_cast<std::size_t>(w.y0[i] - first_row) * static_cast<std::size_t>(out_w);
      const float* b = w.rows.data() + static_cast<std::size_t>(w.y1[i] - first_row) * static_cast<std::size_t>(out_w);
      const float l1 = w.wy[i], l0 = 1.0f - l1;
      for (int x = 0; x < out_w; ++x) dst[x] = (a[x] * l0 + b[x] * l1) * scale + bias;
    }
  }
}

ChannelStatistics compute_channel_statistics(const ImageDataset& dataset, std::span<const std::int64_t> indices) {
  const int channels = dataset.channels();
  std::vector<double> sum(static_cast<std::size_t>(channels)), sum_squares(sum.size());
  std::vector<std::int64_t> count(sum.size());
  std::vector<std::uint8_t> scratch;
  const std::int64_t n = indices.empty() ? dataset.size() : static_cast<std::int64_t>(indices.size());
  for (std::int64_t k = 0; k < n; ++k) {
    const auto index = indices.empty() ? k : indices[static_cast<std::size_t>(k)];
    const ImageView image = dataset.image(index, scratch);
    const std::int64_t pixels = std::int64_t{image.shape.height} * image.shape.width;
    for (int c = 0; c < channels; ++c) {
      // Exact integer sums per image (at most 255^2 * pixels), then double.
      std::uint64_t s = 0, s2 = 0;
      const std::uint8_t* p = image.pixels + c * pixels;
      for (std::int64_t i = 0; i < pixels; ++i) {
        s += p[i];
        s2 += std::uint64_t{p[i]} * p[i];
      }
      sum[static_cast<std::size_t>(c)] += static_cast<double>(s);
      sum_squares[static_cast<std::size_t>(c)] += static_cast<double>(s2);
      count[static_cast<std::size_t>(c)] += pixels;
    }
  }
  ChannelStatistics statistics;
  for (std::size_t c = 0; c < sum.size(); ++c) {
    const double total = static_cast<double>(std::max<std::int64_t>(count[c], 1));
    const double mean = sum[c] / total / 255.0;
    const double variance = std::max(0.0, sum_squares[c] / total / (255.0 * 255.0) - mean * mean);
    statistics.mean.push_back(static_cast<float>(mean));
    statistics.std.push_back(static_cast<float>(std::sqrt(variance)));
  }
  return statistics;
}

}  // namespace slurmlab::data
