#pragma once
// ComputePool: the process's helper threads for element-wise loops (Adam's update, parallel
// initialisation), split statically so a result never depends on the thread count.
//
// Why not OpenMP: libgomp's idle threads spin (OMP_WAIT_POLICY, read once when the library
// loads, so a program cannot change it) and OpenBLAS's pthreads pool spins beside them. With
// both pools on a 2-core node (the lab's MLP on 2 threads plus a loader thread) an Adam step
// took 1.1 ms instead of 0.18 ms and forward+backward 6x longer than on one thread, because
// each pool's spinning threads held the cores the other needed. These workers block on a
// condition variable between loops, so they cost nothing while BLAS or the loader runs.
//
// OpenBLAS's own workers are told to sleep as soon as their part of a call is done (see
// compute_pool.cpp), so that they do not hold the cores this pool needs next.
//
// Threads: run() may be called from one thread at a time (the training thread); the body runs
// on the caller and on up to parts-1 workers, started on first use and kept for the process.
// An exception in the body is rethrown on the caller once every part has finished.
#include <cstdint>
#include <functional>

namespace slurmlab {

class ComputePool {
 public:
  static ComputePool& instance();
  // Calls body(begin, end) on `parts` contiguous ranges covering [0, n), each starting at a
  // multiple of `align` elements (SIMD-friendly); part 0 runs on the caller. parts <= 1 or a
  // small n runs body(0, n) on the caller alone.
  void run(int parts, std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body,
           std::int64_t align = 16);

 private:
  ComputePool() = default;
  struct State;
  State& state();
};

}  // namespace slurmlab
