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

}  // namespace slurmlab::nn::cuda
