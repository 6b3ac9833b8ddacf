// The device-resident data set with CUDA (compiled only where CUDA is): uploads the set once,
// makes each batch's random choices on the host (ImageTransform::choices, as the CPU pipeline
// does) and runs the kernel of gpu_batches.cu.
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"
#include "slurmlab/data/gpu_batches_device.hpp"

namespace slurmlab::data {

bool cuda_device_image_set_built() {
  return true;
}

void PinnedFree::operator()(float* pointer) const noexcept {
  device_batches::release_pinned(pointer);
}

PinnedFloats allocate_pinned_floats(std::size_t count) {
  return PinnedFloats(static_cast<float*>(
      device_batches::allocate_pinned(count * sizeof(float), "cudaHostAlloc (pinned batch buffers)")));
}

namespace {

namespace dev = device_batches;

struct DeviceFree {
  void operator()(void* pointer) const noexcept { dev::release(pointer); }
};
template <typename T>
using DeviceBuffer = std::unique_ptr<T, DeviceFree>;

template <typename T>
DeviceBuffer<T> device_buffer(std::size_t count, const char* what) {
  return DeviceBuffer<T>(static_cast<T*>(dev::allocate(count * sizeof(T), what)));
}

struct StreamDestroy {
  void operator()(void* stream) const noexcept { dev::destroy_stream(stream); }
};
struct EventDestroy {
  void operator()(void* event) const noexcept { dev::destroy_event(event); }
};
struct PinnedRelease {
  void operator()(void* pointer) const noexcept { dev::release_pinned(pointer); }
};

// One batch's random choices on their way up: page-locked host jobs, their device copy, and
// the event recorded after the kernel that read them (both may be reused once it has passed).
struct JobSlot {
  std::unique_ptr<dev::SampleJob, PinnedRelease> host;
  DeviceBuffer<dev::SampleJob> device;
  std::size_t capacity = 0;
  std::unique_ptr<void, EventDestroy> done;
};

class CudaDeviceImageSet final : public DeviceImageSet {
 public:
  CudaDeviceImageSet(const ImageDataset& dataset, const ImageTransform& transform, int device)
      : transform_(transform), device_(device), input_shape_(*dataset.fixed_shape()) {
    dev::set_device(device);
    bytes_ = device_set_bytes(dataset);
    const auto free = static_cast<std::int64_t>(dev::free_bytes());
    if (!device_set_fits(bytes_, free)) {
      throw UsageError(dataset.describe() + " needs " + std::to_string(bytes_ >> 20) + " MiB on the GPU but only " +
                       std::to_string(free >> 20) +
                       " MiB are free (at most half is used for data); load the data on the CPU instead.");
    }
    const auto resized = transform.resized(input_shape_);
    const auto out = transform.output_shape();
    shape_ = {input_shape_.channels,
              input_shape_.height,
              input_shape_.width,
              resized.height,
              resized.width,
              out.height,
              out.width,
              transform.options().crop ? transform.options().crop_padding : 0,
              transform.options().crop && transform.options().reflect_padding ? 1 : 0};
    stream_.reset(dev::create_stream());
    const auto n = dataset.size(), image_bytes = input_shape_.bytes();
    images_ = device_buffer<std::uint8_t>(static_cast<std::size_t>(n * image_bytes), "cudaMalloc (data set)");
    labels_ = device_buffer<std::int64_t>(static_cast<std::size_t>(n), "cudaMalloc (labels)");
    // Upload in chunks of ~64 MiB through one host staging buffer.
    const std::int64_t per_chunk = std::max<std::int64_t>(1, (std::int64_t{64} << 20) / image_bytes);
    std::vector<std::uint8_t> staging(static_cast<std::size_t>(std::min(n, per_chunk) * image_bytes));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> scratch;
    for (std::int64_t first = 0; first < n; first += per_chunk) {
      const auto count = std::min(per_chunk, n - first);
      for (std::int64_t i = 0; i < count; ++i) {
        const auto image = dataset.image(first + i, scratch);
        std::copy_n(image.pixels, image_bytes, staging.data() + i * image_bytes);
        labels[static_cast<std::size_t>(first + i)] = dataset.label(first + i);
      }
      dev::copy_to_device(images_.get() + first * image_bytes, staging.data(),
                          static_cast<std::size_t>(count * image_bytes), stream_.get(), "cudaMemcpy (data set)");
      dev::synchronize(stream_.get(), "cudaMemcpy (data set)");  // the staging buffer is reused
    }
    dev::copy_to_device(labels_.get(), labels.data(), labels.size() * sizeof(std::int64_t), stream_.get(),
                        "cudaMemcpy (labels)");
    std::vector<float> normalize(transform.channel_scale().begin(), transform.channel_scale().end());
    normalize.insert(normalize.end(), transform.channel_bias().begin(), transform.channel_bias().end());
    normalize_ = device_buffer<float>(normalize.size(), "cudaMalloc (normalize)");
    dev::copy_to_device(normalize_.get(), normalize.data(), normalize.size() * sizeof(float), stream_.get(),
                        "cudaMemcpy (normalize)");
    dev::synchronize(stream_.get(), "upload of the data set");
    description_ =
        dataset.describe() + " on GPU " + std::to_string(device) + " (" + std::to_string(bytes_ >> 20) + " MiB)";
  }

