#include "slurmlab/data/image_codecs.hpp"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::data {
namespace {

namespace fs = std::filesystem;

constexpr std::uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

bool is_png(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0;
}
bool is_jpeg(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

[[noreturn]] void throw_corrupt(const fs::path& path, const std::string& kind, const std::string& why) {
  throw UsageError("image " + quoted(path) + " is not a readable " + kind + " (" + why +
                   "); replace or delete the file.");
}

[[noreturn]] void throw_unknown(const fs::path& path) {
  throw UsageError("image " + quoted(path) +
                   " is neither a PNG nor a JPEG (its first bytes are no such signature); convert it or delete it.");
}

// Interleaved pixels with `from` channels per pixel (the first 3 colour, or 1 gray) to CHW.
void interleaved_to_planar(const std::uint8_t* in, int from, bool colour, int height, int width, int channels,
                           std::uint8_t* out) {
  const std::int64_t plane = std::int64_t{height} * width;
  for (std::int64_t p = 0; p < plane; ++p) {
    const std::uint8_t* pixel = in + p * from;
    if (channels == 3) {
      for (int c = 0; c < 3; ++c) out[c * plane + p] = colour ? pixel[c] : pixel[0];
    } else if (colour) {
      // PIL's ITU-R 601-2 luma, rounded: L = (299 R + 587 G + 114 B) / 1000.
      out[p] = static_cast<std::uint8_t>((299 * pixel[0] + 587 * pixel[1] + 114 * pixel[2] + 500) / 1000);
    } else {
      out[p] = pixel[0];
    }
  }
}

void reserve_output(std::vector<std::uint8_t>& out, std::int64_t planar, std::int64_t interleaved) {
  const auto needed = static_cast<std::size_t>(planar + interleaved);
  if (out.size() < needed) out.resize(needed);
}

ImageShape decode_png(std::span<const std::uint8_t> bytes, const fs::path& path, int channels,
                      std::vector<std::uint8_t>& out) {
  // The simplified API keeps libpng's setjmp/longjmp inside libpng (png_safe_execute): errors
  // come back as a zero return and image.message, never as a jump through our frames.
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  struct Free {
    png_image* image;
    ~Free() { png_image_free(image); }
  } free_image{&image};
  if (png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()) == 0)
    throw_corrupt(path, "PNG", image.message);
  image.format = PNG_FORMAT_RGBA;  // alpha kept, then dropped by us (no compositing)
  const ImageShape shape{channels, static_cast<int>(image.height), static_cast<int>(image.width)};
  const auto interleaved = static_cast<std::int64_t>(PNG_IMAGE_SIZE(image));
  reserve_output(out, shape.bytes(), interleaved);
  std::uint8_t* rgba = out.data() + shape.bytes();
  if (png_image_finish_read(&image, nullptr, rgba, 0, nullptr) == 0) throw_corrupt(path, "PNG", image.message);
  interleaved_to_planar(rgba, 4, true, shape.height, shape.width, channels, out.data());
  return shape;
}

ImageShape decode_jpeg(std::span<const std::uint8_t> bytes, const fs::path& path, int channels,
                       std::vector<std::uint8_t>& out) {
  std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
  if (!handle) throw_corrupt(path, "JPEG", "TurboJPEG could not start a decompressor");
  int width = 0, height = 0, subsampling = 0, colourspace = 0;
  // TurboJPEG 2.x takes non-const buffers but does not write them.
  auto* data = const_cast<unsigned char*>(bytes.data());
  const auto size = static_cast<unsigned long>(bytes.size());
  if (tjDecompressHeader3(handle.get(), data, size, &width, &height, &subsampling, &colourspace) != 0)
    throw_corrupt(path, "JPEG", tjGetErrorStr2(handle.get()));
  if (colourspace == TJCS_CMYK || colourspace == TJCS_YCCK)
    throw UsageError("image " + quoted(path) + " is a CMYK JPEG, which is not supported; convert it to RGB.");
  const ImageShape shape{channels, height, width};
  const int source_channels = colourspace == TJCS_GRAY ? 1 : 3;
  reserve_output(out, shape.bytes(), shape.bytes() / channels * 3);
  std::uint8_t* interleaved = out.data() + shape.bytes();
  // Decode straight to the set's channel count: gray->RGB replication and RGB->gray conversion
  // are TurboJPEG's (its gray output is the Y plane, i.e. the same 0.299/0.587/0.114 luma).
  const int format = channels == 3 ? TJPF_RGB : TJPF_GRAY;
  if (tjDecompress2(handle.get(), data, size, interleaved, width, 0, height, format, TJFLAG_ACCURATEDCT) != 0) {
    const std::string message = tjGetErrorStr2(handle.get());
    // Warnings leave a whole image (libjpeg's "extraneous bytes before marker" is common in real
    // sets, and PIL accepts it), except a file cut short, whose missing rows would be made up.
    if (tjGetErrorCode(handle.get()) != TJERR_WARNING || message.find("Premature end") != std::string::npos)
      throw_corrupt(path, "JPEG", message);
  }
  interleaved_to_planar(interleaved, channels, channels == 3 && source_channels == 3, height, width, channels,
                        out.data());
  return shape;
}

}  // namespace

