// The synthetic image set: one shape per class, drawn on demand from (seed, split, index).
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {
namespace {

constexpr int kShapes = 12;
constexpr std::array<const char*, kShapes> kShapeNames{
    "disc",          "square",         "triangle", "plus",    "ring",  "horizontal bars",
    "vertical bars", "diagonal cross", "two dots", "checker", "frame", "diagonal stripe"};

// SplitMix64: a tiny counter-based generator, so every image has its own independent stream.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Stream {
 public:
  explicit Stream(std::uint64_t state) : state_(state) {}
  std::uint64_t next() { return mix(state_++); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int integer(int low, int high) { return low + static_cast<int>(next() % static_cast<std::uint64_t>(high - low + 1)); }

 private:
  std::uint64_t state_;
};

// Whether the point (u, v) of the shape's box [-1, 1]^2 (v pointing down) is inside shape `kind`.
bool inside(int kind, double u, double v) {
  const double au = std::abs(u), av = std::abs(v);
  const bool in_box = au <= 0.9 && av <= 0.9;
  switch (kind) {
    case 0:
      return u * u + v * v <= 0.81;  // disc
    case 1:
      return au <= 0.75 && av <= 0.75;  // square
    case 2:
      return v >= -0.85 && v <= 0.85 && au <= (v + 0.85) / 1.7 * 0.9;  // triangle, apex up
    case 3:
      return (au <= 0.25 && av <= 0.9) || (av <= 0.25 && au <= 0.9);  // plus
    case 4: {                                                         // ring
      const double r2 = u * u + v * v;
      return r2 <= 0.81 && r2 >= 0.3;
    }
    case 5:
      return in_box && static_cast<int>(std::floor((v + 0.9) / 0.36)) % 2 == 0;  // horizontal bars
    case 6:
      return in_box && static_cast<int>(std::floor((u + 0.9) / 0.36)) % 2 == 0;  // vertical bars
    case 7:
      return in_box && (std::abs(u - v) <= 0.3 || std::abs(u + v) <= 0.3);  // diagonal cross
    case 8:
      return (u + 0.5) * (u + 0.5) + v * v <= 0.16 || (u - 0.5) * (u - 0.5) + v * v <= 0.16;  // two dots
    case 9:                                                                                   // 3x3 checker
      return in_box &&
             (static_cast<int>(std::floor((u + 0.9) / 0.6)) + static_cast<int>(std::floor((v + 0.9) / 0.6))) % 2 == 0;
    case 10:
      return in_box && std::max(au, av) >= 0.55;  // frame
    case 11:
      return in_box && std::abs(u - v) <= 0.35;  // diagonal stripe
    default:
      return false;
  }
}

std::uint8_t clamp_byte(double value) {
  return static_cast<std::uint8_t>(std::clamp(std::lround(value), 0L, 255L));
}

class SyntheticImages final : public ImageDataset {
 public:
  explicit SyntheticImages(const SyntheticImageOptions& options)
      : options_(options), count_(options.split == Split::train ? options.count : options.test_count) {
    const auto& shape = options.shape;
    if (count_ < 1)
      throw UsageError("synthetic image count " + std::to_string(count_) +
                       " is not positive; ask for at least 1 image.");
    if (options.classes < 2 || options.classes > kShapes)
      throw UsageError("synthetic images have 2 to " + std::to_string(kShapes) + " classes (one per shape), not " +
                       std::to_string(options.classes) + "; choose a class count in that range.");
    if (shape.channels != 1 && shape.channels != 3)
      throw UsageError("synthetic images have 1 or 3 channels, not " + std::to_string(shape.channels) +
                       "; choose one of those.");
    if (shape.height < 8 || shape.width < 8 || shape.height > 4096 || shape.width > 4096)
      throw UsageError("synthetic image size " + std::to_string(shape.height) + "x" + std::to_string(shape.width) +
                       " is outside 8x8..4096x4096; choose a size in that range.");
    for (int k = 0; k < options.classes; ++k) class_names_.emplace_back(kShapeNames[static_cast<std::size_t>(k)]);
  }

  std::int64_t size() const override { return count_; }
  std::int64_t label(std::int64_t index) const override { return checked(index) % options_.classes; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::optional<ImageShape> fixed_shape() const override { return options_.shape; }
  int channels() const override { return options_.shape.channels; }
  bool synthetic() const override { return true; }
  std::string describe() const override {
    return std::string("SYNTHETIC images (procedurally drawn shapes, not real data), ") + to_string(options_.split) +
           ", " + std::to_string(count_) + " images " + to_string(options_.shape) + ", " +
           std::to_string(options_.classes) + " classes, seed " + std::to_string(options_.seed);
  }

  ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const override {
    const int kind = static_cast<int>(label(index));
    const auto& shape = options_.shape;
    const int channels = shape.channels, height = shape.height, width = shape.width;
    Stream random(
        mix(options_.seed ^ mix(static_cast<std::uint64_t>(index) * 2 + (options_.split == Split::train ? 0 : 1))));
    // A box of 45%..85% of the shorter side, anywhere inside the image.
    const double side = std::min(height, width) * (0.45 + 0.4 * random.uniform());
    const double half = side / 2;
    const double cx = half + random.uniform() * (width - side);
    const double cy = half + random.uniform() * (height - side);
    // Background and foreground brightness at least 90 apart, each channel tinted at random,
    // so neither colour nor brightness tells the class.
    const double background = 255 * random.uniform();
    const double contrast = 90 + 120 * random.uniform();
    const double foreground = background < 128 ? background + contrast : background - contrast;
    std::array<double, 3> back{}, fore{};
    for (int c = 0; c < channels; ++c) {
      back[static_cast<std::size_t>(c)] = background + (channels == 3 ? 100 * random.uniform() - 50 : 0);
      fore[static_cast<std::size_t>(c)] = foreground + (channels == 3 ? 100 * random.uniform() - 50 : 0);
    }
    const std::int64_t plane = std::int64_t{height} * width;
    if (scratch.size() < static_cast<std::size_t>(plane * channels))
      scratch.resize(static_cast<std::size_t>(plane * channels));
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        // 2x2 supersampling: edges are blended, not stair-stepped.
        int covered = 0;
        for (int sy = 0; sy < 2; ++sy)
          for (int sx = 0; sx < 2; ++sx)
            covered += inside(kind, (x + 0.25 + 0.5 * sx - cx) / half, (y + 0.25 + 0.5 * sy - cy) / half) ? 1 : 0;
        const double weight = covered / 4.0;
        for (int c = 0; c < channels; ++c) {
          const auto cc = static_cast<std::size_t>(c);
          const double noise = random.integer(-24, 24);
          scratch[static_cast<std::size_t>(c * plane + std::int64_t{y} * width + x)] =
              clamp_byte(back[cc] + weight * (fore[cc] - back[cc]) + noise);
        }
      }
    return {scratch.data(), shape};
  }

 private:
  std::int64_t checked(std::int64_t index) const {
    if (index < 0 || index >= count_)
      throw std::out_of_range("image index " + std::to_string(index) + " outside 0.." + std::to_string(count_ - 1));
    return index;
  }

  SyntheticImageOptions options_;
  std::int64_t count_;
  std::vector<std::string> class_names_;
};

}  // namespace

std::unique_ptr<ImageDataset> make_synthetic_images(const SyntheticImageOptions& options) {
  return std::make_unique<SyntheticImages>(options);
}

}  // namespace slurmlab::data
