#pragma once
// Tensor storage on Device::cuda: the one place tensor.cpp reaches a backend. Declared here,
// below every backend, so that tensor/ needs nothing above it; implemented by the CUDA backend
// (cuda/context.cpp) or, in a build without CUDA, by tensor/device_memory_nocuda.cpp, whose
// functions throw kNoCudaBackend (unreachable in practice: no tensor can be made on
// Device::cuda there, its allocator being the first thing that throws).
#include <cstddef>

#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn::cuda {

// What every CPU-only stub of the CUDA backend throws (std::runtime_error).
inline constexpr const char* kNoCudaBackend =
    "this build of slurmlab has no CUDA backend (configured without nvcc; see README)";

// The device CachingAllocator (CachingAllocator::for_device(Device::cuda)).
CachingAllocator& allocator();
// Sets every element of a CUDA tensor, queued on the context's stream.
void fill(Tensor& tensor, float value);
// Copies bytes between any two devices (host <-> device synchronises the stream).
void copy(void* destination, Device destination_device, const void* source, Device source_device, std::size_t bytes);
// Queues a copy of `bytes` from page-locked host memory (cudaHostAlloc) to the device on the
// context's stream and returns without waiting; kernels queued after it see the data. The host
// buffer must stay unchanged until wait_for_pinned_copies() returns.
void copy_from_pinned_async(void* device_destination, const void* pinned_source, std::size_t bytes);
// Returns once every copy that copy_from_pinned_async queued so far has read its host buffer
// (an event recorded after the last one; the kernels after it may still run).
void wait_for_pinned_copies();

}  // namespace slurmlab::nn::cuda
