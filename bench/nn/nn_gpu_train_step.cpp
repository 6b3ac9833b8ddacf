// Training-step throughput of slurmlab::nn on a GPU: forward, loss, backward and an Adam
// step of the tutorial CNN (3x32x32), AlexNet (3x64x64) or airbench94's network (3x32x32,
// every learning-rate scale 1), batch 256 by default; median step
// time (each step ends with the loss read back, which synchronises), images/s and the peak
// device memory of the caching allocator plus workspace. torch_gpu_train_step.py measures the
// same steps in PyTorch (eager and torch.compile); run_gpu.sh runs both and prints the table.
//
// usage: nn_gpu_train_step cnn|alexnet|airbench94 fp32|tf32|bf16 [batch] [repeats] [device] [layers]
//   fp32: TF32 off; tf32: TF32 tensor cores for cuBLAS and cuDNN; bf16: bf16 products
//   (Linear and Conv2d) with float32 master weights, TF32 for the rest. Prints one JSON line;
//   with `layers`, first one line per layer: its forward and backward alone, synchronised
//   before and after (layer_profile.hpp), the per-layer split a profiler would give.
// The network's input is data: no input gradient for the first layer, as in the trainer and
// in PyTorch (before 2026-12-04 this bench computed it; the first H200 figures include it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "slurmlab/nn/cuda/device.hpp"
#include "slurmlab/nn/layers/layer.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"
#include "slurmlab/nn/optim/optim.hpp"
#include "layer_profile.hpp"

using namespace slurmlab::nn;
using slurmlab::Precision;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: nn_gpu_train_step cnn|alexnet|airbench94 fp32|tf32|bf16 [batch] [repeats] [device] [layers]\n");
    return 2;
  }
  const std::string model = argv[1], mode = argv[2];
  const std::int64_t batch = argc > 3 ? std::stoll(argv[3]) : 256;
  const int repeats = argc > 4 ? std::stoi(argv[4]) : 50;
  const int device = argc > 5 ? std::stoi(argv[5]) : 0;
  const bool layers = argc > 6 && std::string(argv[6]) == "layers";
  if ((model != "cnn" && model != "alexnet" && model != "airbench94") ||
      (mode != "fp32" && mode != "tf32" && mode != "bf16") || (argc > 6 && !layers)) {
    std::fprintf(stderr, "nn_gpu_train_step: model must be cnn|alexnet|airbench94, mode fp32|tf32|bf16, and the sixth "
                         "argument 'layers' or nothing\n");
    return 2;
  }
  if (batch < 1 || repeats < 1) {
    std::fprintf(stderr, "nn_gpu_train_step: batch and repeats must be at least 1\n");
    return 2;
  }
  std::string reason;
  if (!cuda_usable(&reason)) {
    std::fprintf(stderr, "nn_gpu_train_step: no GPU: %s\n", reason.c_str());
    return 1;
  }
  configure_cuda({.device = device,
                  .tf32 = mode == "fp32" ? Tf32::off : Tf32::on,
                  .precision = mode == "bf16" ? Precision::bf16 : Precision::float32});
  Generator g(1);
  const std::int64_t side = model == "alexnet" ? 64 : 32;
  auto net = model == "cnn"       ? make_tutorial_cnn(3, 10, 0.5f, g)
             : model == "alexnet" ? make_alexnet(10, 0.5f, g)
                                  : make_airbench94(3, 10, g, 1.0f);
  net->set_input_grad_needed(false);
  to_device(*net, Device::cuda);
  Tensor host({batch, 3, side, side});
  for (auto& v : host.span()) v = g.normal();
  Tensor x = host.to(Device::cuda);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < batch; ++i) labels.push_back(static_cast<std::int64_t>(g.below(10)));
  if (layers) bench::profile_layers(*net, x, Tensor(), labels, repeats, [] { synchronize(Device::cuda); });
  Adam adam(trainable_parameters_of(*net), {.learning_rate = 1e-3});
  std::vector<double> times;
  double last_loss = 0.0;
  for (int r = 0; r < repeats + 5; ++r) {  // 5 warm-up steps: plans, algorithm choice, allocator cache
    if (r == 5) reset_cuda_peak_bytes();
    const auto start = std::chrono::steady_clock::now();
    adam.zero_grad();
    auto f = net->forward(x, Mode::train);
    auto loss = softmax_cross_entropy(f.output, labels);  // reads the loss back: synchronises
    net->backward(*f.context, loss.grad);
    adam.step();
    synchronize(Device::cuda);
    const auto stop = std::chrono::steady_clock::now();
    last_loss = loss.loss;
    if (r >= 5) times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("{\"framework\": \"slurmlab\", \"variant\": \"%s\", \"model\": \"%s\", \"batch\": %lld, "
              "\"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"images_per_s\": %.1f, "
              "\"peak_bytes\": %zu, \"loss\": %.5f, \"bf16_conv_fallbacks\": %zu, \"device\": \"%s\"}\n",
              mode.c_str(), model.c_str(), static_cast<long long>(batch), median, times.front(), times.back(),
              1000.0 * static_cast<double>(batch) / median, cuda_peak_bytes(), last_loss,
              cuda_bf16_convolution_fallbacks(), describe_cuda().c_str());
  return 0;
}
