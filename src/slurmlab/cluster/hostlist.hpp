#pragma once
// Slurm hostlist expressions, as in SLURM_JOB_NODELIST: `node[1-4,7]`, `a[01-03]b`,
// `x,y[2-3]`, `rack[1-2]-n[01-02]`. Zero padding is kept (`n[08-10]` -> n08 n09 n10).
#include <string>
#include <string_view>
#include <vector>

namespace slurmlab::cluster {

// Expands a hostlist into host names in Slurm's order (left to right, the rightmost
// bracket varying fastest). Throws slurmlab::UsageError naming the expression on bad
// syntax (unbalanced bracket, empty range, descending range).
std::vector<std::string> expand_hostlist(std::string_view expression);

// Compresses host names back into a hostlist expression (consecutive numeric suffixes
// with equal padding are merged: n01 n02 n03 -> n[01-03]). Used for short summaries.
std::string compress_hostlist(const std::vector<std::string>& hosts);

}  // namespace slurmlab::cluster
