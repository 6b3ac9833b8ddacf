#include "slurmlab/core/parse.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "slurmlab/core/errors.hpp"

namespace slurmlab {

std::vector<std::string> split_comma_list(std::string_view text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    items.emplace_back(first == std::string_view::npos ? std::string_view() : item.substr(first, last - first + 1));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

std::optional<double> parse_finite_double(std::string_view text) {
  // strtod, not from_chars: it takes what users type ("+1", "1e-3", " 2" is refused below).
  const std::string owned(text);
  if (owned.empty() || owned.front() == ' ' || owned.front() == '\t') return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(owned.c_str(), &end);
  if (end != owned.c_str() + owned.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<long long> parse_integer(std::string_view text) {
  long long value = 0;
  const char* begin = text.data();
  if (!text.empty() && text.front() == '+') ++begin;  // as std::stoll accepts
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::pair<double, double> parse_range(std::string_view option, std::string_view text, std::string_view example) {
  const std::string named = "--" + std::string(option) + " '" + std::string(text) + "'";
  const std::string fix = "; give LO,HI with LO < HI, e.g. " + std::string(example) + ".";
  const auto parts = split_comma_list(text);
  if (parts.size() != 2) throw UsageError(named + " is not a range" + fix);
  const auto lo = parse_finite_double(parts[0]);
  const auto hi = parse_finite_double(parts[1]);
  for (const auto* part : {&parts[0], &parts[1]})
    if (!parse_finite_double(*part)) throw UsageError(named + ": '" + *part + "' is not a number" + fix);
  if (!(*lo < *hi)) throw UsageError(named + ": LO must be below HI" + fix);
  return {*lo, *hi};
}

}  // namespace slurmlab
