#include "slurmlab/nn/layers/layer.hpp"

#include <stdexcept>

namespace slurmlab::nn {

bool InputSpec::accepts(const Shape& shape) const {
  const auto rank = static_cast<std::int64_t>(shape.size());
  if (rank < min_rank || (max_rank >= 0 && rank > max_rank)) return false;
  return axis1 < 0 || (rank >= 2 && shape[1] == axis1);
}

std::string InputSpec::describe() const {
  const auto min = std::to_string(min_rank), max = std::to_string(max_rank);
  std::string text;
  if (max_rank < 0) {
    text = min_rank == 0 ? "any input" : "an input with at least " + min + " axes";
  } else if (min_rank == max_rank) {
    text = "a " + min + "-d input";
  } else {
    text = "a " + min + "-d " + (max_rank == min_rank + 1 ? "or " : "to ") + max + "-d input";
  }
  if (axis1 >= 0) text += " with " + std::to_string(axis1) + " " + axis1_name + " on axis 1";
  return text;
}

void Layer::check_input(const Tensor& input) const {
  if (!input.defined()) throw std::invalid_argument(describe() + ": input tensor is undefined");
  const InputSpec expected = expected_input();
  if (!expected.accepts(input.shape())) {
    throw std::invalid_argument(describe() + ": expected " + expected.describe() + ", got shape " +
                                to_string(input.shape()));
  }
}

Forward Layer::forward(const Tensor& input, Mode mode) {
  check_input(input);
  return forward_impl(input, mode);
}

Tensor Layer::backward(const Context& context, const Tensor& grad_output) {
  if (!grad_output.defined()) throw std::invalid_argument(describe() + ": gradient tensor is undefined");
  Tensor grad_input = backward_impl(context, grad_output);
  if (!grad_input.defined() && input_grad_needed_) {
    throw std::logic_error(describe() + ": backward returned no input gradient although one is needed");
  }
  return grad_input;
}

std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::vector<NamedParameter> parameters_of(Layer& layer) {
  std::vector<NamedParameter> result;
  layer.visit_parameters("", [&](const std::string& name, Parameter& p) { result.push_back({name, &p}); });
  return result;
}

std::vector<NamedParameter> trainable_parameters_of(Layer& layer) {
  std::vector<NamedParameter> result;
  layer.visit_parameters("", [&](const std::string& name, Parameter& p) {
    if (!p.frozen) result.push_back({name, &p});
  });
  return result;
}

std::vector<NamedBuffer> buffers_of(Layer& layer) {
  std::vector<NamedBuffer> result;
  layer.visit_buffers("", [&](const std::string& name, Tensor& b) { result.push_back({name, &b}); });
  return result;
}

std::int64_t parameter_count(Layer& layer) {
  std::int64_t count = 0;
  for (auto& p : parameters_of(layer)) count += p.parameter->value.numel();
  return count;
}

void zero_grad(Layer& layer) {
  layer.visit_parameters("", [](const std::string&, Parameter& p) { p.grad.zero(); });
}

void to_device(Layer& layer, Device device) {
  layer.visit_parameters("", [device](const std::string&, Parameter& p) {
    p.value = p.value.to(device);
    p.grad = p.grad.to(device);
  });
  layer.visit_buffers("", [device](const std::string&, Tensor& buffer) { buffer = buffer.to(device); });
}

Device device_of(Layer& layer) {
  Device device = Device::cpu;
  bool found = false;
  layer.visit_parameters("", [&](const std::string&, Parameter& p) {
    if (!found) device = p.value.device();
    found = true;
  });
  return device;
}

}  // namespace slurmlab::nn
