// Prints a data set as text for checkers in other languages (sklearn_digits_test.py):
//   dump_image_dataset SPEC train|test
// First line: "<size> <channels> <height> <width> <classes>"; then one line per image: the
// label followed by its pixels (CHW). Fixed-shape sets only. A UsageError prints its sentence
// and exits 2.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/images.hpp"

int main(int argc, char** argv) {
  using namespace slurmlab::data;
  if (argc != 3) {
    std::cerr << "usage: dump_image_dataset SPEC train|test\n";
    return slurmlab::kUsageExitCode;
  }
  try {
    const auto data = open_image_dataset(argv[1], std::string(argv[2]) == "test" ? Split::test : Split::train);
    const auto shape = data->fixed_shape().value();
    std::printf("%lld %d %d %d %zu\n", static_cast<long long>(data->size()), shape.channels, shape.height, shape.width,
                data->class_names().size());
    std::vector<std::uint8_t> scratch;
    for (std::int64_t i = 0; i < data->size(); ++i) {
      const auto view = data->image(i, scratch);
      std::printf("%lld", static_cast<long long>(data->label(i)));
      for (std::int64_t p = 0; p < shape.bytes(); ++p) std::printf(" %d", view.pixels[p]);
      std::printf("\n");
    }
  } catch (const slurmlab::UsageError& error) {
    std::cerr << "dump_image_dataset: " << error.what() << "\n";
    return slurmlab::kUsageExitCode;
  }
  return 0;
}
