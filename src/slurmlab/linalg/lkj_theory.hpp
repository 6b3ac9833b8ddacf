#pragma once
// The exact distribution of log det C for C ~ LKJ(eta) in dimension d:
// log det C = sum_{i=1}^{d-1} log B_i with independent B_i ~ Beta(eta + (d-1-i)/2, i/2), so
//   E[log det C]   = sum_{k=0}^{d-2} psi(eta + k/2)  - (d-1) psi(eta + (d-1)/2),
//   Var[log det C] = sum_{k=0}^{d-2} psi1(eta + k/2) - (d-1) psi1(eta + (d-1)/2).
namespace slurmlab::linalg {

// Digamma psi(x) and trigamma psi1(x) for x > 0: recurrence up to x >= 16, then the
// asymptotic (Bernoulli) series; absolute error about 1e-15 for x near 1.
double digamma(double x);
double trigamma(double x);

double lkj_log_det_mean(int dim, double eta);
double lkj_log_det_variance(int dim, double eta);

}  // namespace slurmlab::linalg
