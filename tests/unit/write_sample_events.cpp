// Writes a TensorBoard log dir with every kind of summary slurmlab emits, for
// tensorboard_reader_test.py to read back with TensorBoard's own event-processing code.
//   write_sample_events <log_dir>
// Layout: <log_dir>/events.* (global metrics, as rank 0 writes them), <log_dir>/rank-000 and
// rank-001 (per-rank runs), <log_dir>/figure.png (the PNG that went into the image summary).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "slurmlab/io/atomic_file.hpp"
#include "slurmlab/io/figure.hpp"
#include "slurmlab/io/tensorboard.hpp"

namespace io = slurmlab::io;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_sample_events LOG_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::remove_all(dir);
  {
    io::EventWriter writer(dir);
    writer.hparams(
        {{"learning_rate", 0.01}, {"optimizer", std::string("adam")}, {"augment", true}, {"batch_size", 64.0}},
        "lr0.01-adam");
    // Scalars: loss = 1/(step+1), accuracy = step/10, at steps 0..9.
    for (int step = 0; step < 10; ++step) {
      writer.scalar("train/loss", step, 1.0 / (step + 1));
      writer.scalar("train/accuracy", step, step / 10.0);
    }
    // Histogram of 0.00, 0.01, ..., 9.99 plus a NaN (left out).
    std::vector<double> weights;
    for (int i = 0; i < 1000; ++i) weights.push_back(i * 0.01);
    weights.push_back(NAN);
    writer.histogram("weights/layer1", 5, weights, 20);
    // An image: a figure, and the same PNG beside the log for comparison.
    std::vector<double> x, y;
    for (int i = 0; i < 10; ++i) {
      x.push_back(i);
      y.push_back(1.0 / (i + 1));
    }
    io::Figure figure(320, 240);
    figure.title("loss").line("train", x, y).mark("best", 9, y[9]);
    const auto png = figure.png();
    io::write_file_atomically(dir.parent_path() / (dir.filename().string() + "-figure.png"),
                              std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
    writer.image("figures/loss", 3, png);
    // A model graph: input -> conv (scope "features") -> relu, shapes on the edges.
    writer.graph({{"input", "Input", {}, {-1, 3, 32, 32}, {}},
                  {"features/0_Conv2d", "Conv2d", {"input"}, {-1, 64, 28, 28}, {{"parameters", "4864"}}},
                  {"features/1_ReLU", "ReLU", {"features/0_Conv2d"}, {-1, 64, 28, 28}, {}}});
    writer.text("notes", 0, "**slurmlab** run\n\n| rank | node |\n| --- | --- |\n| 0 | node1 |");
    writer.end_session(io::SessionStatus::success);
  }
  for (int rank = 0; rank < 2; ++rank) {
    io::EventWriter writer(io::rank_log_dir(dir, rank));
    for (int step = 0; step < 3; ++step) writer.scalar("rank/step_time", step, 0.1 * (rank + 1) + 0.01 * step);
  }
  return 0;
}
