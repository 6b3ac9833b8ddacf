#pragma once
// Small parsers of option text that several programs share. The value parsers read the whole
// text or nothing ("12x" is not 12); the range parser throws UsageError naming the option.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slurmlab {

// The items of a comma list, each trimmed of blanks and tabs: "8, 64,512" -> {"8", "64", "512"};
// an empty item stays (",a" -> {"", "a"}) so that callers can name it; "" -> {}.
std::vector<std::string> split_comma_list(std::string_view text);

// The whole text as a finite double (no NaN, no infinity), else nothing.
std::optional<double> parse_finite_double(std::string_view text);

// The whole text as a decimal integer, else nothing.
std::optional<long long> parse_integer(std::string_view text);

// "LO,HI" with finite LO < HI. Anything else throws UsageError naming the option, the text and
// what is wrong (not two items, an item that is not a number, LO not below HI), ending with
// "give LO,HI with LO < HI, e.g. <example>."
std::pair<double, double> parse_range(std::string_view option, std::string_view text, std::string_view example);

}  // namespace slurmlab
