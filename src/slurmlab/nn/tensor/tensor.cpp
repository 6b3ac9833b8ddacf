#include "slurmlab/nn/tensor/tensor.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>

#include <sys/mman.h>

#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::nn {

std::string to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::int64_t element_count(const Shape& shape) {
  std::int64_t count = 1;
  for (auto extent : shape) {
    if (extent < 0) throw std::invalid_argument("tensor shape " + to_string(shape) + " has a negative extent");
    count *= extent;
  }
  return count;
}

std::string to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

class HostCachingAllocator final : public CachingAllocator {
 public:
  ~HostCachingAllocator() override { release_cached(); }
  Device device() const override { return Device::cpu; }

 protected:
  void* obtain(std::size_t capacity) override {
    // 64-byte alignment: AVX-512 loads and whole cache lines for OpenBLAS. Blocks of 2 MiB
    // and more are aligned to 2 MiB and marked for transparent huge pages (the kernel's
    // default policy is "madvise" on Debian): the first touch of AlexNet's 57M weights, their
    // gradients and Adam's two moments (0.9 GB) then faults 512x fewer pages, which was a
    // third of the time before the first training step, and the steps miss the TLB less.
    const bool huge = capacity >= kHugePage;
    auto system_block = [&] {
      return huge ? std::aligned_alloc(kHugePage, (capacity + kHugePage - 1) / kHugePage * kHugePage)
                  : std::aligned_alloc(64, capacity);
    };
    void* block = system_block();
    if (block == nullptr) {
      // Blocks of other sizes may be waiting in the cache: give them back and try once more.
      release_cached();
      block = system_block();
    }
    if (block == nullptr) {
      throw OutOfMemory("out of host memory: a tensor of " + format_bytes(capacity) + " could not be allocated, with " +
                        format_bytes(statistics().bytes_in_use - capacity) + " already held by tensors");
    }
#ifdef MADV_HUGEPAGE
    if (huge) ::madvise(block, capacity, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    return block;
  }
  void return_to_system(void* block) override { std::free(block); }
};

HostCachingAllocator& host_allocator() {
  // Never destroyed: tensors in static objects may outlive a function-local static.
  static auto* allocator = new HostCachingAllocator();
  return *allocator;
}

}  // namespace

std::string format_bytes(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

std::size_t CachingAllocator::size_class(std::size_t bytes) {
  constexpr std::size_t kSmall = 256;
  constexpr std::size_t kLarge = std::size_t{1} << 20;
  if (bytes == 0) return kSmall;
  if (bytes <= kLarge) return (bytes + kSmall - 1) / kSmall * kSmall;
  std::size_t rounded = kLarge;
  while (rounded < bytes) rounded <<= 1;
  return rounded;
}

std::shared_ptr<Storage> CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t capacity = size_class(bytes);
  void* block = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto found = free_blocks_.find(capacity);
    if (found != free_blocks_.end()) {
      block = found->second;
      free_blocks_.erase(found);
      stats_.bytes_cached -= capacity;
      ++stats_.reused_allocations;
    } else {
      ++stats_.fresh_allocations;
    }
    stats_.bytes_in_use += capacity;
    on_bytes_in_use(stats_.bytes_in_use);
  }
  if (block == nullptr) {
    try {
      block = obtain(capacity);  // outside the lock: it may call release_cached()
    } catch (...) {
      std::lock_guard lock(mutex_);
      stats_.bytes_in_use -= capacity;
      throw;
    }
  }
  return std::make_shared<Storage>(block, bytes, capacity, device(), this);
}

void CachingAllocator::give_back(void* block, std::size_t capacity) {
  std::lock_guard lock(mutex_);
  free_blocks_.emplace(capacity, block);
  stats_.bytes_cached += capacity;
  stats_.bytes_in_use -= capacity;
}

CachingAllocator::Statistics CachingAllocator::statistics() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::release_cached() {
  before_release();
  std::lock_guard lock(mutex_);
  for (auto& [capacity, block] : free_blocks_) return_to_system(block);
  free_blocks_.clear();
  stats_.bytes_cached = 0;
}

CachingAllocator& CachingAllocator::for_device(Device device) {
  if (device == Device::cpu) return host_allocator();
  return cuda::allocator();  // throws in a build without CUDA
}

Storage::Storage(void* data, std::size_t bytes, std::size_t capacity, Device device, CachingAllocator* owner)
    : data_(data), bytes_(bytes), capacity_(capacity), device_(device), owner_(owner) {}

Storage::~Storage() {
  owner_->give_back(data_, capacity_);
}

