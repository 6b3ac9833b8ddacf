// open_image_dataset: a data set named on the command line ("cifar10:/data/cifar").
#include <filesystem>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {

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
