// The Pantheon+ loader on the real release (../shared/data) and on small generated files,
// and the flat LambdaCDM fit against closed forms, a naive integral and synthetic data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cosmology.hpp"
#include "slurmlab/core/errors.hpp"
#include "slurmlab/data/table.hpp"

namespace fs = std::filesystem;
using namespace slurmlab;

namespace {

const fs::path kRealTable = fs::path(SLURMLAB_SOURCE_DIR) / ".." / "shared" / "data" / "Pantheon+SH0ES.dat";

#define REQUIRE_REAL_TABLE() \
  if (!fs::exists(kRealTable)) GTEST_SKIP() << "the Pantheon+ release is not at " << kRealTable

fs::path write_temp(const std::string& name, const std::string& text) {
  auto dir = fs::temp_directory_path() / ("slurmlab-pantheon-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

std::string usage_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PantheonTable, RealReleaseHasEveryDocumentedColumn) {
  REQUIRE_REAL_TABLE();
  auto table = data::WhitespaceTable::read(kRealTable);
  EXPECT_EQ(table.rows(), 1701u);
  EXPECT_EQ(table.columns(), cosmology::pantheon_columns());
  EXPECT_EQ(table.text_column("CID").front(), "2011fe");
  // m_b_corr - MU_SH0ES is the SH0ES absolute magnitude on every row.
  auto m = table.numeric_column("m_b_corr");
  auto mu = table.numeric_column("MU_SH0ES");
  for (std::size_t i = 0; i < m.size(); ++i) EXPECT_NEAR(m[i] - mu[i], -19.253, 5e-4) << "line " << table.line_of(i);
}

TEST(PantheonTable, MissingValuesAreDroppedOnlyForChosenColumns) {
  REQUIRE_REAL_TABLE();
  auto table = data::WhitespaceTable::read(kRealTable);
  auto angsep = table.numeric_column("HOST_ANGSEP");
  const auto missing = static_cast<std::size_t>(std::count(angsep.begin(), angsep.end(), -9.0));
  ASSERT_GT(missing, 0u);
  auto plain = data::select_regression_rows(table, "m_b_corr", {"zCMB"}, "m_b_corr_err_DIAG");
  EXPECT_EQ(plain.target.size(), 1701u);
  EXPECT_EQ(plain.dropped, 0u);
  auto with_angsep = data::select_regression_rows(table, "mB", {"zCMB", "HOST_ANGSEP"});
  EXPECT_EQ(with_angsep.dropped_by_column["HOST_ANGSEP"], missing);
  EXPECT_EQ(with_angsep.target.size() + with_angsep.dropped, 1701u);
  for (const auto& row : with_angsep.features) EXPECT_NE(row[1], -9.0);
  // The kept rows point back at their source rows.
  auto z = table.numeric_column("zCMB");
  EXPECT_EQ(with_angsep.features[10][0], z[with_angsep.table_rows[10]]);
}

TEST(PantheonTable, BadInputNamesFileLineAndColumn) {
  EXPECT_NE(usage_error_of([] { data::WhitespaceTable::read("/nonexistent/table.dat"); }).find("/nonexistent/table.dat"),
            std::string::npos);
  auto empty = write_temp("empty.dat", "\n\n");
  EXPECT_NE(usage_error_of([&] { data::WhitespaceTable::read(empty); }).find("is empty"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { data::WhitespaceTable::read(empty.parent_path()); }).find("is a folder, not a table file"),
            std::string::npos);
  auto header_only = write_temp("header.dat", "CID zHD m_b_corr\n");
  EXPECT_NE(usage_error_of([&] { data::WhitespaceTable::read(header_only); }).find("no data rows"), std::string::npos);
  auto ragged = write_temp("ragged.dat", "CID zHD m_b_corr\na 0.1 20\nb 0.2\n");
  auto ragged_message = usage_error_of([&] { data::WhitespaceTable::read(ragged); });
  EXPECT_NE(ragged_message.find("line 3"), std::string::npos) << ragged_message;

  auto bad_cell = write_temp("cell.dat", "CID zHD m_b_corr\na 0.1 20\nb 0.2 abc\n");
  auto table = data::WhitespaceTable::read(bad_cell);
  auto cell_message = usage_error_of([&] { table.numeric_column("m_b_corr"); });
  EXPECT_NE(cell_message.find("line 3"), std::string::npos) << cell_message;
  EXPECT_NE(cell_message.find("'m_b_corr'"), std::string::npos) << cell_message;
  EXPECT_NE(cell_message.find("'abc'"), std::string::npos) << cell_message;
  auto column_message = usage_error_of([&] { table.numeric_column("zCMB"); });
  EXPECT_NE(column_message.find("no column 'zCMB'"), std::string::npos) << column_message;
  EXPECT_NE(column_message.find("CID zHD m_b_corr"), std::string::npos) << column_message;
}

TEST(Cosmology, ComovingDistanceMatchesClosedForms) {
  const std::vector<double> z{0.0, 0.01, 0.5, 1.0, 2.3, 0.2};  // unsorted on purpose
  const double hubble_distance = cosmology::kSpeedOfLightKmS / 70.0;
  // Einstein-de Sitter: D_C = 2 c/H0 (1 - 1/sqrt(1+z)).
  auto eds = cosmology::comoving_distance_mpc(z, 1.0);
  for (std::size_t i = 0; i < z.size(); ++i)
    EXPECT_NEAR(eds[i], 2.0 * hubble_distance * (1.0 - 1.0 / std::sqrt(1.0 + z[i])), 1e-9 * hubble_distance);
  // Pure cosmological constant: D_C = c z / H0.
  auto de_sitter = cosmology::comoving_distance_mpc(z, 0.0);
  for (std::size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(de_sitter[i], hubble_distance * z[i], 1e-9 * hubble_distance);
}

TEST(Cosmology, ComovingDistanceMatchesANaiveIntegral) {
  // Independent reference: trapezoid rule with a million steps.
  const double omega_m = 0.3, z = 1.7;
  const int steps = 1'000'000;
  double sum = 0.0;
  for (int k = 0; k <= steps; ++k) {
    double zk = z * k / steps;
    double f = 1.0 / std::sqrt(omega_m * std::pow(1.0 + zk, 3) + 1.0 - omega_m);
    sum += (k == 0 || k == steps) ? 0.5 * f : f;
  }
  const double naive = cosmology::kSpeedOfLightKmS / 70.0 * sum * z / steps;
  std::vector<double> zs{z};
  EXPECT_NEAR(cosmology::comoving_distance_mpc(zs, omega_m)[0], naive, 1e-6 * naive);
  // mu = 5 log10((1+z) D_C / 10 pc).
  EXPECT_NEAR(cosmology::distance_modulus(zs, omega_m)[0], 5.0 * std::log10((1.0 + z) * naive * 1e6 / 10.0), 1e-6);
}

TEST(Cosmology, FitRecoversOmegaMatterFromSyntheticData) {
  cosmology::SyntheticPantheonOptions options;
  options.omega_m = 0.3;
  options.seed = 7;
  auto path = write_temp("synthetic.dat", cosmology::synthetic_pantheon_table(options));
  auto table = data::WhitespaceTable::read(path);
  ASSERT_EQ(table.rows(), options.rows);
  ASSERT_EQ(table.columns(), cosmology::pantheon_columns());
  // The synthetic table keeps the release's relation between m_b_corr and MU_SH0ES.
  auto m = table.numeric_column("m_b_corr");
  auto mu = table.numeric_column("MU_SH0ES");
  EXPECT_NEAR(m[100] - mu[100], -19.253, 1e-4);

  auto fit = cosmology::fit_flat_lcdm(table.numeric_column("zHD"), m, table.numeric_column("m_b_corr_err_DIAG"));
  EXPECT_NEAR(fit.omega_m, 0.3, 2.0 * fit.omega_m_error) << fit.summary();
  EXPECT_GT(fit.omega_m_error, 0.005);
  EXPECT_LT(fit.omega_m_error, 0.1);
  // Errors and scatter agree by construction: chi2 per degree of freedom near 1.
  EXPECT_NEAR(fit.chi2 / fit.dof, 1.0, 0.15) << fit.summary();
  // The offset is M + 5 log10(70 / H0).
  EXPECT_NEAR(fit.offset, -19.253 + 5.0 * std::log10(70.0 / 73.04), 0.05);
  EXPECT_GT(fit.dark_energy_sigma, 5.0);
}

// Generator and fit agree on the distance (zHD, the (1+z) factor of the luminosity distance):
// over 16 seeds the pulls (fit - truth) / error have mean 0 within 3/sqrt(16) and a spread near
// 1, and none is beyond 3.5 sigma. (One seed at 1.8 sigma, as the demo's 2022, is chance.)
TEST(Cosmology, FitIsUnbiasedOverSeedsWithPullsOfUnitSpread) {
  std::vector<double> pulls;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    cosmology::SyntheticPantheonOptions options;
    options.seed = seed;
    auto path = write_temp("synthetic-" + std::to_string(seed) + ".dat", cosmology::synthetic_pantheon_table(options));
    auto table = data::WhitespaceTable::read(path);
    const auto fit = cosmology::fit_flat_lcdm(table.numeric_column("zHD"), table.numeric_column("m_b_corr"),
                                              table.numeric_column("m_b_corr_err_DIAG"));
    pulls.push_back((fit.omega_m - options.omega_m) / fit.omega_m_error);
    EXPECT_LT(std::abs(pulls.back()), 3.5) << "seed " << seed << ": " << fit.summary();
  }
  double mean = 0.0, squares = 0.0;
  for (double p : pulls) mean += p / static_cast<double>(pulls.size());
  for (double p : pulls) squares += (p - mean) * (p - mean);
  const double spread = std::sqrt(squares / static_cast<double>(pulls.size() - 1));
  EXPECT_LT(std::abs(mean), 3.0 / std::sqrt(static_cast<double>(pulls.size()))) << "mean pull " << mean;
  EXPECT_GT(spread, 0.5) << "pull spread " << spread;
  EXPECT_LT(spread, 1.6) << "pull spread " << spread;
  std::printf("mean pull %.3f, spread %.3f over %zu seeds\n", mean, spread, pulls.size());
}

TEST(Cosmology, FitOnTheRealReleaseFindsDarkEnergy) {
  REQUIRE_REAL_TABLE();
  auto table = data::WhitespaceTable::read(kRealTable);
  auto fit = cosmology::fit_flat_lcdm(table.numeric_column("zHD"), table.numeric_column("m_b_corr"),
                                      table.numeric_column("m_b_corr_err_DIAG"), 0.01);
  EXPECT_GT(fit.omega_m, 0.30) << fit.summary();
  EXPECT_LT(fit.omega_m, 0.40) << fit.summary();
  EXPECT_GT(fit.points, 1500u);
  EXPECT_GT(fit.dark_energy_sigma, 10.0) << fit.summary();
  // The minimum is a minimum: chi2 rises by 1 at both ends of the interval.
  auto z = table.numeric_column("zHD");
  std::vector<double> zk, mk, ek;
  auto m = table.numeric_column("m_b_corr");
  auto e = table.numeric_column("m_b_corr_err_DIAG");
  for (std::size_t i = 0; i < z.size(); ++i)
    if (z[i] > 0.01) zk.push_back(z[i]), mk.push_back(m[i]), ek.push_back(e[i]);
  EXPECT_NEAR(cosmology::profiled_chi2(zk, mk, ek, fit.omega_m_low), fit.chi2 + 1.0, 1e-3);
  EXPECT_NEAR(cosmology::profiled_chi2(zk, mk, ek, fit.omega_m_high), fit.chi2 + 1.0, 1e-3);
}

TEST(Cosmology, FitRejectsBadInput) {
  std::vector<double> z{0.001, 0.005, 0.2}, m{10, 12, 20}, e{0.1, 0.1, 0.1};
  EXPECT_THROW(cosmology::fit_flat_lcdm(z, m, e, 0.01), UsageError);  // 1 point left
  std::vector<double> z2{0.1, 0.2, 0.3, 0.4}, m2{38, 40, 41, 42}, e2{0.1, 0.0, 0.1, 0.1};
  EXPECT_THROW(cosmology::fit_flat_lcdm(z2, m2, e2), UsageError);  // zero error
}
