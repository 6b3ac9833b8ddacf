#include "slurmlab/data/table.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "slurmlab/core/errors.hpp"

namespace slurmlab::data {
namespace {

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream stream(line);
  std::string field;
  while (stream >> field) fields.push_back(field);
  return fields;
}

bool parse_double(const std::string& text, double& value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

WhitespaceTable WhitespaceTable::read(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw UsageError("table '" + path.string() + "' is a folder, not a table file; name the file itself (e.g. " +
                     (path / "Pantheon+SH0ES.dat").string() + ").");
  }
  std::ifstream in(path);
  if (!in)
    throw UsageError("table '" + path.string() + "' cannot be opened; check the path (tools/fetch-data downloads the "
                     "Pantheon+ table).");
  WhitespaceTable table;
  table.path_ = path;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto fields = split_fields(line);
    if (fields.empty() || fields.front().starts_with('#')) continue;
    if (table.columns_.empty()) {
      table.columns_ = std::move(fields);
      continue;
    }
    if (fields.size() != table.columns_.size())
      throw UsageError("table '" + path.string() + "' line " + std::to_string(number) + " has " +
                       std::to_string(fields.size()) + " fields but the header names " +
                       std::to_string(table.columns_.size()) + " columns; the file is truncated or not this format.");
    table.cells_.push_back(std::move(fields));
    table.lines_.push_back(number);
  }
  if (table.columns_.empty()) throw UsageError("table '" + path.string() + "' is empty: no header line of column names.");
  if (table.cells_.empty()) throw UsageError("table '" + path.string() + "' has a header but no data rows.");
  return table;
}

bool WhitespaceTable::has_column(const std::string& name) const {
  for (const auto& c : columns_)
    if (c == name) return true;
  return false;
}

std::size_t WhitespaceTable::column_index(const std::string& name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i] == name) return i;
  std::string known;
  for (const auto& c : columns_) known += (known.empty() ? "" : " ") + c;
  throw UsageError("table '" + path_.string() + "' has no column '" + name + "'; its columns are: " + known + ".");
}

std::vector<double> WhitespaceTable::numeric_column(const std::string& name) const {
  const auto index = column_index(name);
  std::vector<double> values(cells_.size());
  for (std::size_t row = 0; row < cells_.size(); ++row)
    if (!parse_double(cells_[row][index], values[row]))
      throw UsageError("table '" + path_.string() + "' line " + std::to_string(lines_[row]) + " column '" + name +
                       "' holds '" + cells_[row][index] + "', which is not a number.");
  return values;
}

std::vector<std::string> WhitespaceTable::text_column(const std::string& name) const {
  const auto index = column_index(name);
  std::vector<std::string> values;
  values.reserve(cells_.size());
  for (const auto& row : cells_) values.push_back(row[index]);
  return values;
}

bool is_missing_value(double value) { return value == -9.0 || value == -999.0; }

RegressionRows select_regression_rows(const WhitespaceTable& table, const std::string& target,
                                      const std::vector<std::string>& features,
                                      const std::optional<std::string>& target_error) {
  RegressionRows rows;
  rows.feature_names = features;
  rows.target_name = target;
  // Read every chosen column first: a bad cell is reported even in a row that a missing
  // value elsewhere would drop.
  std::vector<std::string> names{target};
  names.insert(names.end(), features.begin(), features.end());
  if (target_error) names.push_back(*target_error);
  std::vector<std::vector<double>> columns;
  for (const auto& name : names) columns.push_back(table.numeric_column(name));

  for (std::size_t row = 0; row < table.rows(); ++row) {
    bool missing = false;
    for (std::size_t c = 0; c < names.size(); ++c) {
      if (is_missing_value(columns[c][row])) {
        ++rows.dropped_by_column[names[c]];
        missing = true;
      }
    }
    if (missing) {
      ++rows.dropped;
      continue;
    }
    rows.target.push_back(columns[0][row]);
    std::vector<double> x;
    for (std::size_t f = 0; f < features.size(); ++f) x.push_back(columns[1 + f][row]);
    rows.features.push_back(std::move(x));
    if (target_error) rows.target_error.push_back(columns.back()[row]);
    rows.table_rows.push_back(row);
  }
  if (rows.target.empty())
    throw UsageError("table '" + table.path().string() + "' has no row with values in every chosen column (" +
                     std::to_string(rows.dropped) + " rows dropped for missing values); choose fewer features.");
  return rows;
}

}  // namespace slurmlab::data
