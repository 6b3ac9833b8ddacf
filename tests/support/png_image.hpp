#pragma once
// A decoded PNG for tests: reads bytes with cairo's own PNG reader (libpng underneath),
// independent of how the figure was drawn, and exposes RGB pixels.
#include <cairo.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace slurmlab::test {

struct Pixel {
  int r = 0, g = 0, b = 0;
  // Saturated (not a shade of grey): series colours are, text, grid and frame are not.
  bool coloured(int threshold = 40) const {
    return std::max({r, g, b}) - std::min({r, g, b}) > threshold;
  }
  bool near(int rr, int gg, int bb, int tolerance) const {
    return std::abs(r - rr) <= tolerance && std::abs(g - gg) <= tolerance && std::abs(b - bb) <= tolerance;
  }
};

class PngImage {
 public:
  explicit PngImage(const std::vector<unsigned char>& bytes) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (bytes.size() < 8 || std::memcmp(bytes.data(), signature, 8) != 0) {
      throw std::runtime_error("not a PNG (bad signature)");
    }
    struct Cursor {
      const std::vector<unsigned char>* bytes;
      std::size_t at = 0;
    } cursor{&bytes, 0};
    auto read = [](void* closure, unsigned char* data, unsigned int length) -> cairo_status_t {
      auto* c = static_cast<Cursor*>(closure);
      if (c->at + length > c->bytes->size()) return CAIRO_STATUS_READ_ERROR;
      std::memcpy(data, c->bytes->data() + c->at, length);
      c->at += length;
      return CAIRO_STATUS_SUCCESS;
    };
    cairo_surface_t* surface = cairo_image_surface_create_from_png_stream(read, &cursor);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
      std::string why = cairo_status_to_string(cairo_surface_status(surface));
      cairo_surface_destroy(surface);
      throw std::runtime_error("PNG decoding failed: " + why);
    }
    cairo_surface_flush(surface);
    width_ = cairo_image_surface_get_width(surface);
    height_ = cairo_image_surface_get_height(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    pixels_.resize(static_cast<std::size_t>(width_) * static_cast<std::size_t>(height_));
    for (int y = 0; y < height_; ++y) {
      std::uint32_t row[1];
      for (int x = 0; x < width_; ++x) {
        std::memcpy(row, data + static_cast<std::ptrdiff_t>(y) * stride + 4 * x, 4);
        pixels_[static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)] = {
            static_cast<int>((row[0] >> 16) & 0xff), static_cast<int>((row[0] >> 8) & 0xff),
            static_cast<int>(row[0] & 0xff)};
      }
    }
    cairo_surface_destroy(surface);
  }
  int width() const { return width_; }
  int height() const { return height_; }
  const Pixel& at(int x, int y) const {
    return pixels_[static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) + static_cast<std::size_t>(x)];
  }
  template <class Predicate>
  long count(Predicate p) const {
    long n = 0;
    for (const auto& px : pixels_) n += p(px) ? 1 : 0;
    return n;
  }

 private:
  int width_ = 0, height_ = 0;
  std::vector<Pixel> pixels_;
};

}  // namespace slurmlab::test
