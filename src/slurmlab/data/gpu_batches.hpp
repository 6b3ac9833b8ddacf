#pragma once
// DeviceImageSet: a whole data set of one image shape held on the GPU as uint8 (CIFAR-10's
// training set is 150 MiB) and transformed there, batch by batch, by a CUDA kernel into a
// float NCHW batch: no host decode, no host-to-device copy of float batches per step.
//
// Contract
//   Result: exactly what the CPU pipeline makes (ImageTransform::apply is the reference): the
//     random choices are ImageTransform::choices(), computed on the host and uploaded with the
//     indices; the kernel uses the same float taps and operation order without contraction
//     (__fmul_rn/__fadd_rn), so the outputs equal the CPU's (the gpu test allows 1e-6).
//   Memory: the set is uploaded once, at construction (dataset.size() x shape bytes, plus the
//     labels); device_set_fits() says whether that leaves room for training (at most half of
//     the free device memory). Batch buffers are the caller's (device memory), or the set's
//     own scratch for transform_batch_to_host().
//   Streams and threads: one CUDA stream per set; transform_batch() enqueues on it and returns
//     when the batch is complete. enqueue_batch() queues on the caller's stream instead (the
//     training loop passes nn::cuda_stream()) and returns at once: the batch is ready for the
//     work queued after it there, with no synchronisation per step. Its per-batch random
//     choices go up through a ring of page-locked buffers (kRingSlots batches in flight; the
//     host waits only when it is that far ahead). Not thread-safe: one set per rank, used by
//     its training loop.
//   Errors: a set without one shape (image folders) or one that does not fit throws
//     slurmlab::UsageError naming the sizes and the fix; CUDA failures std::runtime_error
//     naming the call; built without CUDA, make_cuda_device_image_set() throws
//     std::runtime_error saying so (gpu_batches_nocuda.cpp).
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "slurmlab/data/images.hpp"
#include "slurmlab/data/transforms.hpp"

namespace slurmlab::data {

class DeviceImageSet {
 public:
  virtual ~DeviceImageSet() = default;
  virtual std::int64_t device_bytes() const = 0;  // of the uploaded set
  virtual int device() const = 0;                 // the CUDA ordinal it lives on
  virtual std::string describe() const = 0;
  virtual const ImageTransform& transform() const = 0;
  // Transforms the samples `indices` (data set indices, host memory) of `epoch` into
  // `device_images` (indices.size() x transform().output_floats() floats) and their labels
  // into `device_labels` (indices.size()), both device pointers; a null `device_labels` skips
  // the labels (a caller that has them on the host).
  virtual void transform_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                               float* device_images, std::int64_t* device_labels) = 0;
  // The same, queued on `stream` (a cudaStream_t on the set's device) without waiting.
  virtual void enqueue_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                             float* device_images, std::int64_t* device_labels, void* stream) = 0;
  static constexpr int kRingSlots = 4;
  // The same, copied back to host memory (tests and tools).
  virtual void transform_batch_to_host(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                                       std::span<float> images, std::span<std::int64_t> labels) = 0;
};

// Whether a set of `set_bytes` should live on a device with `free_device_bytes` free: at most
// half of it, so that the model, activations and the cuDNN workspace still fit.
bool device_set_fits(std::int64_t set_bytes, std::int64_t free_device_bytes);

// The bytes the whole data set takes on the device (images + int64 labels); UsageError when
// its images differ in size.
std::int64_t device_set_bytes(const ImageDataset& dataset);

// Uploads `dataset` to GPU `device` (an ordinal of the visible devices, as cluster's binding
// chose) for `transform`. Throws UsageError when it does not fit (see device_set_fits).
std::unique_ptr<DeviceImageSet> make_cuda_device_image_set(const ImageDataset& dataset, const ImageTransform& transform,
                                                           int device);
bool cuda_device_image_set_built();

// Page-locked host memory (cudaHostAlloc: PyTorch's pin_memory) for batches that go to a GPU:
// copies from it run at the bus's full speed and can be queued without waiting. Throws
// std::runtime_error naming CUDA's failure (no GPU or driver) or, built without CUDA, saying so.
struct PinnedFree {
  void operator()(float* pointer) const noexcept;
};
using PinnedFloats = std::unique_ptr<float[], PinnedFree>;
PinnedFloats allocate_pinned_floats(std::size_t count);

}  // namespace slurmlab::data
