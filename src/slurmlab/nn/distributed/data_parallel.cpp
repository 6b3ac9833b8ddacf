#include "slurmlab/nn/distributed/data_parallel.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::nn {

MpiGradientReducer::MpiGradientReducer(MPI_Comm communicator, std::size_t bucket_bytes)
    : communicator_(communicator), bucket_floats_(std::max<std::size_t>(bucket_bytes / sizeof(float), 1)) {
  MPI_Comm_size(communicator_, &size_);
  MPI_Comm_rank(communicator_, &rank_);
}

void MpiGradientReducer::allreduce_sum(float* data, std::size_t count) {
  // MPI counts are int: split anything larger.
  constexpr std::size_t kMaxCount = INT_MAX / 2;
  for (std::size_t done = 0; done < count; done += kMaxCount) {
    const auto n = static_cast<int>(std::min(kMaxCount, count - done));
    if (MPI_Allreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, communicator_) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Allreduce of gradients failed");
    }
    ++allreduce_calls_;
  }
}

void MpiGradientReducer::average_gradients(const std::vector<NamedParameter>& parameters) {
  if (size_ == 1) return;
  const float scale = 1.0f / static_cast<float>(size_);
  std::size_t i = 0;
  while (i < parameters.size()) {
    Tensor& first = parameters[i].parameter->grad;
    if (static_cast<std::size_t>(first.numel()) >= bucket_floats_) {
      // Larger than a bucket: reduce in place, no copy.
      allreduce_sum(first.data(), static_cast<std::size_t>(first.numel()));
      for (float& g : first.span()) g *= scale;
      ++i;
      continue;
    }
    // Pack consecutive tensors while they fit.
    std::size_t end = i, floats = 0;
    while (end < parameters.size() &&
           floats + static_cast<std::size_t>(parameters[end].parameter->grad.numel()) <= bucket_floats_) {
      floats += static_cast<std::size_t>(parameters[end].parameter->grad.numel());
      ++end;
    }
    bucket_.resize(floats);
    std::size_t offset = 0;
    for (std::size_t k = i; k < end; ++k) {
      const Tensor& g = parameters[k].parameter->grad;
      std::memcpy(bucket_.data() + offset, g.data(), g.bytes());
      offset += static_cast<std::size_t>(g.numel());
    }
    allreduce_sum(bucket_.data(), floats);
    offset = 0;
    for (std::size_t k = i; k < end; ++k) {
      Tensor& g = parameters[k].parameter->grad;
      float* out = g.data();
      for (std::int64_t j = 0; j < g.numel(); ++j) out[j] = bucket_[offset + static_cast<std::size_t>(j)] * scale;
      offset += static_cast<std::size_t>(g.numel());
    }
    i = end;
  }
}

void MpiGradientReducer::broadcast(Tensor& t) {
  constexpr std::int64_t kMaxCount = INT_MAX / 2;
  for (std::int64_t done = 0; done < t.numel(); done += kMaxCount) {
    const auto n = static_cast<int>(std::min(kMaxCount, t.numel() - done));
    if (MPI_Bcast(t.data() + done, n, MPI_FLOAT, 0, communicator_) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Bcast of the model state failed");
    }
  }
}

void MpiGradientReducer::broadcast_state(Layer& model) {
  for (auto& p : parameters_of(model)) broadcast(p.parameter->value);
  broadcast_buffers(model);
}

void MpiGradientReducer::broadcast_buffers(Layer& model) {
  for (auto& b : buffers_of(model)) broadcast(*b.buffer);
}

void sum_metrics_over_ranks(MPI_Comm communicator, std::span<double> values) {
  if (values.empty()) return;
  if (MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, communicator) !=
      MPI_SUCCESS) {
    throw std::runtime_error("MPI_Allreduce of metrics failed");
  }
}

void MpiGradientReducer::sum_metrics(std::span<double> values) { sum_metrics_over_ranks(communicator_, values); }

}  // namespace slurmlab::nn
