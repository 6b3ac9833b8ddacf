// bench/logdet_bench: the CPU determinant path of logdet-histogram (OpenBLAS SYRK +
// LAPACKE POTRF on the sampler's L) against numpy on the same matrices, same machine,
// same run (bench/numpy_logdet_peer.py), and against PyTorch: its whole per-matrix
// pipeline and its determinant on our L (bench/torch_logdet_peer.py). Medians of repeats;
// prints a Markdown table.
//
//   build/default/bin/logdet_bench [--dims 500,1000,2000,5000] [--threads 1,2] [--python /usr/bin/python3]
//   build/default/bin/logdet_bench --device cuda [--dims 500,1000,2000,5000,8000] [--peak-gflops 67000]
// The CUDA mode times the CUDA engine (FP64 and FP32; CUDA events, after one warm-up
// sample) and PyTorch on the same GPU (bench/torch_logdet_peer.py ... cuda), and gives the
// fraction of --peak-gflops (the GPU's FP64 peak; H200: 67000) reached by SYRK + POTRF.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "slurmlab/cluster/gpu_probe.hpp"
#include "slurmlab/linalg/lkj.hpp"
#include "slurmlab/linalg/logdet_engine.hpp"

using namespace slurmlab::linalg;
using slurmlab::Precision;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(std::stoi(item));
  return values;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

int repeats_for(int dim) { return dim <= 1000 ? 7 : dim <= 2000 ? 5 : 3; }

// Runs a peer script and reads `count` numbers from its one line (NaN where it failed).
std::vector<double> run_peer(const std::string& command, int count) {
  std::vector<double> values(static_cast<std::size_t>(count), NAN);
  FILE* pipe = ::popen(command.c_str(), "r");
  int read = 0;
  if (pipe != nullptr) {
    for (auto& v : values) read += std::fscanf(pipe, "%lf", &v) == 1;
    ::pclose(pipe);
  }
  if (read != count) std::cerr << "logdet_bench: the peer failed: " << command << "\n";
  return values;
}

