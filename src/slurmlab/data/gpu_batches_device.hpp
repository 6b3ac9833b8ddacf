#pragma once
// The CUDA side of the device-resident data set (gpu_batches.cu), behind plain functions so
// that the class using them (gpu_batches_cuda.cpp) is compiled by the host compiler in C++20
// and the .cu, which nvcc compiles as C++17 here (cmake/SlurmlabCuda.cmake), needs none of the
// pipeline's C++20 headers. Streams are passed as void* (a cudaStream_t). Every function
// throws std::runtime_error naming the call and CUDA's message when CUDA reports a failure.
#include <cstddef>
#include <cstdint>

namespace slurmlab::data::device_batches {

// One sample of a batch: its data set index and the host's random choices for it.
struct SampleJob {
  std::int64_t index;
  std::int32_t top, left, flip, unused;
};

// Input, resized and output sizes, the crop padding (0 without a crop), and whether it reflects
// (1) or is zeros (0).
struct KernelShape {
  int channels, in_h, in_w, resized_h, resized_w, out_h, out_w, pad, reflect;
};

void set_device(int device);
std::size_t free_bytes();
void* allocate(std::size_t bytes, const char* what);
void release(void* pointer) noexcept;
void* allocate_pinned(std::size_t bytes, const char* what);  // page-locked host memory
void release_pinned(void* pointer) noexcept;
void* create_stream();
void destroy_stream(void* stream) noexcept;
void copy_to_device(void* device, const void* host, std::size_t bytes, void* stream, const char* what);
void copy_to_host(void* host, const void* device, std::size_t bytes, void* stream, const char* what);
void synchronize(void* stream, const char* what);
// Events (cudaEvent_t without timing): recorded on a stream, waited for by the host; an event
// never recorded counts as done.
void* create_event();
void destroy_event(void* event) noexcept;
void record_event(void* event, void* stream, const char* what);
void wait_event(void* event, const char* what);
void wait_event_quietly(void* event) noexcept;  // errors ignored (destructors)
// After a failure between queuing work on `stream` and recording `event`: records it there
// or, failing that, waits for the stream; errors ignored and cleared.
void settle_after_failure(void* event, void* stream) noexcept;

// out[s, c, y, x] for every sample s of `jobs` (device), as ImageTransform::apply computes it;
// out_labels[s] = labels[jobs[s].index] unless out_labels is null. `scale` and `bias`: per
// channel, device memory.
void launch_transform(const std::uint8_t* images, const std::int64_t* labels, const SampleJob* jobs, int samples,
                      const KernelShape& shape, const float* scale, const float* bias, float* out,
                      std::int64_t* out_labels, void* stream);

}  // namespace slurmlab::data::device_batches
