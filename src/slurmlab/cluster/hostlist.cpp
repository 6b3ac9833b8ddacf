#include "slurmlab/cluster/hostlist.hpp"

#include <cctype>
#include <charconv>
#include <optional>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::cluster {
namespace {

[[noreturn]] void bad_hostlist(std::string_view expression, std::string_view why) {
  throw UsageError("hostlist '" + std::string(expression) + "' is malformed: " + std::string(why) +
                   "; expected names like node[1-4,7] or a[01-03]b.");
}

// Splits at commas that are not inside brackets.
std::vector<std::string_view> split_top_level(std::string_view expression) {
  std::vector<std::string_view> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < expression.size(); ++i) {
    char c = expression[i];
    if (c == '[') {
      if (++depth > 1) bad_hostlist(expression, "nested '['");
    } else if (c == ']') {
      if (--depth < 0) bad_hostlist(expression, "']' without '['");
    } else if (c == ',' && depth == 0) {
      parts.push_back(expression.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) bad_hostlist(expression, "'[' without ']'");
  parts.push_back(expression.substr(start));
  return parts;
}

unsigned long parse_number(std::string_view expression, std::string_view digits) {
  unsigned long value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc{} || end != digits.data() + digits.size())
    bad_hostlist(expression, "'" + std::string(digits) + "' is not a number");
  return value;
}

// Expands the contents of one bracket, e.g. "01-03,7" -> {"01","02","03","7"}.
std::vector<std::string> expand_ranges(std::string_view expression, std::string_view ranges) {
  std::vector<std::string> values;
  std::size_t start = 0;
  while (start <= ranges.size()) {
    auto comma = ranges.find(',', start);
    auto item = ranges.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      parse_number(expression, item);
      values.emplace_back(item);
    } else {
      auto low_text = item.substr(0, dash);
      auto high_text = item.substr(dash + 1);
      auto low = parse_number(expression, low_text);
      auto high = parse_number(expression, high_text);
      if (high < low) bad_hostlist(expression, "range " + std::string(item) + " is descending");
      if (high - low > 1'000'000) bad_hostlist(expression, "range " + std::string(item) + " is too large");
      // Slurm pads to the width of the lower bound when it has a leading zero.
      std::size_t width = low_text.size() > 1 && low_text[0] == '0' ? low_text.size() : 0;
      for (auto v = low; v <= high; ++v) {
        auto text = std::to_string(v);
        if (text.size() < width) text.insert(0, width - text.size(), '0');
        values.push_back(std::move(text));
      }
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return values;
}

void expand_part(std::string_view expression, std::string_view part, std::vector<std::string>& out) {
  // Cartesian product over brackets: prefix[a][b]suffix.
  std::vector<std::string> partial{""};
  std::size_t pos = 0;
  while (pos < part.size()) {
    auto open = part.find('[', pos);
    auto literal = part.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
    for (auto& p : partial) p.append(literal);
    if (open == std::string_view::npos) break;
    auto close = part.find(']', open);
    auto inner = part.substr(open + 1, close - open - 1);
    if (inner.empty()) bad_hostlist(expression, "empty '[]'");
    auto values = expand_ranges(expression, inner);
    std::vector<std::string> next;
    next.reserve(partial.size() * values.size());
    for (const auto& p : partial)
      for (const auto& v : values) next.push_back(p + v);
    partial = std::move(next);
    pos = close + 1;
  }
  for (auto& p : partial) {
    if (p.empty()) bad_hostlist(expression, "empty host name");
    out.push_back(std::move(p));
  }
}

struct SplitName {
  std::string prefix;
  std::optional<unsigned long> number;
  std::size_t width = 0;
};

SplitName split_numeric_suffix(const std::string& host) {
  std::size_t digits = 0;
  while (digits < host.size() && std::isdigit(static_cast<unsigned char>(host[host.size() - 1 - digits]))) ++digits;
  if (digits == 0 || digits > 18) return {host, std::nullopt, 0};
  return {host.substr(0, host.size() - digits), std::stoul(host.substr(host.size() - digits)), digits};
}

std::string format_number(unsigned long value, std::size_t width, bool padded) {
  auto text = std::to_string(value);
  if (padded && text.size() < width) text.insert(0, width - text.size(), '0');
  return text;
}

}  // namespace

std::vector<std::string> expand_hostlist(std::string_view expression) {
  std::vector<std::string> hosts;
  if (expression.empty()) return hosts;
  for (auto part : split_top_level(expression)) {
    if (part.empty()) bad_hostlist(expression, "empty entry between commas");
    expand_part(expression, part, hosts);
  }
  return hosts;
}

std::string compress_hostlist(const std::vector<std::string>& hosts) {
  std::string result;
  std::size_t i = 0;
  while (i < hosts.size()) {
    auto first = split_numeric_suffix(hosts[i]);
    std::string group;
    if (!first.number) {
      group = hosts[i++];
    } else {
      // Padded when the text has a leading zero; a run keeps one padding width.
      bool padded = first.width > 1 && hosts[i][first.prefix.size()] == '0';
      std::vector<std::pair<unsigned long, unsigned long>> runs{{*first.number, *first.number}};
      std::size_t j = i + 1;
      for (; j < hosts.size(); ++j) {
        auto next = split_numeric_suffix(hosts[j]);
        bool next_padded = next.width > 1 && hosts[j][next.prefix.size()] == '0';
        if (!next.number || next.prefix != first.prefix || next.width != first.width || next_padded != padded) {
          // unpadded numbers of different width still belong together
          if (!(next.number && next.prefix == first.prefix && !padded && !next_padded)) break;
        }
        if (*next.number == runs.back().second + 1)
          runs.back().second = *next.number;
        else
          runs.emplace_back(*next.number, *next.number);
      }
      if (j == i + 1) {
        group = hosts[i];
      } else {
        group = first.prefix + "[";
        for (std::size_t r = 0; r < runs.size(); ++r) {
          if (r) group += ",";
          group += format_number(runs[r].first, first.width, padded);
          if (runs[r].second != runs[r].first) group += "-" + format_number(runs[r].second, first.width, padded);
        }
        group += "]";
      }
      i = j;
    }
    if (!result.empty()) result += ",";
    result += group;
  }
  return result;
}

}  // namespace slurmlab::cluster
