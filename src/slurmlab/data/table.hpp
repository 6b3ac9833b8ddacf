#pragma once
// Whitespace-separated tables with a header line of column names, such as the
// Pantheon+SH0ES release (47 named columns, CID a string, -9 marking missing values).
// Columns are chosen by name, never by position, and every error names the file, the
// line and the column.
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slurmlab::data {

class WhitespaceTable {
 public:
  // Reads the whole file. Throws UsageError for a missing or unreadable file, a file with
  // no header or no rows, and a row whose field count differs from the header's.
  static WhitespaceTable read(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }
  std::size_t rows() const { return cells_.size(); }
  // The 1-based line number of row `row` in the file (for messages).
  std::size_t line_of(std::size_t row) const { return lines_.at(row); }

  bool has_column(const std::string& name) const;
  // Throws UsageError naming the file, the column and the columns it does have.
  std::size_t column_index(const std::string& name) const;
  const std::string& cell(std::size_t row, std::size_t column) const { return cells_.at(row).at(column); }
  // The column as numbers; throws UsageError naming file, line and column for a cell that
  // is not a number.
  std::vector<double> numeric_column(const std::string& name) const;
  std::vector<std::string> text_column(const std::string& name) const;

 private:
  std::filesystem::path path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> cells_;
  std::vector<std::size_t> lines_;
};

// Sentinels the Pantheon+ release writes for "no value" (HOST_ANGSEP = -9, HOST_RA = -999).
bool is_missing_value(double value);

// Rows chosen for a regression: a target, features and an optional error column, by name.
// Rows where any chosen column holds a missing value are dropped and counted per column.
struct RegressionRows {
  std::vector<std::string> feature_names;
  std::string target_name;
  std::vector<std::vector<double>> features;  // [row][feature]
  std::vector<double> target;
  std::vector<double> target_error;           // empty when no error column was chosen
  std::vector<std::size_t> table_rows;        // the source row of each kept row
  std::size_t dropped = 0;
  std::map<std::string, std::size_t> dropped_by_column;  // a row counts once per missing column
};

RegressionRows select_regression_rows(const WhitespaceTable& table, const std::string& target,
                                      const std::vector<std::string>& features,
                                      const std::optional<std::string>& target_error = std::nullopt);

}  // namespace slurmlab::data