  ~CudaDeviceImageSet() override {
    // Kernels queued on a caller's stream may still read the set and the ring: each slot's
    // event follows its last kernel.
    for (auto& slot : ring_)
      if (slot.done) dev::wait_event_quietly(slot.done.get());
  }
  CudaDeviceImageSet(const CudaDeviceImageSet&) = delete;
  CudaDeviceImageSet& operator=(const CudaDeviceImageSet&) = delete;

  std::int64_t device_bytes() const override { return bytes_; }
  int device() const override { return device_; }
  std::string describe() const override { return description_; }
  const ImageTransform& transform() const override { return transform_; }

  void transform_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                       float* device_images, std::int64_t* device_labels) override {
    enqueue_batch(indices, epoch, seed, device_images, device_labels, stream_.get());
    dev::synchronize(stream_.get(), "transform kernel");
  }

  void enqueue_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                     float* device_images, std::int64_t* device_labels, void* stream) override {
    if (indices.empty()) return;
    dev::set_device(device_);
    JobSlot& slot = ring_[next_slot_];
    next_slot_ = (next_slot_ + 1) % kRingSlots;
    // The kernel that last read this slot (kRingSlots batches ago) must be done with it: the
    // host waits only when it runs that far ahead of the device.
    if (!slot.done) slot.done.reset(dev::create_event());
    dev::wait_event(slot.done.get(), "batch jobs still in use");
    if (slot.capacity < indices.size()) {
      slot.host.reset();
      slot.device.reset();
      slot.capacity = 0;
      slot.host.reset(static_cast<dev::SampleJob*>(
          dev::allocate_pinned(indices.size() * sizeof(dev::SampleJob), "cudaHostAlloc (batch jobs)")));
      slot.device = device_buffer<dev::SampleJob>(indices.size(), "cudaMalloc (batch jobs)");
      slot.capacity = indices.size();
    }
    for (std::size_t i = 0; i < indices.size(); ++i) {
      const auto choices = transform_.choices(input_shape_, seed, epoch, indices[i]);
      slot.host.get()[i] = {indices[i], choices.top, choices.left, choices.flip ? 1 : 0, 0};
    }
    try {
      dev::copy_to_device(slot.device.get(), slot.host.get(), indices.size() * sizeof(dev::SampleJob), stream,
                          "cudaMemcpyAsync (batch jobs)");
      dev::launch_transform(images_.get(), labels_.get(), slot.device.get(), static_cast<int>(indices.size()),
                            shape_, normalize_.get(), normalize_.get() + shape_.channels, device_images,
                            device_labels, stream);
      dev::record_event(slot.done.get(), stream, "cudaEventRecord (batch jobs)");
    } catch (...) {
      // The copy may be queued while its event is an older one: cover it before the slot is
      // reused or freed.
      dev::settle_after_failure(slot.done.get(), stream);
      throw;
    }
  }

  void transform_batch_to_host(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                               std::span<float> images, std::span<std::int64_t> labels) override {
    const auto floats = static_cast<std::size_t>(transform_.output_floats()) * indices.size();
    if (images.size() != floats || labels.size() != indices.size()) {
      throw std::invalid_argument("transform_batch_to_host: output sizes do not match the batch");
    }
    if (staging_capacity_ < indices.size()) {
      staging_images_ = device_buffer<float>(floats, "cudaMalloc (batch)");
      staging_labels_ = device_buffer<std::int64_t>(indices.size(), "cudaMalloc (batch labels)");
      staging_capacity_ = indices.size();
    }
    transform_batch(indices, epoch, seed, staging_images_.get(), staging_labels_.get());
    dev::copy_to_host(images.data(), staging_images_.get(), images.size_bytes(), stream_.get(), "cudaMemcpy (batch)");
    dev::copy_to_host(labels.data(), staging_labels_.get(), labels.size_bytes(), stream_.get(),
                      "cudaMemcpy (batch labels)");
    dev::synchronize(stream_.get(), "copy of the batch to the host");
  }

 private:
  ImageTransform transform_;
  int device_;
  ImageShape input_shape_;
  dev::KernelShape shape_{};
  std::int64_t bytes_ = 0;
  std::string description_;
  std::unique_ptr<void, StreamDestroy> stream_;
  // Declared after the stream, so they are freed before it is destroyed.
  DeviceBuffer<std::uint8_t> images_;
  DeviceBuffer<std::int64_t> labels_;
  DeviceBuffer<float> normalize_;  // channels scales, then channels biases
  JobSlot ring_[kRingSlots];
  int next_slot_ = 0;
  DeviceBuffer<float> staging_images_;  // device buffers behind transform_batch_to_host
  DeviceBuffer<std::int64_t> staging_labels_;
  std::size_t staging_capacity_ = 0;
};

}  // namespace

std::unique_ptr<DeviceImageSet> make_cuda_device_image_set(const ImageDataset& dataset, const ImageTransform& transform,
                                                           int device) {
  device_set_bytes(dataset);  // refuses sets of differing image sizes with a UsageError
  return std::make_unique<CudaDeviceImageSet>(dataset, transform, device);
}

}  // namespace slurmlab::data