int cuda_benchmark(const std::vector<int>& dims, const std::string& python, const std::string& torch_peer,
                   double peak_gflops) {
  if (!cuda_logdet_engine_built()) {
    std::cerr << "logdet_bench: this build has no CUDA; configure with nvcc available.\n";
    return 2;
  }
  const auto runtime = slurmlab::cluster::probe_gpu_runtime();
  if (runtime.device_count == 0) {
    std::cerr << "logdet_bench: --device cuda, but no GPU answers (" << runtime.note << "); run it on a GPU node.\n";
    return 2;
  }
  std::cout << "| d | precision | ours: sample L (s) | ours: SYRK+POTRF (s) | ours GFLOP/s | fraction of FP64 peak | "
               "torch L@L.T+logdet (s) | ours det vs torch det | torch full per matrix (s) | ours full vs torch full |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n";
  for (int d : dims) {
    const auto n = static_cast<std::size_t>(d) * d;
    std::vector<double> factor(n);
    sample_lkj_cholesky(1, 0, d, 1.0, factor.data());
    const std::string path = "/tmp/logdet_bench_L_" + std::to_string(d) + ".f64";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(factor.data()),
                                                static_cast<std::streamsize>(n * sizeof(double)));
    const auto torch = run_peer(python + " " + torch_peer + " " + path + " " + std::to_string(d) + " " +
                                    std::to_string(repeats_for(d) + 2) + " 1 cuda",
                                3);
    for (auto precision : {Precision::float64, Precision::float32}) {
      LogdetConfig config;
      config.dim = d;
      config.seed = 1;
      config.precision = precision;
      auto engine = make_cuda_logdet_engine(config, 0);
      engine->compute(0);  // warm-up: cuBLAS/cuSOLVER kernels load on first use
      std::vector<double> sample_times, determinant_times;
      for (int r = 0; r < repeats_for(d) + 2; ++r) {
        const auto result = engine->compute(r);
        sample_times.push_back(result.sample_seconds);
        determinant_times.push_back(result.determinant_seconds);
      }
      const double sample_s = median(sample_times), det_s = median(determinant_times);
      const double gflops = determinant_flops(d) / det_s * 1e-9;
      std::printf("| %d | %s | %.3g | %.4g | %.0f | %s | %.4g | %.2fx | %.4g | %.2fx |\n", d, short_name(precision).c_str(),
                  sample_s, det_s, gflops,
                  peak_gflops > 0 && precision == Precision::float64
                      ? (std::to_string(static_cast<int>(100 * gflops / peak_gflops + 0.5)) + "%").c_str()
                      : "-",
                  torch[1], torch[1] / det_s, torch[0], torch[0] / (sample_s + det_s));
      std::fflush(stdout);
    }
    std::remove(path.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> dims{500, 1000, 2000, 5000}, threads{1, 2};
  std::string python = "/usr/bin/python3", device = "cpu";
  double peak_gflops = 0;
  const std::string peer = std::string(SLURMLAB_SOURCE_DIR) + "/bench/numpy_logdet_peer.py";
  const std::string torch_peer = std::string(SLURMLAB_SOURCE_DIR) + "/bench/torch_logdet_peer.py";
  const char* usage_text =
      "usage: logdet_bench [--dims 500,1000,2000,5000] [--threads 1,2] [--python /usr/bin/python3]\n"
      "                    [--device cpu|cuda] [--peak-gflops G]   (a Markdown table on stdout)\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << usage_text;
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "logdet_bench: " << flag << " needs a value.\n" << usage_text;
      return 2;
    }
    if (flag == "--dims") dims = parse_list(argv[i + 1]);
    else if (flag == "--threads") threads = parse_list(argv[i + 1]);
    else if (flag == "--python") python = argv[i + 1];
    else if (flag == "--device") device = argv[i + 1];
    else if (flag == "--peak-gflops") peak_gflops = std::stod(argv[i + 1]);
    else {
      std::cerr << "logdet_bench: unknown option " << flag
                << "; use --dims, --threads, --python, --device cpu|cuda or --peak-gflops.\n";
      return 2;
    }
  }
  if (device == "cuda") {
    try {
      return cuda_benchmark(dims, python, torch_peer, peak_gflops);
    } catch (const std::exception& error) {
      std::cerr << "logdet_bench: " << error.what() << "\n";
      return 1;
    }
  }
  if (device != "cpu") {
    std::cerr << "logdet_bench: --device " << device << ": give cpu or cuda.\n";
    return 2;
  }

  std::cout << "| d | threads | ours: sample L (s) | ours: SYRK+POTRF (s) | ours GFLOP/s | numpy L@L.T+cholesky (s) | "
               "numpy L@L.T+slogdet (s) | torch L@L.T+logdet (s) | ours det vs fastest peer det | torch full per matrix (s) "
               "| ours full vs torch full | max log det diff |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (int d : dims) {
    const auto n = static_cast<std::size_t>(d) * d;
    std::vector<double> factor(n), gram(n);
    // Sampling is single-threaded: its median over the same repeats as the determinant.
    std::vector<double> sample_times;
    double log_det_factor = 0;
    for (int r = 0; r < repeats_for(d); ++r) {
      const auto sample_start = Clock::now();
      log_det_factor = sample_lkj_cholesky(1, 0, d, 1.0, factor.data());
      sample_times.push_back(std::chrono::duration<double>(Clock::now() - sample_start).count());
    }
    const double sample_seconds = median(sample_times);
    auto start = Clock::now();
    const std::string path = "/tmp/logdet_bench_L_" + std::to_string(d) + ".f64";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(factor.data()),
                                                static_cast<std::streamsize>(n * sizeof(double)));
    for (int t : threads) {
      set_blas_threads(t);
      std::vector<double> times;
      double ours = 0;
      for (int r = 0; r < repeats_for(d); ++r) {
        start = Clock::now();
        gram_lower(factor.data(), gram.data(), d);
        ours = cholesky_log_det(gram.data(), d).value();
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
      const double ours_median = median(times);
      const std::string command = "OPENBLAS_NUM_THREADS=" + std::to_string(t) + " " + python + " " + peer + " " + path +
                                  " " + std::to_string(d) + " " + std::to_string(repeats_for(d));
      FILE* pipe = ::popen(command.c_str(), "r");
      double chol_s = NAN, slog_s = NAN, chol_ld = NAN, slog_ld = NAN;
      if (pipe == nullptr || std::fscanf(pipe, "%lf %lf %lf %lf", &chol_s, &slog_s, &chol_ld, &slog_ld) != 4)
        std::cerr << "logdet_bench: the numpy peer failed: " << command << "\n";
      if (pipe != nullptr) ::pclose(pipe);
      const std::string torch_command = "OMP_NUM_THREADS=" + std::to_string(t) + " OPENBLAS_NUM_THREADS=" +
                                        std::to_string(t) + " " + python + " " + torch_peer + " " + path + " " +
                                        std::to_string(d) + " " + std::to_string(repeats_for(d)) + " " + std::to_string(t);
      pipe = ::popen(torch_command.c_str(), "r");
      double torch_full = NAN, torch_det = NAN, torch_ld = NAN;
      if (pipe == nullptr || std::fscanf(pipe, "%lf %lf %lf", &torch_full, &torch_det, &torch_ld) != 3)
        std::cerr << "logdet_bench: the PyTorch peer failed: " << torch_command << "\n";
      if (pipe != nullptr) ::pclose(pipe);
      const double diff = std::max({std::abs(ours - log_det_factor), std::abs(chol_ld - ours), std::abs(slog_ld - ours),
                                    std::abs(torch_ld - ours)});
      const double fastest_peer = std::min({chol_s, slog_s, torch_det});
      std::printf("| %d | %d | %.3g | %.4g | %.1f | %.4g | %.4g | %.4g | %.2fx | %.4g | %.2fx | %.1e |\n", d, t,
                  sample_seconds, ours_median, determinant_flops(d) / ours_median * 1e-9, chol_s, slog_s, torch_det,
                  fastest_peer / ours_median, torch_full, torch_full / (sample_seconds + ours_median), diff);
      std::fflush(stdout);
    }
    std::remove(path.c_str());
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("\npeak RSS of the bench process: %.1f MiB (two d x d FP64 buffers at the largest d: %.1f MiB)\n",
              static_cast<double>(usage.ru_maxrss) / 1024.0,
              2.0 * dims.back() * dims.back() * 8 / (1024.0 * 1024.0));
  return 0;
}
