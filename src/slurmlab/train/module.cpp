#include "slurmlab/train/module.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/tensor/device_memory.hpp"

namespace slurmlab::train {
namespace {

// Rows `indices` of a [N, ...] tensor.
nn::Tensor gather_rows(const nn::Tensor& source, const std::vector<std::int64_t>& indices) {
  nn::Shape shape = source.shape();
  const std::int64_t row = source.numel() / shape.at(0);
  shape[0] = static_cast<std::int64_t>(indices.size());
  nn::Tensor out(shape);
  float* to = out.data();
  if (source.device() != nn::Device::cpu) {  // a set on a GPU: its rows, not the whole set
    const float* from = source.device_data();
    const auto bytes = static_cast<std::size_t>(row) * sizeof(float);
    for (std::size_t i = 0; i < indices.size(); ++i) {
      nn::cuda::copy(to + static_cast<std::int64_t>(i) * row, nn::Device::cpu, from + indices[i] * row, source.device(), bytes);
    }
    return out;
  }
  const float* from = source.data();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::copy_n(from + indices[i] * row, row, to + static_cast<std::int64_t>(i) * row);
  }
  return out;
}

// The first `rows` rows of a [N, ...] tensor, on the CPU.
nn::Tensor leading_rows(const nn::Tensor& source, std::int64_t rows) {
  const nn::Tensor host = source.to(nn::Device::cpu);
  nn::Shape shape = host.shape();
  const std::int64_t row = host.numel() / shape.at(0);
  shape[0] = rows;
  return nn::Tensor::from(shape, std::span<const float>(host.data(), static_cast<std::size_t>(rows * row)));
}

}  // namespace

std::int64_t counted_rows(const data::ShardedSampler& sampler, std::int64_t batch) {
  const auto local = sampler.local_batch();
  const auto first = batch * sampler.global_batch() + sampler.rank() * local;  // position of this rank's first row
  return std::clamp<std::int64_t>(sampler.size() - first, 0, local);
}

InMemoryBatchSource::InMemoryBatchSource(nn::Tensor inputs, std::vector<std::int64_t> labels, nn::Tensor targets,
                                         data::ShardedSampler sampler)
    : inputs_(std::move(inputs)),
      labels_(std::move(labels)),
      targets_(std::move(targets)),
      sampler_(std::move(sampler)) {
  if (!inputs_.defined() || inputs_.dim() < 1)
    throw std::invalid_argument("InMemoryBatchSource: inputs must be [N, ...]");
  const auto n = inputs_.size(0);
  if (!labels_.empty() && static_cast<std::int64_t>(labels_.size()) != n) {
    throw std::invalid_argument("InMemoryBatchSource: " + std::to_string(labels_.size()) + " labels for " +
                                std::to_string(n) + " samples");
  }
  if (targets_.defined() && targets_.size(0) != n) {
    throw std::invalid_argument("InMemoryBatchSource: targets and inputs differ in their first axis");
  }
}

TrainBatch InMemoryBatchSource::next() {
  const auto indices = sampler_.local_indices(position_.epoch, position_.batch);
  TrainBatch batch;
  batch.counted = counted_rows(sampler_, position_.batch);
  position_ = sampler_.next(position_);
  batch.inputs = gather_rows(inputs_, indices);
  for (auto i : indices) {
    if (!labels_.empty()) batch.labels.push_back(labels_[static_cast<std::size_t>(i)]);
  }
  if (targets_.defined()) batch.targets = gather_rows(targets_, indices);
  return batch;
}

LoaderBatchSource::~LoaderBatchSource() {
  try {
    wait_for_copies();  // the loader frees the slots after this
  } catch (...) {
  }
}

void LoaderBatchSource::wait_for_copies() {
  if (copy_pending_) nn::cuda::wait_for_pinned_copies();
  copy_pending_ = false;
}

void LoaderBatchSource::set_position(data::BatchPosition position) {
  wait_for_copies();
  // Restarting the loader drops its prefetched batches; skip that when it is already there.
  if (loader_.position() != position) loader_.set_position(position);
}

TrainBatch LoaderBatchSource::next() {
  wait_for_copies();
  const data::Batch& b = loader_.next();
  TrainBatch batch;
  const nn::Shape shape{b.size, b.shape.channels, b.shape.height, b.shape.width};
  if (device_ == nn::Device::cpu) {
    batch.inputs = nn::Tensor::from(shape, b.images);
  } else {
    batch.inputs = nn::Tensor(shape, device_);
    if (loader_.pinned_memory()) {
      nn::cuda::copy_from_pinned_async(batch.inputs.device_data(), b.images.data(), b.images.size_bytes());
      copy_pending_ = true;
    } else {
      nn::cuda::copy(batch.inputs.device_data(), device_, b.images.data(), nn::Device::cpu, b.images.size_bytes());
    }
  }
  batch.labels.assign(b.labels.begin(), b.labels.end());
  batch.counted = counted_rows(loader_.sampler(), b.batch);
  return batch;
}

DeviceBatchSource::DeviceBatchSource(data::DeviceImageSet& set, const data::ImageDataset& dataset,
                                     data::ShardedSampler sampler, std::uint64_t seed, nn::Device device)
    : set_(set), dataset_(dataset), sampler_(std::move(sampler)), seed_(seed), device_(device) {
  if (device_ == nn::Device::cuda && set_.device() != nn::cuda_options().device) {
    throw UsageError("the GPU-resident data set is on GPU " + std::to_string(set_.device()) + " but nn computes on GPU " +
                     std::to_string(nn::cuda_options().device) + "; make the set on the device nn was configured for");
  }
}

