// Writes a small metrics file with known contents to argv[1], for h5_readers_test.py to
// read back with the tools users have (h5py, h5dump). Keep the two files in step.
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "slurmlab/io/metrics_writer.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_sample_metrics OUTPUT.h5\n";
    return 2;
  }
  try {
    slurmlab::io::MetricsWriter writer(argv[1]);
    writer.set_attribute("", "program", "write_sample_metrics");
    writer.set_attribute("", "note", "ünïcødé ✓ 节点");
    writer.set_attribute("", "world_size", std::int64_t{4});
    writer.set_attribute("", "learning_rate", 0.001);
    writer.set_attribute("", "cuda", true);

    // A series grown one value at a time and then by a span, as trainers do.
    writer.append("train/loss", 1.0);
    writer.append("train/loss", 0.5);
    const std::vector<double> later_losses{0.25, 0.125};
    writer.append("train/loss", later_losses);
    for (std::int64_t step = 1; step <= 4; ++step) writer.append("train/step", step);
    writer.set_attribute("train", "optimizer", "sgd");
    writer.set_attribute("train/loss", "unit", "nats");

    // A per-rank table as env-dump writes it.
    writer.write("ranks/rank", std::vector<std::int64_t>{0, 1, 2, 3});
    writer.write("ranks/host", std::vector<std::string>{"node001", "node001", "node002", "ünïcødé-节点"});
    writer.write("ranks/busy_fraction", std::vector<double>{0.5, 0.25, 1.0, 0.0});

    writer.write("histograms", std::vector<double>{0, 1, 2, 3, 4, 5}, 2, 3);
    writer.close();
  } catch (const std::exception& error) {
    std::cerr << "write_sample_metrics: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
