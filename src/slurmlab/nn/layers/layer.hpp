#pragma once
// Layer: forward returns the output and a Context that backward consumes, so a layer keeps
// no hidden per-call state (tiny-cuda-nn style): two forwards in flight, or a forward whose
// backward never comes, cannot corrupt each other. Persistent state lives in the layer:
// parameters (with their gradients), buffers (BatchNorm running statistics) and random
// generators (Dropout), each visited by name so that optimizers, checkpoints and the
// safetensors export see the same PyTorch-style names ("features.0.weight").
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "slurmlab/nn/tensor/random.hpp"
#include "slurmlab/nn/tensor/tensor.hpp"

namespace slurmlab::nn {

enum class Mode { train, eval };

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape; backward adds into it, zero_grad clears it
  explicit Parameter(Shape shape) : value(Tensor::zeros(shape)), grad(Tensor::zeros(std::move(shape))) {}
};

// What a layer's forward saved for its backward.
class Context {
 public:
  virtual ~Context() = default;
};

struct Forward {
  Tensor output;
  std::unique_ptr<Context> context;
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual Forward forward(const Tensor& input, Mode mode) = 0;
  // Adds the parameter gradients into each Parameter::grad and returns d loss / d input.
  virtual Tensor backward(const Context& context, const Tensor& grad_output) = 0;
  virtual std::string describe() const = 0;

  using ParameterVisitor = std::function<void(const std::string& name, Parameter& parameter)>;
  using BufferVisitor = std::function<void(const std::string& name, Tensor& buffer)>;
  using GeneratorVisitor = std::function<void(const std::string& name, Generator& generator)>;
  virtual void visit_parameters(const std::string& /*prefix*/, const ParameterVisitor& /*visit*/) {}
  virtual void visit_buffers(const std::string& /*prefix*/, const BufferVisitor& /*visit*/) {}
  virtual void visit_generators(const std::string& /*prefix*/, const GeneratorVisitor& /*visit*/) {}
};

struct NamedParameter {
  std::string name;
  Parameter* parameter;
};
struct NamedBuffer {
  std::string name;
  Tensor* buffer;
};

// In visiting order (the order of PyTorch's state_dict for the same architecture).
std::vector<NamedParameter> parameters_of(Layer& layer);
std::vector<NamedBuffer> buffers_of(Layer& layer);
std::int64_t parameter_count(Layer& layer);
void zero_grad(Layer& layer);
// Prefix join: "features" + "0" -> "features.0"; "" + "weight" -> "weight".
std::string join_name(const std::string& prefix, const std::string& name);

}  // namespace slurmlab::nn
