// Epochs per second of fit-regression's default model (m_b_corr ~ zCMB, standardised, 1 -> 16
// tanh -> 1, full-batch Adam, the validation loss every epoch) on the real Pantheon+ release
// (../shared/data or data/; else the synthetic table), two ways:
//   fused:   fit::train_network, the program's loop on the library's trainer (nn::FusedMlp
//            behind train::FusedMlpModule, the program's callbacks);
//   fused, own loop: the loop fit-regression had before the trainer (commit 4ea52d8), kept
//            here to measure what the trainer costs, interleaved with `fused` repeat by repeat;
//   layers:  the generic nn layers (make_mlp + mse_loss + Adam) doing the same epoch.
// With --dump FILE it also writes the standardised split for the PyTorch peer
// (torch_fit_epochs.py), so all three train on the same numbers.
//
// --threads T (1 or 2) is the program's --threads (FusedMlp's step threads); the layers row is
// measured only at 1 thread (its OpenBLAS threads are not the point here).
//
// usage: fit_epochs [--epochs N] [--repeats R] [--hidden H] [--threads T] [--dump FILE]   (prints JSON lines)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>
#include <string>
#include <vector>

#include "fit_training.hpp"
#include "slurmlab/nn/losses/losses.hpp"
#include "slurmlab/nn/models/models.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// fit::train_network's epoch loop as it was before the trainer (4ea52d8), without hooks:
// epochs per second and the last validation loss (standardised units).
std::pair<double, double> own_loop(const fit::Dataset& d, const fit::RunPlan& plan, std::int64_t hidden,
                                   std::uint64_t seed) {
  const std::size_t features = 1;
  const auto s = fit::fit_standardizer(d, plan.log_z);
  const auto x_train = s.inputs(d, d.train, features);
  const auto t_train = s.targets(d, d.train);
  const auto x_val = s.inputs(d, d.validation, features);
  const auto t_val = s.targets(d, d.validation);
  const std::vector<float> w_train, w_val;
  const double units = s.target_sd * s.target_sd;
  nn::Generator init(seed * 1000003ULL + static_cast<std::uint64_t>(hidden) * 131ULL + features);
  auto layers = nn::make_mlp(static_cast<std::int64_t>(features), hidden, 1, plan.activation, init);
  nn::AdamOptions adam;
  adam.learning_rate = plan.lr;
  nn::FusedMlp net(static_cast<std::int64_t>(features), hidden, 1, plan.activation, adam);
  net.set_threads(plan.threads);
  net.load_from(*layers);
  nn::FusedMlp best = net;
  std::vector<double> train_losses, val_losses;
  double best_val = std::numeric_limits<double>::infinity();
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t epoch = 0; epoch < plan.epochs; ++epoch) {
    const double train_loss = net.train_step(x_train, t_train, w_train);  // full batch (the default)
    const double val_loss = net.loss(x_val, t_val, w_val);
    train_losses.push_back(train_loss * units);
    val_losses.push_back(val_loss * units);
    if (val_losses.back() < best_val) {
      best_val = val_losses.back();
      best = net;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {static_cast<double>(plan.epochs) / seconds, val_losses.back() / units};
}
}  // namespace

