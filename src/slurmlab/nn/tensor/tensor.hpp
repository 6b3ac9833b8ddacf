#pragma once
// Tensor: a shape, float32 storage and the device that storage lives on.
//
// Storage comes from a per-device CachingAllocator that keeps freed blocks and hands them
// out again for the next request of the same size class, so a training step that allocates
// the same activations every iteration stops calling malloc (or cudaMalloc) after its first
// step. Tensors share storage on copy (like torch.Tensor); clone() makes a deep copy.
//
// CPU storage is implemented here (tensor.cpp); Device::cuda's allocator, fill and copies come
// through device_memory.hpp from the CUDA backend (cuda/context.cpp), or from a stub that
// throws in a build without CUDA.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace slurmlab::nn {

enum class Device { cpu, cuda };
std::string to_string(Device device);

// Element type; float32 today, room for bf16/fp16 storage later.
enum class DType { float32 };

using Shape = std::vector<std::int64_t>;
std::int64_t element_count(const Shape& shape);
std::string to_string(const Shape& shape);

// A block of device memory owned by the allocator that made it; returns itself to that
// allocator's cache when the last tensor using it goes away.
class Storage;

// Thrown when a device has no memory left for a tensor, after its allocator gave its cached
// blocks back and tried once more; the message names the device, the size asked and what
// tensors already hold. A std::bad_alloc, so code that handles running out of memory in
// general handles this too.
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// "268.4 MB": sizes in the messages about memory.
std::string format_bytes(std::size_t bytes);

// Reuses freed blocks by size class (sizes rounded up to 256 bytes, then to powers of two
// above 1 MiB). Thread-safe. Statistics let tests and benchmarks see the reuse.
class CachingAllocator {
 public:
  struct Statistics {
    std::size_t fresh_allocations = 0;  // blocks obtained from the system
    std::size_t reused_allocations = 0; // blocks served from the cache
    std::size_t bytes_cached = 0;       // bytes held in the cache now (free, kept for reuse)
    std::size_t bytes_in_use = 0;       // bytes handed out and not yet returned
  };
  virtual ~CachingAllocator() = default;

  // A block of at least `bytes`: from the cache when one of its size class is free, else
  // from the system (obtain). Throws what obtain throws (std::bad_alloc, CUDA errors).
  std::shared_ptr<Storage> allocate(std::size_t bytes);
  Statistics statistics() const;
  // Returns every cached block to the system.
  void release_cached();
  // Takes a block back into the cache (Storage's destructor calls this).
  void give_back(void* block, std::size_t capacity);
  virtual Device device() const = 0;

  // Size classes: multiples of 256 bytes up to 1 MiB, powers of two above, so a block freed
  // by one step fits the same request in the next step and slightly different sizes share.
  static std::size_t size_class(std::size_t bytes);

  // The process-wide allocator for `device` (throws std::runtime_error for a device this
  // build has no allocator for).
  static CachingAllocator& for_device(Device device);

 protected:
  // What differs per device: where blocks come from and go back to.
  virtual void* obtain(std::size_t capacity) = 0;
  virtual void return_to_system(void* block) = 0;
  virtual void before_release() {}                          // e.g. wait for queued kernels
  virtual void on_bytes_in_use(std::size_t /*bytes*/) {}    // called under the lock

 private:
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_blocks_;
  Statistics stats_;
};

class Storage {
 public:
  Storage(void* data, std::size_t bytes, std::size_t capacity, Device device, CachingAllocator* owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  std::size_t capacity() const { return capacity_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t bytes_;
  std::size_t capacity_;
  Device device_;
  CachingAllocator* owner_;
};

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised storage for `shape` on `device`.
  explicit Tensor(Shape shape, Device device = Device::cpu);
  static Tensor zeros(Shape shape, Device device = Device::cpu);
  static Tensor filled(Shape shape, float value, Device device = Device::cpu);
  static Tensor from(Shape shape, std::span<const float> values);
  static Tensor from(Shape shape, std::initializer_list<float> values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const { return element_count(shape_); }
  Device device() const { return device_; }
  DType dtype() const { return DType::float32; }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(float); }

  // Raw pointers; host access (data/span/at) requires a CPU tensor.
  float* data();
  const float* data() const;
  // The storage pointer on the tensor's own device, for backends (CUDA kernels, NCCL).
  float* device_data();
  const float* device_data() const;
  std::span<float> span();
  std::span<const float> span() const;
  float& at(std::initializer_list<std::int64_t> index);
  float at(std::initializer_list<std::int64_t> index) const;

  // Same storage, new shape (element counts must match; -1 infers one axis).
  Tensor reshape(Shape shape) const;
  Tensor clone() const;
  // A copy on `device` (the same tensor when already there).
  Tensor to(Device device) const;
  void fill(float value);
  void zero() { fill(0.0f); }
  void copy_from(const Tensor& other);  // same element count
  std::vector<float> to_vector() const;
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  void require_host(const char* what) const;
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Device device_ = Device::cpu;
};

}  // namespace slurmlab::nn
