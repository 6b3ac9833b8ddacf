#pragma once
// A small labelled image set held in memory, for the pipeline's tests and benchmark: images of
// one shape or of differing sizes, pixels a fixed function of (seed, index), and optionally
// one index whose image() throws as a corrupt image file would.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::testing {

class InMemoryImages final : public data::ImageDataset {
 public:
  // `shapes`: one shape (every image) or one per image (differing sizes).
  InMemoryImages(std::int64_t count, std::vector<data::ImageShape> shapes, int classes = 10, std::uint64_t seed = 1)
      : shapes_(std::move(shapes)), offsets_(static_cast<std::size_t>(count) + 1) {
    for (int c = 0; c < classes; ++c) names_.push_back("class" + std::to_string(c));
    for (std::int64_t i = 0; i < count; ++i) {
      offsets_[static_cast<std::size_t>(i) + 1] = offsets_[static_cast<std::size_t>(i)] + shape(i).bytes();
      labels_.push_back(i % classes);
    }
    pixels_.resize(static_cast<std::size_t>(offsets_.back()));
    std::uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 12345;
    for (auto& p : pixels_) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      p = static_cast<std::uint8_t>(state >> 56);
    }
  }
  // image(index) throws UsageError(message) from now on.
  void make_corrupt(std::int64_t index, std::string message) {
    corrupt_ = index;
    corrupt_message_ = std::move(message);
  }
  // Views come from scratch, as for sets that decode on demand, when `copy_to_scratch`.
  void set_copy_to_scratch(bool copy) { copy_to_scratch_ = copy; }

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t label(std::int64_t index) const override { return labels_.at(static_cast<std::size_t>(index)); }
  const std::vector<std::string>& class_names() const override { return names_; }
  data::ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const override {
    if (index < 0 || index >= size()) throw std::out_of_range("InMemoryImages: index " + std::to_string(index));
    if (index == corrupt_) throw UsageError(corrupt_message_);
    const std::uint8_t* p = pixels_.data() + offsets_[static_cast<std::size_t>(index)];
    if (copy_to_scratch_) {
      scratch.assign(p, p + shape(index).bytes());
      p = scratch.data();
    }
    return {p, shape(index)};
  }
  std::optional<data::ImageShape> fixed_shape() const override {
    if (shapes_.size() == 1) return shapes_.front();
    return std::nullopt;
  }
  int channels() const override { return shapes_.front().channels; }
  std::string describe() const override { return "in-memory test images"; }
  bool synthetic() const override { return true; }
  const std::uint8_t* raw(std::int64_t index) const {
    return pixels_.data() + offsets_[static_cast<std::size_t>(index)];
  }

 private:
  data::ImageShape shape(std::int64_t i) const {
    return shapes_.size() == 1 ? shapes_.front() : shapes_[static_cast<std::size_t>(i) % shapes_.size()];
  }
  std::vector<data::ImageShape> shapes_;
  std::vector<std::int64_t> offsets_;
  std::vector<std::int64_t> labels_;
  std::vector<std::string> names_;
  std::vector<std::uint8_t> pixels_;
  std::int64_t corrupt_ = -1;
  std::string corrupt_message_;
  bool copy_to_scratch_ = false;
};

}  // namespace slurmlab::testing
