// Images per second of data::BatchLoader with the AlexNet practical's training transforms on a
// CIFAR-10-sized set (bench/data/run.sh compares it with PyTorch's DataLoader in the same run).
//
// usage: loader_bench --write-cifar DIR                 write 50000 random 3x32x32 records as the
//                                                       CIFAR-10 binary batches (and test_batch.bin)
//        loader_bench DIR WORKERS [BATCHES] [REPEATS]   time BATCHES batches of 256 (after one
//                                                       warm-up batch), best and median of REPEATS
// Prints one JSON line per WORKERS: framework, workers, images_per_s (median of the repeats).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "slurmlab/data/batch_loader.hpp"

using namespace slurmlab::data;

namespace {

constexpr int kRecordBytes = 1 + 3072;

// The CIFAR-10 training batches read whole into memory (the bench measures the pipeline, not
// the disk; the Python peer holds the same bytes in a numpy array).
class CifarInMemory final : public ImageDataset {
 public:
  explicit CifarInMemory(const std::filesystem::path& dir) {
    for (int b = 1; b <= 5; ++b) {
      std::ifstream in(dir / ("data_batch_" + std::to_string(b) + ".bin"), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (bytes.empty() || bytes.size() % kRecordBytes) throw std::runtime_error("bad CIFAR batch in " + dir.string());
      for (std::size_t r = 0; r < bytes.size(); r += kRecordBytes) {
        labels_.push_back(static_cast<std::uint8_t>(bytes[r]));
        pixels_.insert(pixels_.end(), bytes.begin() + static_cast<std::ptrdiff_t>(r) + 1,
                       bytes.begin() + static_cast<std::ptrdiff_t>(r) + kRecordBytes);
      }
    }
    for (int c = 0; c < 10; ++c) names_.push_back(std::to_string(c));
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t label(std::int64_t i) const override { return labels_[static_cast<std::size_t>(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }
  ImageView image(std::int64_t i, std::vector<std::uint8_t>&) const override {
    return {reinterpret_cast<const std::uint8_t*>(pixels_.data()) + i * 3072, {3, 32, 32}};
  }
  std::optional<ImageShape> fixed_shape() const override { return ImageShape{3, 32, 32}; }
  int channels() const override { return 3; }
  std::string describe() const override { return "CIFAR-10-sized random bytes"; }

 private:
  std::vector<std::uint8_t> labels_;
  std::vector<char> pixels_;
  std::vector<std::string> names_;
};

void write_cifar(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937_64 engine(2024);
  std::vector<char> record(kRecordBytes);
  for (int b = 1; b <= 6; ++b) {
    std::ofstream out(dir / (b <= 5 ? "data_batch_" + std::to_string(b) + ".bin" : std::string("test_batch.bin")),
                      std::ios::binary);
    for (int r = 0; r < 10000; ++r) {
      record[0] = static_cast<char>(engine() % 10);
      for (int k = 1; k < kRecordBytes; k += 8) {
        const auto bits = engine();
        for (int j = 0; j < 8 && k + j < kRecordBytes; ++j)
          record[static_cast<std::size_t>(k + j)] = static_cast<char>(bits >> (8 * j));
      }
      out.write(record.data(), kRecordBytes);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-cifar") {
    write_cifar(argv[2]);
    return 0;
  }
  if (argc < 3) {
    std::cerr << "usage: loader_bench --write-cifar DIR | loader_bench DIR WORKERS [BATCHES] [REPEATS]\n";
    return 2;
  }
  const CifarInMemory data(argv[1]);
  const int workers = std::stoi(argv[2]);
  const int batches = argc > 3 ? std::stoi(argv[3]) : 40;
  const int repeats = argc > 4 ? std::stoi(argv[4]) : 3;
  const std::int64_t global_batch = 256;
  // The CIFAR-10 means and deviations the practical normalizes with.
  const auto options = alexnet_practical_transforms({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}, true);
  std::vector<double> rates;
  double checksum = 0;
  for (int r = 0; r < repeats; ++r) {
    BatchLoader loader(data, ShardedSampler(data.size(), global_batch, 1, 0, 7, LastBatch::drop),
                       ImageTransform(options, 3, data.fixed_shape()), {.workers = workers, .seed = 7},
                       {static_cast<std::int64_t>(r), 0});
    checksum += loader.next().images[0];  // warm-up: threads started, first ring filled
    const auto start = std::chrono::steady_clock::now();
    for (int b = 0; b < batches; ++b) {
      const Batch& batch = loader.next();
      checksum += batch.images[static_cast<std::size_t>(b)] + static_cast<double>(batch.labels[0]);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(batches * global_batch) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  std::printf(
      "{\"framework\": \"slurmlab\", \"workers\": %d, \"images_per_s\": %.1f, \"best\": %.1f, \"checksum\": %.3f}\n",
      workers, rates[rates.size() / 2], rates.back(), checksum);
  return 0;
}
