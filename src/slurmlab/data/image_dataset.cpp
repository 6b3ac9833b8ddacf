// open_image_dataset: a data set named on the command line ("cifar10:/data/cifar").
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {
namespace {

class SubsetImages final : public ImageDataset {
 public:
  SubsetImages(const ImageDataset& base, std::vector<std::int64_t> indices, std::string what)
      : base_(base), indices_(std::move(indices)), what_(std::move(what)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  std::int64_t label(std::int64_t index) const override { return base_.label(at(index)); }
  const std::vector<std::string>& class_names() const override { return base_.class_names(); }
  ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const override {
    return base_.image(at(index), scratch);
  }
  std::optional<ImageShape> fixed_shape() const override { return base_.fixed_shape(); }
  int channels() const override { return base_.channels(); }
  std::string describe() const override {
    return what_ + ", " + std::to_string(indices_.size()) + " images of " + base_.describe();
  }
  bool synthetic() const override { return base_.synthetic(); }

 private:
  std::int64_t at(std::int64_t index) const {
    if (index < 0 || index >= size()) throw std::out_of_range("image index " + std::to_string(index) + " out of range");
    return indices_[static_cast<std::size_t>(index)];
  }
  const ImageDataset& base_;
  std::vector<std::int64_t> indices_;
  std::string what_;
};

}  // namespace

bool has_separate_test_split(const std::string& spec) {
  if (spec.rfind("folder:", 0) != 0) return true;
  return std::filesystem::is_directory(std::filesystem::path(spec.substr(7)) / "train");
}

std::unique_ptr<ImageDataset> subset_of(const ImageDataset& base, std::vector<std::int64_t> indices, std::string what) {
  for (auto i : indices) {
    if (i < 0 || i >= base.size()) throw std::out_of_range("subset_of: image " + std::to_string(i) + " out of range");
  }
  return std::make_unique<SubsetImages>(base, std::move(indices), std::move(what));
}

std::unique_ptr<ImageDataset> open_image_dataset(const std::string& spec, Split split,
                                                 const SyntheticImageOptions& synthetic) {
  namespace fs = std::filesystem;
  if (spec == "synthetic") {
    auto options = synthetic;
    options.split = split;
    return make_synthetic_images(options);
  }
  const auto colon = spec.find(':');
  const std::string kind = colon == std::string::npos ? spec : spec.substr(0, colon);
  const fs::path dir = colon == std::string::npos ? fs::path{} : fs::path(spec.substr(colon + 1));
  const bool known = kind == "mnist" || kind == "fashion-mnist" || kind == "kmnist" || kind == "cifar10" ||
                     kind == "cifar100" || kind == "cifar100-coarse" || kind == "folder";
  if (!known || dir.empty())
    throw UsageError("data set '" + spec +
                     "' is not one of mnist:DIR, fashion-mnist:DIR, kmnist:DIR, cifar10:DIR, cifar100:DIR, "
                     "cifar100-coarse:DIR, folder:DIR or synthetic; name one of those (DIR is the data folder).");
  if (kind == "mnist") return open_mnist(dir, split, MnistVariant::mnist);
  if (kind == "fashion-mnist") return open_mnist(dir, split, MnistVariant::fashion_mnist);
  if (kind == "kmnist") return open_mnist(dir, split, MnistVariant::kmnist);
  if (kind == "cifar10") return open_cifar10(dir, split);
  if (kind == "cifar100") return open_cifar100(dir, split, true);
  if (kind == "cifar100-coarse") return open_cifar100(dir, split, false);
  // folder: Imagenette's (and ImageNet's) train/ + val/ layout when present, else DIR itself.
  if (fs::is_directory(dir / "train")) {
    if (split == Split::train) return open_image_folder(dir / "train");
    for (const char* name : {"val", "test"})
      if (fs::is_directory(dir / name)) return open_image_folder(dir / name);
    throw UsageError("image folder '" + dir.string() +
                     "' has a train/ sub-folder but no val/ or test/ beside it; add one or point at train/ alone.");
  }
  return open_image_folder(dir);
}

}  // namespace slurmlab::data
