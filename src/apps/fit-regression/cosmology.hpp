#pragma once
// The physics beside the network: flat LambdaCDM distance moduli and a least-squares fit
// of Omega_m to supernova magnitudes, with the magnitude offset (absolute magnitude M and
// H0, which are degenerate without Cepheids) profiled out analytically.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace slurmlab::cosmology {

inline constexpr double kSpeedOfLightKmS = 299792.458;

// Comoving distance in Mpc of each redshift (any order, z >= 0) in a flat universe with
// matter density omega_m and a cosmological constant 1 - omega_m:
//   D_C(z) = c/H0 * integral_0^z dz' / sqrt(omega_m (1+z')^3 + 1 - omega_m),
// integrated between consecutive sorted redshifts with 16-point Gauss-Legendre.
std::vector<double> comoving_distance_mpc(std::span<const double> z, double omega_m, double h0 = 70.0);

// Distance modulus mu = 5 log10(D_L / 10 pc), D_L = (1 + z) D_C.
std::vector<double> distance_modulus(std::span<const double> z, double omega_m, double h0 = 70.0);

struct LcdmFit {
  std::size_t points = 0;        // supernovae used (after the redshift cut)
  double z_min = 0.0;            // the cut: z > z_min
  double omega_m = 0.0;
  double omega_m_low = 0.0;      // where chi2 = min + 1 below and above the best fit
  double omega_m_high = 0.0;
  double omega_m_error = 0.0;    // (high - low) / 2
  double offset = 0.0;           // m - mu(z; omega_m, H0 = 70): M + 5 log10(70 / H0)
  double chi2 = 0.0;
  double dof = 0.0;              // points - 2
  double chi2_einstein_de_sitter = 0.0;  // omega_m = 1 (no dark energy), offset refitted
  double delta_chi2 = 0.0;               // chi2_EdS - chi2
  double dark_energy_sigma = 0.0;        // sqrt(delta_chi2): one parameter, Wilks
  std::string summary() const;           // a few lines for the rank-0 report
};

// Fits flat LambdaCDM to magnitudes m(z) with per-point errors (diagonal only), on the
// points with z > z_min (Pantheon+ uses zHD > 0.01 to avoid peculiar velocities).
// Throws UsageError when fewer than 3 points survive the cut or an error is not positive.
LcdmFit fit_flat_lcdm(std::span<const double> z, std::span<const double> magnitude, std::span<const double> error,
                      double z_min = 0.01);

// chi2 of the data at a fixed omega_m with the offset profiled out; also returns it.
double profiled_chi2(std::span<const double> z, std::span<const double> magnitude, std::span<const double> error,
                     double omega_m, double* offset = nullptr);

// A synthetic table in the Pantheon+SH0ES.dat format (same 47 columns, CID a string, -9
// for missing values), drawn from flat LambdaCDM with a realistic redshift distribution,
// per-supernova errors and scatter, SALT2 stretch/colour with the Tripp relation
// (alpha 0.148, beta 3.112) and a host-mass step; host mass, HOST_ANGSEP (missing by
// redshift as in the release, so the six-feature set keeps ~40% of the rows) and VPEC
// distributed as in the release. Rows are sorted by zHD as in the release.
struct SyntheticPantheonOptions {
  std::size_t rows = 1701;
  std::uint64_t seed = 2022;
  double omega_m = 0.3;
  double h0 = 73.04;                   // SH0ES 2022
  double absolute_magnitude = -19.253; // M of the release: m_b_corr - MU_SH0ES
};
std::string synthetic_pantheon_table(const SyntheticPantheonOptions& options);

// The release's column names, in order.
const std::vector<std::string>& pantheon_columns();

}  // namespace slurmlab::cosmology
