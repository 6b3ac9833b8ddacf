// Writes the pipeline's transforms on a few images for compare_transforms_with_torchvision.py:
// for each case the options, the inputs (uint8 CHW), the random choices and what
// slurmlab::data::ImageTransform made of them (float CHW). The script redoes every image with
// torchvision.transforms.functional (resize antialias=False, pad, crop, hflip, normalize).
//
// usage: transforms_case OUTPUT_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "slurmlab/data/transforms.hpp"
#include "support/in_memory_images.hpp"

using namespace slurmlab::data;

namespace {

std::string size_json(const std::optional<ImageSize>& size) {
  return size ? "[" + std::to_string(size->height) + ", " + std::to_string(size->width) + "]" : "null";
}

std::string floats_json(const std::vector<float>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%s%.9g", i ? ", " : "", static_cast<double>(values[i]));
    out += buffer;
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: transforms_case OUTPUT_DIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  struct Case {
    std::string name;
    ImageShape shape;
    TransformOptions options;
  };
  std::vector<Case> cases;
  cases.push_back({"alexnet_train",
                   {3, 32, 32},
                   alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}, true)});
  cases.push_back({"alexnet_eval",
                   {3, 32, 32},
                   alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.247f, 0.243f, 0.261f}, false)});
  TransformOptions down;
  down.resize = ImageSize{17, 23};
  cases.push_back({"downscale_gray", {1, 40, 30}, down});
  TransformOptions up;
  up.resize = ImageSize{13, 29};
  up.horizontal_flip = true;
  cases.push_back({"upscale_flip", {3, 5, 7}, up});
  TransformOptions padded;
  padded.crop = ImageSize{32, 32};
  padded.crop_padding = 4;
  padded.horizontal_flip = true;
  padded.mean = {0.5f, 0.4f, 0.3f};
  padded.std = {0.2f, 0.25f, 0.3f};
  cases.push_back({"padded_crop", {3, 32, 32}, padded});
  // airbench94's translation: reflection padding of 2, after a resize (the mirror is taken in
  // the resized image, as torchvision pads the resized tensor).
  TransformOptions reflected;
  reflected.resize = ImageSize{30, 34};
  reflected.crop = ImageSize{32, 32};
  reflected.crop_padding = 2;
  reflected.reflect_padding = true;
  reflected.horizontal_flip = true;
  cases.push_back({"reflect_padded_crop", {3, 32, 32}, reflected});
  TransformOptions centre;
  centre.resize = ImageSize{21, 19};
  centre.crop = ImageSize{10, 12};
  centre.crop_placement = CropPlacement::center;
  cases.push_back({"centre_crop_odd", {3, 16, 16}, centre});

  std::ofstream manifest(dir / "manifest.jsonl");
  const int samples = 6;
  for (const auto& c : cases) {
    slurmlab::testing::InMemoryImages images(samples, {c.shape}, 10, 17);
    ImageTransform transform(c.options, c.shape.channels, c.shape);
    TransformWorkspace workspace;
    std::vector<float> out(static_cast<std::size_t>(transform.output_floats()));
    for (int i = 0; i < samples; ++i) {
      std::vector<std::uint8_t> scratch;
      const auto image = images.image(i, scratch);
      const auto choices = transform.choices(c.shape, 9, 1, i);
      transform.apply(image, 9, 1, i, out.data(), workspace);
      const std::string stem = c.name + "_" + std::to_string(i);
      std::ofstream(dir / (stem + ".input"), std::ios::binary)
          .write(reinterpret_cast<const char*>(image.pixels), static_cast<std::streamsize>(c.shape.bytes()));
      std::ofstream(dir / (stem + ".output"), std::ios::binary)
          .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
      const auto& o = c.options;
      manifest << "{\"stem\": \"" << stem << "\", \"shape\": [" << c.shape.channels << ", " << c.shape.height << ", "
               << c.shape.width << "], \"resize\": " << size_json(o.resize) << ", \"crop\": " << size_json(o.crop)
               << ", \"padding\": " << o.crop_padding
               << ", \"padding_mode\": \"" << (o.reflect_padding ? "reflect" : "constant") << "\", \"top\": " << choices.top << ", \"left\": " << choices.left
               << ", \"flip\": " << (choices.flip ? "true" : "false")
               << ", \"random_crop\": " << (o.crop && o.crop_placement == CropPlacement::random ? "true" : "false")
               << ", \"mean\": " << floats_json(o.mean) << ", \"std\": " << floats_json(o.std) << "}\n";
    }
  }
  return manifest ? 0 : 1;
}
