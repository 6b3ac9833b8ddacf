#pragma once
// PNG (libpng's simplified API) and JPEG (TurboJPEG 2.x API) decoding to channel-planar uint8,
// for image folders. Neither library's headers leak out of image_codecs.cpp. Every function is
// safe to call from many threads at once (no shared state; a TurboJPEG handle per call).
// Errors are UsageError naming `path` (used for messages only).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "slurmlab/data/images.hpp"

namespace slurmlab::data {

// The whole file; UsageError if it cannot be read.
std::vector<std::uint8_t> read_whole_file(const std::filesystem::path& path);

// Whether the PNG or JPEG in `bytes` holds colour (from its header only).
bool image_is_colour(std::span<const std::uint8_t> bytes, const std::filesystem::path& path);

// The (height, width) of the PNG or JPEG in `bytes`, from its header only; nullopt when
// `bytes` (possibly the start of a file) ends before the header does. UsageError for a file
// that is neither or whose header is corrupt.
std::optional<std::pair<int, int>> image_header_size(std::span<const std::uint8_t> bytes, const std::filesystem::path& path);

// Decodes a PNG or JPEG (told apart by their signatures, not by the file name) to `channels`
// (1 or 3) channels, CHW, into the start of `out` (resized as needed). Alpha is dropped, gray
// replicated to 3 channels, colour converted to gray as 0.299 R + 0.587 G + 0.114 B (PIL's "L").
ImageShape decode_image(std::span<const std::uint8_t> bytes, const std::filesystem::path& path, int channels,
                        std::vector<std::uint8_t>& out);

}  // namespace slurmlab::data
