#pragma once
// The one Precision of the library: what a computation's products are carried out in. Each
// module takes the subset it computes in (linalg: float64, float32; nn: float32, bf16) and
// refuses the rest with a UsageError.
#include <initializer_list>
#include <string>
#include <string_view>

namespace slurmlab {

enum class Precision { float64, float32, bf16 };

// "float64" | "float32" | "bf16"
std::string to_string(Precision precision);
// "fp64" | "fp32" | "bf16": as flags and logs spell them.
std::string short_name(Precision precision);
// Either spelling ("fp32" or "float32", "bf16" or "bfloat16", "fp64" or "float64") of one of
// `allowed`; anything else is a UsageError naming the text and the allowed short names.
Precision parse_precision(std::string_view text,
                          std::initializer_list<Precision> allowed = {Precision::float64, Precision::float32,
                                                                      Precision::bf16});

}  // namespace slurmlab