Tensor::Tensor(Shape shape, Device device) : shape_(std::move(shape)), device_(device) {
  const auto count = element_count(shape_);
  storage_ = CachingAllocator::for_device(device).allocate(static_cast<std::size_t>(count) * sizeof(float));
}

Tensor Tensor::zeros(Shape shape, Device device) { return filled(std::move(shape), 0.0f, device); }

Tensor Tensor::filled(Shape shape, float value, Device device) {
  Tensor tensor(std::move(shape), device);
  tensor.fill(value);
  return tensor;
}

Tensor Tensor::from(Shape shape, std::span<const float> values) {
  Tensor tensor(std::move(shape));
  if (static_cast<std::int64_t>(values.size()) != tensor.numel()) {
    throw std::invalid_argument("Tensor::from: " + std::to_string(values.size()) + " values for shape " +
                                to_string(tensor.shape()));
  }
  std::copy(values.begin(), values.end(), tensor.data());
  return tensor;
}

Tensor Tensor::from(Shape shape, std::initializer_list<float> values) {
  return from(std::move(shape), std::span<const float>(values.begin(), values.size()));
}

std::int64_t Tensor::size(std::int64_t axis) const {
  const auto rank = dim();
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) {
    throw std::out_of_range("axis " + std::to_string(axis) + " out of range for shape " + to_string(shape_));
  }
  return shape_[static_cast<std::size_t>(axis)];
}

void Tensor::require_host(const char* what) const {
  if (!storage_) throw std::logic_error(std::string(what) + " on an undefined tensor");
  if (device_ != Device::cpu) throw std::logic_error(std::string(what) + " needs a CPU tensor, this one is on " + to_string(device_));
}

float* Tensor::data() {
  require_host("Tensor::data");
  return static_cast<float*>(storage_->data());
}
const float* Tensor::data() const {
  require_host("Tensor::data");
  return static_cast<const float*>(storage_->data());
}
float* Tensor::device_data() {
  if (!storage_) throw std::logic_error("Tensor::device_data on an undefined tensor");
  return static_cast<float*>(storage_->data());
}
const float* Tensor::device_data() const {
  if (!storage_) throw std::logic_error("Tensor::device_data on an undefined tensor");
  return static_cast<const float*>(storage_->data());
}
std::span<float> Tensor::span() { return {data(), static_cast<std::size_t>(numel())}; }
std::span<const float> Tensor::span() const { return {data(), static_cast<std::size_t>(numel())}; }

namespace {
std::int64_t flat_index(const Shape& shape, std::initializer_list<std::int64_t> index) {
  if (index.size() != shape.size()) throw std::out_of_range("index rank does not match shape " + to_string(shape));
  std::int64_t flat = 0;
  std::size_t axis = 0;
  for (auto i : index) {
    if (i < 0 || i >= shape[axis]) throw std::out_of_range("index out of range for shape " + to_string(shape));
    flat = flat * shape[axis] + i;
    ++axis;
  }
  return flat;
}
}  // namespace

float& Tensor::at(std::initializer_list<std::int64_t> index) { return data()[flat_index(shape_, index)]; }
float Tensor::at(std::initializer_list<std::int64_t> index) const { return data()[flat_index(shape_, index)]; }

Tensor Tensor::reshape(Shape shape) const {
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) throw std::invalid_argument("reshape: more than one -1 in " + to_string(shape));
      inferred = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0 && known > 0) shape[static_cast<std::size_t>(inferred)] = numel() / known;
  if (element_count(shape) != numel()) {
    throw std::invalid_argument("reshape: cannot view " + to_string(shape_) + " as " + to_string(shape));
  }
  Tensor view = *this;
  view.shape_ = std::move(shape);
  return view;
}

Tensor Tensor::clone() const {
  Tensor copy(shape_, device_);
  copy.copy_from(*this);
  return copy;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor copy(shape_, device);
  cuda::copy(copy.device_data(), device, device_data(), device_, bytes());
  return copy;
}

void Tensor::fill(float value) {
  if (device_ == Device::cuda) return cuda::fill(*this, value);
  std::fill_n(data(), numel(), value);
}

void Tensor::copy_from(const Tensor& other) {
  if (other.numel() != numel()) {
    throw std::invalid_argument("copy_from: shapes " + to_string(other.shape()) + " and " + to_string(shape_) +
                                " hold different element counts");
  }
  if (device_ == Device::cuda || other.device_ == Device::cuda) {
    return cuda::copy(device_data(), device_, other.device_data(), other.device_, bytes());
  }
  std::memcpy(data(), other.data(), bytes());
}

std::vector<float> Tensor::to_vector() const {
  if (device_ != Device::cpu) return to(Device::cpu).to_vector();
  auto values = span();
  return {values.begin(), values.end()};
}

}  // namespace slurmlab::nn