std::vector<std::uint8_t> read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("image " + quoted(path) + " cannot be opened; check that it exists and is readable.");
  std::vector<std::uint8_t> bytes;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) throw UsageError("image " + quoted(path) + " cannot be read; check that it is a regular file.");
  bytes.resize(static_cast<std::size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw UsageError("image " + quoted(path) + " cannot be read to the end; check the file system.");
  return bytes;
}

bool image_is_colour(std::span<const std::uint8_t> bytes, const fs::path& path) {
  if (is_png(bytes)) {
    // IHDR is the first chunk: signature (8), length (4), "IHDR" (4), width, height (4 each),
    // bit depth (1), colour type (1): 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    if (bytes.size() < 26 || std::memcmp(bytes.data() + 12, "IHDR", 4) != 0)
      throw_corrupt(path, "PNG", "no IHDR chunk at the start");
    const int colour_type = bytes[25];
    return colour_type == 2 || colour_type == 3 || colour_type == 6;
  }
  if (is_jpeg(bytes)) {
    std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
    int width = 0, height = 0, subsampling = 0, colourspace = 0;
    if (!handle ||
        tjDecompressHeader3(handle.get(), const_cast<unsigned char*>(bytes.data()),
                            static_cast<unsigned long>(bytes.size()), &width, &height, &subsampling, &colourspace) != 0)
      throw_corrupt(path, "JPEG", handle ? tjGetErrorStr2(handle.get()) : "TurboJPEG could not start");
    return colourspace != TJCS_GRAY;
  }
  throw_unknown(path);
}

std::optional<std::pair<int, int>> image_header_size(std::span<const std::uint8_t> bytes, const fs::path& path) {
  if (is_png(bytes)) {
    // IHDR: width at bytes 16..19, height at 20..23, big-endian.
    if (bytes.size() < 24) return std::nullopt;
    if (std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) throw_corrupt(path, "PNG", "no IHDR chunk at the start");
    const auto be32 = [&](std::size_t at) {
      return static_cast<std::uint32_t>(bytes[at]) << 24 | static_cast<std::uint32_t>(bytes[at + 1]) << 16 |
             static_cast<std::uint32_t>(bytes[at + 2]) << 8 | static_cast<std::uint32_t>(bytes[at + 3]);
    };
    return std::pair{static_cast<int>(be32(20)), static_cast<int>(be32(16))};
  }
  if (is_jpeg(bytes)) {
    std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
    int width = 0, height = 0, subsampling = 0, colourspace = 0;
    if (!handle) throw_corrupt(path, "JPEG", "TurboJPEG could not start");
    if (tjDecompressHeader3(handle.get(), const_cast<unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()),
                            &width, &height, &subsampling, &colourspace) != 0) {
      return std::nullopt;  // the header is not all there (or corrupt: the whole file decides)
    }
    return std::pair{height, width};
  }
  if (bytes.size() < 8) return std::nullopt;
  throw_unknown(path);
}

ImageShape decode_image(std::span<const std::uint8_t> bytes, const fs::path& path, int channels,
                        std::vector<std::uint8_t>& out) {
  if (is_png(bytes)) return decode_png(bytes, path, channels, out);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, path, channels, out);
  throw_unknown(path);
}

}  // namespace slurmlab::data
