// Training-step time of slurmlab::nn on the CPU: forward, loss, backward and an Adam step,
// repeated, median reported. torch_train_step.py measures the same steps in PyTorch; run.sh
// runs both with the same thread count and prints the ratios.
//
// usage: nn_train_step mlp|mlp-fused|cnn|alexnet|airbench94 [repeats] [layers] [bf16]   (prints one JSON line)
// mlp-fused: the same MLP step through nn::FusedMlp (one pass per step), peer: torch "mlp".
// layers: also one JSON line per layer (Sequentials flattened) with the median of its forward
// and of its backward over the repeats, run layer by layer: the per-layer split of a step.
// bf16: Conv2d and Linear products in bf16 (nn::set_cpu_precision; refused where the CPU has no
// native bf16), peer: torch_train_step.py under torch.autocast("cpu", dtype=torch.bfloat16).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "slurmlab/nn/layers/cpu_precision.hpp"
#include "slurmlab/nn/models/fused_mlp.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "layer_profile.hpp"

using namespace slurmlab::nn;


int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: nn_train_step mlp|mlp-fused|cnn|alexnet|airbench94 [repeats] [layers] [bf16]\n");
    return 2;
  }
  const std::string model = argv[1];
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 20;
  bool per_layer = false, bf16 = false;
  for (int i = 3; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "layers") {
      per_layer = true;
    } else if (word == "bf16") {
      bf16 = true;
    } else {
      std::fprintf(stderr, "nn_train_step: '%s' is neither layers nor bf16\n", argv[i]);
      return 2;
    }
  }
  if (bf16) {
    try {
      set_cpu_precision(slurmlab::Precision::bf16);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nn_train_step: %s\n", e.what());
      return 2;
    }
  }
  Generator g(1);
  std::unique_ptr<Sequential> net;
  Tensor x, target;
  std::vector<std::int64_t> labels;
  std::int64_t batch = 0;
  if (model == "mlp" || model == "mlp-fused") {  // 1-64-1, 1400 rows, full batch (the Pantheon+ fit)
    batch = 1400;
    net = make_mlp(1, 64, 1, Activation::tanh, g);
    x = Tensor({batch, 1});
    target = Tensor({batch, 1});
    for (std::int64_t i = 0; i < batch; ++i) {
      x.data()[i] = g.uniform(0.0f, 2.0f);
      target.data()[i] = 5.0f * x.data()[i] + g.normal();
    }
  } else if (model == "cnn" || model == "alexnet" || model == "airbench94") {
    batch = model == "airbench94" ? 256 : 64;
    const std::int64_t side = model == "alexnet" ? 64 : 32;
    // airbench94 with every learning-rate scale 1: Adam, the bench's optimizer, takes no scales.
    net = model == "cnn"       ? make_tutorial_cnn(3, 10, 0.5f, g)
          : model == "alexnet" ? make_alexnet(10, 0.5f, g)
                               : make_airbench94(3, 10, g, 1.0f);
    x = Tensor({batch, 3, side, side});
    for (auto& v : x.span()) v = g.normal();
    for (std::int64_t i = 0; i < batch; ++i) labels.push_back(static_cast<std::int64_t>(g.below(10)));
  } else {
    std::fprintf(stderr, "nn_train_step: unknown model '%s'\n", model.c_str());
    return 2;
  }
  net->set_input_grad_needed(false);  // the input is data (as in the trainer, and in PyTorch)
  std::vector<double> times;
  double last_loss = 0.0;
  if (model == "mlp-fused") {
    FusedMlp fused(1, 64, 1, Activation::tanh, {.learning_rate = 1e-3});
    fused.load_from(*net);  // the same initial weights as the generic MLP
    fused.set_threads(openblas_get_num_threads());  // run.sh's THREADS, as the generic layers get
    for (int r = 0; r < repeats + 3; ++r) {
      const auto start = std::chrono::steady_clock::now();
      last_loss = fused.train_step(x.span(), target.span());
      const auto stop = std::chrono::steady_clock::now();
      if (r >= 3) times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
  }
  Adam adam(trainable_parameters_of(*net), {.learning_rate = 1e-3});
  adam.zero_grad();
  for (int r = 0; model != "mlp-fused" && r < repeats + 3; ++r) {  // 3 warm-up steps (allocator cache, OpenBLAS threads)
    const auto start = std::chrono::steady_clock::now();
    auto f = net->forward(x, Mode::train);
    auto loss = target.defined() ? mse_loss(f.output, target) : softmax_cross_entropy(f.output, labels);
    net->backward(*f.context, loss.grad);
    adam.step_and_zero_grad();  // the step and the next step's zero_grad, as the trainer does
    const auto stop = std::chrono::steady_clock::now();
    last_loss = loss.loss;
    if (r >= 3) times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  if (per_layer && model != "mlp-fused") {
    bench::profile_layers(*net, x, target, labels, repeats);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("{\"framework\": \"slurmlab\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %lld, "
              "\"threads\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"samples_per_s\": %.1f, "
              "\"loss\": %.5f}\n",
              model.c_str(), bf16 ? "bf16" : "fp32", static_cast<long long>(batch), openblas_get_num_threads(), median,
              times.front(), times.back(), 1000.0 * static_cast<double>(batch) / median, last_loss);
  return 0;
}