TrainBatch DeviceBatchSource::next() {
  const auto epoch = position_.epoch;
  if (order_epoch_ != epoch) {
    order_ = sampler_.epoch_order(epoch);
    order_epoch_ = epoch;
  }
  indices_.resize(static_cast<std::size_t>(sampler_.local_batch()));
  sampler_.local_indices(order_, position_.batch, indices_);
  const auto& indices = indices_;
  TrainBatch batch;
  batch.counted = counted_rows(sampler_, position_.batch);
  position_ = sampler_.next(position_);
  const auto shape = set_.transform().output_shape();
  batch.inputs = nn::Tensor({std::ssize(indices), shape.channels, shape.height, shape.width}, device_);
  batch.device_labels = nn::DeviceLabels(std::ssize(indices), device_);
  if (device_ == nn::Device::cuda) {
    // Queued on nn's stream, before the step that reads it: no waiting here.
    set_.enqueue_batch(indices, epoch, seed_, batch.inputs.device_data(), batch.device_labels.data(),
                       nn::cuda_stream());
  } else {
    set_.transform_batch(indices, epoch, seed_, batch.inputs.device_data(), batch.device_labels.data());
  }
  batch.labels.reserve(indices.size());
  for (const auto i : indices) batch.labels.push_back(dataset_.label(i));
  return batch;
}

StepResult StepResult::resolved() const {
  StepResult out = *this;
  if (out.complete) {
    const auto complete_now = std::move(out.complete);
    out.complete = nullptr;
    complete_now(out);
  }
  return out;
}

nn::Tensor TrainableModule::predict_step(const TrainBatch& batch) {
  const auto output = network().forward(batch.inputs.to(nn::device_of(network())), nn::Mode::eval).output;
  return leading_rows(output, batch.counted_samples());
}

NetworkModule::NetworkModule(nn::Layer& network, nn::Optimizer& optimizer, LossKind loss, nn::GradientReducer* reducer,
                             double label_smoothing)
    : network_(network), optimizer_(optimizer), loss_(loss), reducer_(reducer), label_smoothing_(label_smoothing) {
  // The network's input is a batch of data: no gradient for it (saves the first layer's
  // input-gradient product).
  network_.set_input_grad_needed(false);
  device_ = nn::device_of(network_);
}

StepResult NetworkModule::step(const TrainBatch& batch, nn::Mode mode) {
  auto forward = network_.forward(batch.inputs.to(device_), mode);
  if (loss_ == LossKind::mse && !batch.targets.defined()) {
    throw std::invalid_argument("NetworkModule: an MSE loss needs batch targets");
  }
  StepResult result;
  // Training uses every row (padding included, as DistributedSampler's); evaluation only the
  // real samples.
  const bool all_rows = mode == nn::Mode::train || batch.counted_samples() == batch.samples();
  result.samples = all_rows ? batch.samples() : batch.counted_samples();
  if (result.samples == 0) return result;
  const nn::Tensor output = all_rows ? forward.output : leading_rows(forward.output, result.samples);
  const std::span<const std::int64_t> labels(batch.labels.data(),
                                             batch.labels.empty() ? 0 : static_cast<std::size_t>(result.samples));
  if (loss_ == LossKind::softmax_cross_entropy) {
    // Loss and accuracy stay on a GPU until read (no synchronisation per step); the device
    // labels serve when every row is used.
    auto loss = nn::softmax_cross_entropy_pending(output, labels, all_rows ? batch.device_labels : nn::DeviceLabels{},
                                                  mode == nn::Mode::train ? label_smoothing_ : 0.0);
    if (mode == nn::Mode::train) network_.backward(*forward.context, loss.grad);
    const auto fill = [sums = loss.sums](StepResult& r) {
      const auto values = sums->wait();
      r.loss_sum = values.at(0);
      r.sums["accuracy"] = values.at(1);
    };
    if (loss.sums->ready()) {
      fill(result);
    } else {
      result.loss_sum = std::nan("");  // until resolved()
      result.sums["accuracy"] = std::nan("");
      result.complete = fill;
    }
    return result;
  }
  const auto loss =
      nn::mse_loss(output, all_rows ? batch.targets.to(device_) : leading_rows(batch.targets, result.samples));
  result.loss_sum = loss.loss * static_cast<double>(result.samples);
  if (mode == nn::Mode::train) network_.backward(*forward.context, loss.grad);
  return result;
}

StepResult NetworkModule::training_step(const TrainBatch& batch) {
  return step(batch, nn::Mode::train);
}
StepResult NetworkModule::validation_step(const TrainBatch& batch) {
  return step(batch, nn::Mode::eval);
}

void NetworkModule::wait_for_device() {
  nn::synchronize(device_);
}

void NetworkModule::synchronize_buffers() {
  if (reducer_ && reducer_->world_size() > 1) reducer_->broadcast_buffers(network_);
}

void NetworkModule::reduce_gradients() {
  if (reducer_ && reducer_->world_size() > 1) reducer_->average_gradients(optimizer_.parameters());
}

}  // namespace slurmlab::train
