#pragma once
// splitmix64's finaliser: a good 64-bit mix of one word (Steele, Lea and Flood 2014). Fed a
// counter, key + i * 0x9e3779b97f4a7c15, it is the SplitMix64 generator entered at draw i: the
// counter-based random source of the data pipeline and of nn's parallel initialisation.
#include <cstdint>

namespace slurmlab {

inline constexpr std::uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

constexpr std::uint64_t splitmix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace slurmlab
