// Image folders (torchvision's ImageFolder layout): DIR/<class>/**/<image>, decoded on demand.
#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <system_error>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/image_codecs.hpp"
#include "slurmlab/data/images.hpp"

namespace slurmlab::data {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

bool is_image_name(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

bool is_hidden(const fs::path& path) {
  return path.filename().string().starts_with('.');
}

class ImageFolder final : public ImageDataset {
 public:
  ImageFolder(const fs::path& root, const ImageFolderOptions& options) : root_(root) {
    if (options.channels != 0 && options.channels != 1 && options.channels != 3)
      throw UsageError("image folder channels must be 0 (automatic), 1 or 3, not " + std::to_string(options.channels) +
                       "; choose one of those.");
    std::error_code error;
    if (!fs::is_directory(root, error))
      throw UsageError("image folder " + quoted(root) +
                       " does not exist or is not a folder; check the path (tools/fetch-data imagenette fetches one).");
    try {
      list(root);
    } catch (const fs::filesystem_error& failure) {
      throw UsageError("image folder " + quoted(root) + " cannot be listed (" + failure.code().message() + " at " +
                       quoted(failure.path1()) + "); check its permissions.");
    }
    channels_ = options.channels;
    if (channels_ == 0) {
      channels_ = 1;
      for (const auto& file : files_)
        if (image_is_colour(read_whole_file(file), file)) {
          channels_ = 3;
          break;
        }
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  std::int64_t label(std::int64_t index) const override { return labels_[checked(index)]; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  ImageView image(std::int64_t index, std::vector<std::uint8_t>& scratch) const override {
    const auto& path = files_[checked(index)];
    const auto bytes = read_whole_file(path);
    const auto shape = decode_image(bytes, path, channels_, scratch);
    return {scratch.data(), shape};
  }
  std::optional<ImageShape> fixed_shape() const override { return std::nullopt; }
  int channels() const override { return channels_; }
  std::string describe() const override {
    std::string text = "image folder, " + std::to_string(files_.size()) + " images of varying size, " +
                       std::to_string(channels_) + (channels_ == 1 ? " channel, " : " channels, ") +
                       std::to_string(class_names_.size()) + " classes, " + root_.string();
    if (skipped_ > 0) text += " (" + std::to_string(skipped_) + " files that are not .png/.jpg/.jpeg skipped)";
    return text;
  }

 private:
  // Finds the class folders and their images (files_, labels_, class_names_, skipped_).
  void list(const fs::path& root) {
    std::vector<fs::path> class_folders;
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && !is_hidden(entry.path())) class_folders.push_back(entry.path());
    if (class_folders.empty())
      throw UsageError("image folder " + quoted(root) + " has no class sub-folders; put each class's images in " +
                       quoted(root / "<class name>") + " (the ImageFolder layout).");
    // Byte-wise order of the names, as Python's sorted() (and so torchvision) orders them.
    std::sort(class_folders.begin(), class_folders.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    for (const auto& folder : class_folders) {
      std::vector<fs::path> images;
      for (auto it = fs::recursive_directory_iterator(folder, fs::directory_options::follow_directory_symlink);
           it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (!it->is_regular_file()) continue;
        if (is_image_name(it->path()))
          images.push_back(it->path());
        else
          ++skipped_;
      }
      if (images.empty())
        throw UsageError("class folder " + quoted(folder) +
                         " holds no .png, .jpg or .jpeg images; add its images or remove the folder.");
      std::sort(images.begin(), images.end());
      const auto label = static_cast<std::int32_t>(class_names_.size());
      class_names_.push_back(folder.filename().string());
      for (auto& image : images) {
        files_.push_back(std::move(image));
        labels_.push_back(label);
      }
    }
  }
  std::size_t checked(std::int64_t index) const {
    if (index < 0 || index >= size())
      throw std::out_of_range("image index " + std::to_string(index) + " outside 0.." + std::to_string(size() - 1));
    return static_cast<std::size_t>(index);
  }

  fs::path root_;
  std::vector<std::string> class_names_;
  std::vector<fs::path> files_;
  std::vector<std::int32_t> labels_;
  int channels_ = 3;
  std::int64_t skipped_ = 0;
};

}  // namespace

std::unique_ptr<ImageDataset> open_image_folder(const fs::path& dir, const ImageFolderOptions& options) {
  return std::make_unique<ImageFolder>(dir, options);
}

}  // namespace slurmlab::data
