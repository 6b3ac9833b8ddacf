// A program that fails on one rank while the others wait in a collective: the library's
// failure path must end the whole job promptly with the failing rank's message.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "slurmlab/cluster/mpi_session.hpp"

int main(int argc, char** argv) {
  return slurmlab::cluster::run_mpi_program(argc, argv, "abort_probe", [](slurmlab::cluster::MpiSession& session, int count, char** args) {
    const int failing_rank = count > 1 ? std::atoi(args[1]) : 0;
    if (session.rank() == failing_rank) throw std::runtime_error("simulated failure on purpose.");
    session.barrier();  // the others would wait here forever without MPI_Abort
    return 0;
  });
}
