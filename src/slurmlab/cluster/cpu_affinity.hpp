#pragma once
// The CPUs this process may run on, as Slurm's --cpu-bind and cgroups leave them.
#include <string>
#include <vector>

namespace slurmlab::cluster {

std::vector<int> allowed_cpus();  // sched_getaffinity, ascending
int current_cpu();                // sched_getcpu, -1 if unknown
// {0,1,2,3,8,10,11} -> "0-3,8,10-11" (the form taskset -c and Slurm print).
std::string format_cpu_ranges(const std::vector<int>& cpus);

}  // namespace slurmlab::cluster
