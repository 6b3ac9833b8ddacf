// The CUDA backend of the device-resident data set: one thread per output float doing what
// ImageTransform::apply does on the CPU (bilinear taps, crop window with zero padding, flip,
// ÷255 and normalize), with the same float operations in the same order and no contraction
// (__fmul_rn/__fadd_rn), so the result equals the CPU reference. The data set class itself is
// gpu_batches_cuda.cpp; this file holds the kernel and the runtime calls it needs.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "slurmlab/data/gpu_batches_device.hpp"

namespace slurmlab::data::device_batches {
namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // reported here, not left for the next launch check to blame
  throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

cudaStream_t as_stream(void* stream) {
  return static_cast<cudaStream_t>(stream);
}

// transforms.cpp's bilinear_taps, operation for operation.
__device__ void taps(int in, int out, int r, int& i0, int& i1, float& lambda1) {
  if (in == out) {
    i0 = i1 = r;
    lambda1 = 0.0f;
    return;
  }
  const float scale = __fdiv_rn(static_cast<float>(in), static_cast<float>(out));
  float real = __fsub_rn(__fmul_rn(scale, __fadd_rn(static_cast<float>(r), 0.5f)), 0.5f);
  if (real < 0.0f) real = 0.0f;
  i0 = static_cast<int>(real);
  lambda1 = fminf(fmaxf(__fsub_rn(real, static_cast<float>(i0)), 0.0f), 1.0f);
  i1 = i0 + (i0 < in - 1 ? 1 : 0);
}

__global__ void transform_kernel(const std::uint8_t* images, const std::int64_t* labels, const SampleJob* jobs,
                                 int samples, KernelShape s, const float* scale, const float* bias, float* out,
                                 std::int64_t* out_labels) {
  const long long plane = static_cast<long long>(s.out_h) * s.out_w;
  const long long per_sample = plane * s.channels;
  const long long total = per_sample * samples;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int sample = static_cast<int>(k / per_sample);
    const long long rest = k % per_sample;
    const int c = static_cast<int>(rest / plane);
    const int y = static_cast<int>((rest % plane) / s.out_w), x = static_cast<int>(rest % s.out_w);
    const SampleJob job = jobs[sample];
    if (rest == 0 && out_labels != nullptr) out_labels[sample] = labels[job.index];
    int ry = y + job.top - s.pad;
    int rx = (job.flip ? s.out_w - 1 - x : x) + job.left - s.pad;
    if (s.reflect) {  // as ImageTransform: the mirror inside, no edge repeat
      ry = ry < 0 ? -ry : (ry >= s.resized_h ? 2 * (s.resized_h - 1) - ry : ry);
      rx = rx < 0 ? -rx : (rx >= s.resized_w ? 2 * (s.resized_w - 1) - rx : rx);
    }
    float value = bias[c];
    if (ry >= 0 && ry < s.resized_h) {
      int y0, y1, x0 = 0, x1 = 0;
      float ly1, lx1 = 0.0f;
      taps(s.in_h, s.resized_h, ry, y0, y1, ly1);
      const bool column = rx >= 0 && rx < s.resized_w;
      if (column) taps(s.in_w, s.resized_w, rx, x0, x1, lx1);
      const std::uint8_t* channel = images + (job.index * s.channels + c) * static_cast<long long>(s.in_h) * s.in_w;
      const float lx0 = __fsub_rn(1.0f, lx1), ly0 = __fsub_rn(1.0f, ly1);
      float a = 0.0f, b = 0.0f;
      if (column) {
        const std::uint8_t* p0 = channel + static_cast<long long>(y0) * s.in_w;
        const std::uint8_t* p1 = channel + static_cast<long long>(y1) * s.in_w;
        a = __fadd_rn(__fmul_rn(static_cast<float>(p0[x0]), lx0), __fmul_rn(static_cast<float>(p0[x1]), lx1));
        b = __fadd_rn(__fmul_rn(static_cast<float>(p1[x0]), lx0), __fmul_rn(static_cast<float>(p1[x1]), lx1));
      }
      value = __fadd_rn(__fmul_rn(__fadd_rn(__fmul_rn(a, ly0), __fmul_rn(b, ly1)), scale[c]), bias[c]);
    }
    out[k] = value;
  }
}

}  // namespace

void set_device(int device) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
}

std::size_t free_bytes() {
  std::size_t free = 0, total = 0;
  check_cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return free;
}

void* allocate(std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  check_cuda(cudaMalloc(&pointer, std::max<std::size_t>(bytes, 1)), what);
  return pointer;
}

void release(void* pointer) noexcept {
  cudaFree(pointer);
}

void* allocate_pinned(std::size_t bytes, const char* what) {
  void* pointer = nullptr;
  check_cuda(cudaHostAlloc(&pointer, std::max<std::size_t>(bytes, 1), cudaHostAllocDefault), what);
  return pointer;
}

void release_pinned(void* pointer) noexcept {
  cudaFreeHost(pointer);
}

void* create_stream() {
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  return stream;
}

void destroy_stream(void* stream) noexcept {
  if (stream) cudaStreamDestroy(as_stream(stream));
}

void copy_to_device(void* device, const void* host, std::size_t bytes, void* stream, const char* what) {
  check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, as_stream(stream)), what);
}

void copy_to_host(void* host, const void* device, std::size_t bytes, void* stream, const char* what) {
  check_cuda(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, as_stream(stream)), what);
}

void synchronize(void* stream, const char* what) {
  check_cuda(cudaStreamSynchronize(as_stream(stream)), what);
}

void* create_event() {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  return event;
}

void destroy_event(void* event) noexcept {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void record_event(void* event, void* stream, const char* what) {
  check_cuda(cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream)), what);
}

void wait_event(void* event, const char* what) {
  check_cuda(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), what);
}

void wait_event_quietly(void* event) noexcept {
  if (event) (void)cudaEventSynchronize(static_cast<cudaEvent_t>(event));
  (void)cudaGetLastError();
}

void settle_after_failure(void* event, void* stream) noexcept {
  if (cudaEventRecord(static_cast<cudaEvent_t>(event), as_stream(stream)) != cudaSuccess) {
    (void)cudaStreamSynchronize(as_stream(stream));
  }
  (void)cudaGetLastError();
}

void launch_transform(const std::uint8_t* images, const std::int64_t* labels, const SampleJob* jobs, int samples,
                      const KernelShape& shape, const float* scale, const float* bias, float* out,
                      std::int64_t* out_labels, void* stream) {
  const long long total = static_cast<long long>(shape.channels) * shape.out_h * shape.out_w * samples;
  if (total == 0) return;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<long long>((total + threads - 1) / threads, 65535));
  transform_kernel<<<blocks, threads, 0, as_stream(stream)>>>(images, labels, jobs, samples, shape, scale, bias, out,
                                                              out_labels);
  check_cuda(cudaGetLastError(), "transform kernel launch");
}

}  // namespace slurmlab::data::device_batches
