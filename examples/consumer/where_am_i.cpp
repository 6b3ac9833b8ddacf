// Each rank prints where it runs and which GPU the library bound it to, in rank order.
#include <iostream>

#include "slurmlab/cluster/rank_context.hpp"

int main(int argc, char** argv) {
  using namespace slurmlab::cluster;
  MpiSession session(argc, argv, "where-am-i");
  const auto context = RankContext::establish(session, Environment::from_process(), DevicePreference::automatic,
                                              /*allow_sharing=*/true, RankContext::BindingErrors::report);
  for (const auto& line : session.gather(context.describe() + ": " + context.gpu.reason)) std::cout << line << "\n";
}
