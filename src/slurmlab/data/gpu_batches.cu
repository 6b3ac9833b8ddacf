// The CUDA backend of the device-resident data set: the uint8 set uploaded once, one thread
// per output float doing what ImageTransform::apply does on the CPU (bilinear taps, crop
// window with zero padding, flip, ÷255 and normalize), with the same float operations in the
// same order and no contraction, so the result equals the CPU reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/gpu_batches.hpp"

namespace slurmlab::data {

bool cuda_device_image_set_built() {
  return true;
}

namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// One sample of a batch: where its image is and the host's random choices for it.
struct SampleJob {
  long long index;
  int top, left, flip;
};

struct KernelShape {
  int channels, in_h, in_w, resized_h, resized_w, out_h, out_w, pad;
};

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

__global__ void transform_kernel(const unsigned char* images, const std::int64_t* labels, const SampleJob* jobs,
                                 int samples, KernelShape s, const float* scale, const float* bias, float* out,
                                 std::int64_t* out_labels) {
  const long long per_sample = static_cast<long long>(s.channels) * s.out_h * s.out_w;
  const long long total = per_sample * samples;
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int sample = static_cast<int>(k / per_sample);
    long long rest = k % per_sample;
    const int c = static_cast<int>(rest / (s.out_h * s.out_w));
    rest %= s.out_h * s.out_w;
    const int y = static_cast<int>(rest / s.out_w), x = static_cast<int>(rest % s.out_w);
    const SampleJob job = jobs[sample];
    if (c == 0 && y == 0 && x == 0) out_labels[sample] = labels[job.index];
    const int ry = y + job.top - s.pad;
    const int rx = (job.flip ? s.out_w - 1 - x : x) + job.left - s.pad;
    float value = bias[c];
    if (ry >= 0 && ry < s.resized_h) {
      int y0, y1, x0 = 0, x1 = 0;
      float ly1, lx1 = 0.0f;
      taps(s.in_h, s.resized_h, ry, y0, y1, ly1);
      const bool column = rx >= 0 && rx < s.resized_w;
      if (column) taps(s.in_w, s.resized_w, rx, x0, x1, lx1);
      const unsigned char* plane = images + (job.index * s.channels + c) * static_cast<long long>(s.in_h) * s.in_w;
      const float lx0 = __fsub_rn(1.0f, lx1), ly0 = __fsub_rn(1.0f, ly1);
      auto row = [&](int sy) {
        const unsigned char* p = plane + static_cast<long long>(sy) * s.in_w;
        return column ? __fadd_rn(__fmul_rn(static_cast<float>(p[x0]), lx0), __fmul_rn(static_cast<float>(p[x1]), lx1))
                      : 0.0f;
      };
      const float a = row(y0), b = row(y1);
      value = __fadd_rn(__fmul_rn(__fadd_rn(__fmul_rn(a, ly0), __fmul_rn(b, ly1)), scale[c]), bias[c]);
    }
    out[k] = value;
  }
}

