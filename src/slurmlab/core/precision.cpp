#include "slurmlab/core/precision.hpp"


#include "slurmlab/core/errors.hpp"

namespace slurmlab {

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::float64: return "float64";
    case Precision::float32: return "float32";
    case Precision::bf16: return "bf16";
  }
  return "unknown";
}

std::string short_name(Precision precision) {
  switch (precision) {
    case Precision::float64: return "fp64";
    case Precision::float32: return "fp32";
    case Precision::bf16: return "bf16";
  }
  return "unknown";
}

Precision parse_precision(std::string_view text, std::initializer_list<Precision> allowed) {
  for (const auto precision : allowed) {
    if (text == short_name(precision) || text == to_string(precision) ||
        (precision == Precision::bf16 && text == "bfloat16"))
      return precision;
  }
  std::string choices;  // "fp32 or bf16", "fp64, fp32 or bf16"
  std::size_t index = 0;
  for (const auto precision : allowed) {
    if (index > 0) choices += index + 1 == allowed.size() ? " or " : ", ";
    choices += short_name(precision);
    ++index;
  }
  throw UsageError("unknown precision '" + std::string(text) + "'; use " + choices);
}

}  // namespace slurmlab
