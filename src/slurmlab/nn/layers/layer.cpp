#include "slurmlab/nn/layers/layer.hpp"

namespace slurmlab::nn {

std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::vector<NamedParameter> parameters_of(Layer& layer) {
  std::vector<NamedParameter> result;
  layer.visit_parameters("", [&](const std::string& name, Parameter& p) { result.push_back({name, &p}); });
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

}  // namespace slurmlab::nn
