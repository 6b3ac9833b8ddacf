// Writes one PyTorch comparison case: the initial weights and the inputs, then what slurmlab::nn
// computes from them (logits, loss, every parameter gradient, BatchNorm buffers after the
// step, and the losses of 10 Adam steps). compare_with_torch.py recomputes all of it in
// PyTorch from the same files and checks the differences.
//
// usage: reference_case mlp|cnn|alexnet OUTPUT_DIR
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "slurmlab/nn/serialize/safetensors.hpp"

using namespace slurmlab::nn;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: reference_case mlp|cnn|alexnet OUTPUT_DIR\n";
    return 2;
  }
  const std::string model = argv[1];
  const std::filesystem::path dir = argv[2];
  Generator g(2024);
  std::unique_ptr<Sequential> net;
  Tensor x;
  Tensor target;                      // regression target (mlp)
  std::vector<std::int64_t> labels;   // classes (cnn, alexnet)
  // Dropout p = 0: the two frameworks draw different masks, everything else is compared.
  if (model == "mlp") {
    net = make_mlp(1, 64, 1, Activation::tanh, g);
    x = Tensor({32, 1});
    target = Tensor({32, 1});
    for (int i = 0; i < 32; ++i) {
      x.data()[i] = g.uniform(-2.0f, 2.0f);
      target.data()[i] = std::sin(2.0f * x.data()[i]) + 0.1f * g.normal();
    }
  } else if (model == "cnn") {
    net = make_tutorial_cnn(3, 10, 0.0f, g);
    x = Tensor({8, 3, 32, 32});
    for (auto& v : x.span()) v = g.normal();
    for (int i = 0; i < 8; ++i) labels.push_back(static_cast<std::int64_t>(g.below(10)));
  } else if (model == "alexnet") {
    net = make_alexnet(10, 0.0f, g);
    x = Tensor({2, 3, 64, 64});
    for (auto& v : x.span()) v = g.normal();
    for (int i = 0; i < 2; ++i) labels.push_back(static_cast<std::int64_t>(g.below(10)));
  } else {
    std::cerr << "reference_case: unknown model '" << model << "'; use mlp, cnn or alexnet\n";
    return 2;
  }
  std::filesystem::create_directories(dir);
  save_safetensors(dir / "weights.safetensors", state_of(*net), {{"model", model}});
  std::vector<NamedTensor> inputs{{"x", x}};
  if (target.defined()) inputs.push_back({"target", target});
  if (!labels.empty()) {
    Tensor l({static_cast<std::int64_t>(labels.size())});
    for (std::size_t i = 0; i < labels.size(); ++i) l.data()[i] = static_cast<float>(labels[i]);
    inputs.push_back({"labels", l});
  }
  save_safetensors(dir / "inputs.safetensors", inputs);

  auto params = parameters_of(*net);
  Adam adam(params, {.learning_rate = model == "alexnet" ? 1e-4 : 1e-3});
  std::vector<NamedTensor> results;
  Tensor losses({10});
  for (int step = 0; step < 10; ++step) {
    adam.zero_grad();
    auto f = net->forward(x, Mode::train);
    auto loss = target.defined() ? mse_loss(f.output, target) : softmax_cross_entropy(f.output, labels);
    net->backward(*f.context, loss.grad);
    losses.data()[step] = static_cast<float>(loss.loss);
    if (step == 0) {
      results.push_back({"logits", f.output.clone()});
      results.push_back({"loss", Tensor::from({1}, {static_cast<float>(loss.loss)})});
      for (auto& p : params) results.push_back({"grad." + p.name, p.parameter->grad.clone()});
      for (auto& b : buffers_of(*net)) results.push_back({"buffer." + b.name, b.buffer->clone()});
    }
    adam.step();
  }
  results.push_back({"adam_losses", losses});
  save_safetensors(dir / "results.safetensors", results);
  std::printf("reference_case %s: loss %.6f -> %.6f after 10 Adam steps\n", model.c_str(), losses.data()[0],
              losses.data()[9]);
  return 0;
}