int main(int argc, char** argv) {
  std::int64_t epochs = 2000, repeats = 5, hidden = 16, threads = 1;
  std::string dump;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--epochs")
      epochs = std::stoll(argv[i + 1]);
    else if (flag == "--repeats")
      repeats = std::stoll(argv[i + 1]);
    else if (flag == "--hidden")
      hidden = std::stoll(argv[i + 1]);
    else if (flag == "--threads")
      threads = std::stoll(argv[i + 1]);
    else if (flag == "--dump")
      dump = argv[i + 1];
    else {
      std::fprintf(stderr, "fit_epochs: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  fs::path table_path = fs::path(SLURMLAB_SOURCE_DIR) / ".." / "shared" / "data" / "Pantheon+SH0ES.dat";
  if (!fs::exists(table_path)) table_path = fs::path(SLURMLAB_SOURCE_DIR) / "data" / "Pantheon+SH0ES.dat";
  bool synthetic = false;
  if (!fs::exists(table_path)) {
    table_path = fs::temp_directory_path() / "fit_epochs_synthetic.dat";
    std::ofstream(table_path) << cosmology::synthetic_pantheon_table({});
    synthetic = true;
  }
  fit::ProgramOptions options;
  options.epochs = epochs;
  options.hidden = std::to_string(hidden);
  options.threads = threads;
  const auto plan = fit::check_options(options);
  const auto table = data::WhitespaceTable::read(table_path);
  const auto d = fit::load_dataset(table, plan, 0);
  const auto s = fit::fit_standardizer(d, plan.log_z);
  const auto x_train = s.inputs(d, d.train, 1), x_val = s.inputs(d, d.validation, 1);
  const auto t_train = s.targets(d, d.train), t_val = s.targets(d, d.validation);
  if (!dump.empty()) {
    std::ofstream out(dump);
    out.precision(9);
    out << x_train.size() << " " << x_val.size() << "\n";
    for (std::size_t i = 0; i < x_train.size(); ++i) out << x_train[i] << " " << t_train[i] << "\n";
    for (std::size_t i = 0; i < x_val.size(); ++i) out << x_val[i] << " " << t_val[i] << "\n";
  }

  std::vector<double> fused, own, layers;
  double fused_loss = 0, own_loss = 0, layers_loss = 0;
  for (std::int64_t r = 0; r < repeats; ++r) {
    // Interleaved, in alternating order, so that load on the machine hits both alike.
    for (int which = 0; which < 2; ++which) {
      if ((which + r) % 2 == 0) {
        const auto run = fit::train_network(d, plan, hidden, 1, 0);
        fused.push_back(run.epochs_per_second);
        fused_loss = run.val_loss.back() / (s.target_sd * s.target_sd);
      } else {
        const auto [rate, loss] = own_loop(d, plan, hidden, 0);
        own.push_back(rate);
        own_loss = loss;
      }
    }
  }
  // The generic layers after all fused repeats: their OpenBLAS threads keep spinning for a
  // while after each call and would slow a fused repeat that followed them.
  for (std::int64_t r = 0; plan.threads == 1 && r < repeats; ++r) {
    nn::Generator init(1);
    auto net = nn::make_mlp(1, hidden, 1, nn::Activation::tanh, init);
    nn::AdamOptions adam;
    adam.learning_rate = plan.lr;
    nn::Adam optimizer(nn::parameters_of(*net), adam);
    const auto xt = nn::Tensor::from({static_cast<std::int64_t>(t_train.size()), 1}, x_train);
    const auto tt = nn::Tensor::from({static_cast<std::int64_t>(t_train.size()), 1}, t_train);
    const auto xv = nn::Tensor::from({static_cast<std::int64_t>(t_val.size()), 1}, x_val);
    const auto tv = nn::Tensor::from({static_cast<std::int64_t>(t_val.size()), 1}, t_val);
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t e = 0; e < epochs; ++e) {
      optimizer.zero_grad();
      auto forward = net->forward(xt, nn::Mode::train);
      const auto loss = nn::mse_loss(forward.output, tt);
      net->backward(*forward.context, loss.grad);
      optimizer.step();
      layers_loss = nn::mse_loss(net->forward(xv, nn::Mode::eval).output, tv).loss;
    }
    layers.push_back(static_cast<double>(epochs) /
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const auto rows = static_cast<long long>(t_train.size()), val_rows = static_cast<long long>(t_val.size());
  std::printf(
      "{\"framework\": \"slurmlab fused\", \"threads\": %d, \"hidden\": %lld, \"train_rows\": %lld, "
      "\"val_rows\": %lld, \"epochs\": %lld, \"epochs_per_s\": %.1f, \"final_val_loss\": %.5f, \"synthetic\": %s}\n",
      plan.threads, static_cast<long long>(hidden), rows, val_rows, static_cast<long long>(epochs), median(fused),
      fused_loss, synthetic ? "true" : "false");
  std::printf(
      "{\"framework\": \"slurmlab fused, own loop\", \"threads\": %d, \"hidden\": %lld, \"train_rows\": %lld, "
      "\"val_rows\": %lld, \"epochs\": %lld, \"epochs_per_s\": %.1f, \"final_val_loss\": %.5f, \"synthetic\": %s}\n",
      plan.threads, static_cast<long long>(hidden), rows, val_rows, static_cast<long long>(epochs), median(own),
      own_loss, synthetic ? "true" : "false");
  if (layers.empty()) return 0;
  std::printf(
      "{\"framework\": \"slurmlab layers\", \"hidden\": %lld, \"train_rows\": %lld, \"val_rows\": %lld, "
      "\"epochs\": %lld, \"epochs_per_s\": %.1f, \"final_val_loss\": %.5f, \"synthetic\": %s}\n",
      static_cast<long long>(hidden), rows, val_rows, static_cast<long long>(epochs), median(layers), layers_loss,
      synthetic ? "true" : "false");
  return 0;
}