class CudaDeviceImageSet final : public DeviceImageSet {
 public:
  CudaDeviceImageSet(const ImageDataset& dataset, const ImageTransform& transform, int device)
      : transform_(transform), device_(device) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    const auto shape = *dataset.fixed_shape();  // device_set_bytes() refused sets without one
    bytes_ = device_set_bytes(dataset);
    std::size_t free = 0, total = 0;
    check_cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    if (!device_set_fits(bytes_, static_cast<std::int64_t>(free))) {
      throw UsageError(dataset.describe() + " needs " + std::to_string(bytes_ >> 20) + " MiB on the GPU but only " +
                       std::to_string(free >> 20) +
                       " MiB are free (at most half is used for data); load the data on "
                       "the CPU (without --data-on-gpu).");
    }
    const auto resized = transform.resized(shape);
    const auto out = transform.output_shape();
    shape_ = {
        shape.channels, shape.height, shape.width, resized.height,
        resized.width,  out.height,   out.width,   transform.options().crop ? transform.options().crop_padding : 0};
    input_shape_ = shape;
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
    const auto n = dataset.size();
    check_cuda(cudaMalloc(&images_, static_cast<std::size_t>(n * shape.bytes())), "cudaMalloc (data set)");
    check_cuda(cudaMalloc(&labels_, static_cast<std::size_t>(n) * sizeof(std::int64_t)), "cudaMalloc (labels)");
    // Upload in chunks of ~64 MiB through one host staging buffer.
    const std::int64_t per_chunk = std::max<std::int64_t>(1, (64 << 20) / shape.bytes());
    std::vector<unsigned char> staging(static_cast<std::size_t>(std::min(n, per_chunk) * shape.bytes()));
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> scratch;
    for (std::int64_t first = 0; first < n; first += per_chunk) {
      const auto count = std::min(per_chunk, n - first);
      for (std::int64_t i = 0; i < count; ++i) {
        const auto image = dataset.image(first + i, scratch);
        std::copy_n(image.pixels, shape.bytes(), staging.data() + i * shape.bytes());
        labels[static_cast<std::size_t>(first + i)] = dataset.label(first + i);
      }
      check_cuda(cudaMemcpy(images_ + first * shape.bytes(), staging.data(),
                            static_cast<std::size_t>(count * shape.bytes()), cudaMemcpyHostToDevice),
                 "cudaMemcpy (data set)");
    }
    check_cuda(cudaMemcpy(labels_, labels.data(), labels.size() * sizeof(std::int64_t), cudaMemcpyHostToDevice),
               "cudaMemcpy (labels)");
    const auto channel_scale = transform.channel_scale(), channel_bias = transform.channel_bias();
    check_cuda(cudaMalloc(&scale_, channel_scale.size_bytes() + channel_bias.size_bytes()), "cudaMalloc (normalize)");
    check_cuda(cudaMemcpy(scale_, channel_scale.data(), channel_scale.size_bytes(), cudaMemcpyHostToDevice),
               "cudaMemcpy (normalize)");
    check_cuda(cudaMemcpy(scale_ + channel_scale.size(), channel_bias.data(), channel_bias.size_bytes(),
                          cudaMemcpyHostToDevice),
               "cudaMemcpy (normalize)");
    description_ =
        dataset.describe() + " on GPU " + std::to_string(device) + " (" + std::to_string(bytes_ >> 20) + " MiB)";
  }

  ~CudaDeviceImageSet() override {
    cudaFree(images_);
    cudaFree(labels_);
    cudaFree(scale_);
    cudaFree(jobs_);
    cudaFree(staging_images_);
    cudaFree(staging_labels_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::int64_t device_bytes() const override { return bytes_; }
  std::string describe() const override { return description_; }
  const ImageTransform& transform() const override { return transform_; }

  void transform_batch(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                       float* device_images, std::int64_t* device_labels) override {
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    const auto samples = static_cast<int>(indices.size());
    if (samples == 0) return;
    jobs_host_.resize(indices.size());
    for (std::size_t i = 0; i < indices.size(); ++i) {
      const auto choices = transform_.choices(input_shape_, seed, epoch, indices[i]);
      jobs_host_[i] = {static_cast<long long>(indices[i]), choices.top, choices.left, choices.flip ? 1 : 0};
    }
    if (jobs_capacity_ < indices.size()) {
      cudaFree(jobs_);
      jobs_ = nullptr;
      check_cuda(cudaMalloc(&jobs_, indices.size() * sizeof(SampleJob)), "cudaMalloc (batch jobs)");
      jobs_capacity_ = indices.size();
    }
    check_cuda(
        cudaMemcpyAsync(jobs_, jobs_host_.data(), indices.size() * sizeof(SampleJob), cudaMemcpyHostToDevice, stream_),
        "cudaMemcpyAsync (batch jobs)");
    const long long total = transform_.output_floats() * samples;
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<long long>((total + threads - 1) / threads, 65535));
    const auto channels = static_cast<std::size_t>(shape_.channels);
    transform_kernel<<<blocks, threads, 0, stream_>>>(images_, labels_, jobs_, samples, shape_, scale_,
                                                      scale_ + channels, device_images, device_labels);
    check_cuda(cudaGetLastError(), "transform kernel launch");
    check_cuda(cudaStreamSynchronize(stream_), "transform kernel");
  }

  void transform_batch_to_host(std::span<const std::int64_t> indices, std::int64_t epoch, std::uint64_t seed,
                               std::span<float> images, std::span<std::int64_t> labels) override {
    const auto floats = static_cast<std::size_t>(transform_.output_floats()) * indices.size();
    if (images.size() != floats || labels.size() != indices.size()) {
      throw std::invalid_argument("transform_batch_to_host: output sizes do not match the batch");
    }
    if (staging_capacity_ < indices.size()) {
      cudaFree(staging_images_);
      cudaFree(staging_labels_);
      staging_images_ = nullptr;
      staging_labels_ = nullptr;
      check_cuda(cudaMalloc(&staging_images_, floats * sizeof(float)), "cudaMalloc (batch)");
      check_cuda(cudaMalloc(&staging_labels_, indices.size() * sizeof(std::int64_t)), "cudaMalloc (batch labels)");
      staging_capacity_ = indices.size();
    }
    transform_batch(indices, epoch, seed, staging_images_, staging_labels_);
    check_cuda(cudaMemcpy(images.data(), staging_images_, floats * sizeof(float), cudaMemcpyDeviceToHost),
               "cudaMemcpy (batch to host)");
    check_cuda(cudaMemcpy(labels.data(), staging_labels_, labels.size_bytes(), cudaMemcpyDeviceToHost),
               "cudaMemcpy (labels to host)");
  }

 private:
  ImageTransform transform_;
  int device_;
  ImageShape input_shape_;
  KernelShape shape_{};
  std::int64_t bytes_ = 0;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  unsigned char* images_ = nullptr;
  std::int64_t* labels_ = nullptr;
  float* scale_ = nullptr;  // channels scales, then channels biases
  SampleJob* jobs_ = nullptr;
  std::size_t jobs_capacity_ = 0;
  std::vector<SampleJob> jobs_host_;
  float* staging_images_ = nullptr;  // device buffers behind transform_batch_to_host
  std::int64_t* staging_labels_ = nullptr;
  std::size_t staging_capacity_ = 0;
};

}  // namespace

std::unique_ptr<DeviceImageSet> make_cuda_device_image_set(const ImageDataset& dataset, const ImageTransform& transform,
                                                           int device) {
  device_set_bytes(dataset);  // refuses sets of differing image sizes with a UsageError
  return std::make_unique<CudaDeviceImageSet>(dataset, transform, device);
}

}  // namespace slurmlab::data
