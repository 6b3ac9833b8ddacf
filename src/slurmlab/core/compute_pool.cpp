#include "slurmlab/core/compute_pool.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace slurmlab {

namespace {

// OpenBLAS (its pthreads build, Debian's default) keeps its worker threads spinning on
// sched_yield for 2^28 cycles, about 0.1 s, after every multi-threaded call before they sleep.
// The pool's next loop (a convolution's chunks, BatchNorm's channels) needs that core in the
// meantime: the tutorial CNN's 2-thread training step took 45 ms instead of 25 in 4 of 5 runs
// (bench/nn, 2026-12-04). So, unless the user chose a value, OPENBLAS_THREAD_TIMEOUT is set to
// OpenBLAS's minimum (2^4 cycles: its workers sleep as soon as their part is done) before main,
// single-threaded, and OpenBLAS's threads are stopped to read it: OpenBLAS starts them again at
// its next multi-threaded call, as it does after a fork. With another BLAS, or an OpenBLAS
// without these entry points, nothing changes.
struct QuietBlasWorkers {
  QuietBlasWorkers() {
    if (std::getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr || std::getenv("GOTO_THREAD_TIMEOUT") != nullptr) return;
    auto* read_env = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "openblas_read_env"));
    auto* timeout = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_thread_timeout"));
    auto* stop_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
    if (read_env == nullptr || timeout == nullptr || stop_threads == nullptr) return;
    ::setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
    read_env();
    if (timeout() == 4) stop_threads();
  }
};
const QuietBlasWorkers quiet_blas_workers;

}  // namespace

struct ComputePool::State {
  std::mutex run_mutex;  // one run() at a time
  std::mutex mutex;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  std::uint64_t generation = 0;
  const std::function<void(std::int64_t, std::int64_t)>* body = nullptr;
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;  // ranges[i] for part i
  int remaining = 0;
  std::exception_ptr error;
};

ComputePool& ComputePool::instance() {
  // Never destroyed: its workers wait for work until the process ends.
  static auto* pool = new ComputePool();
  return *pool;
}

ComputePool::State& ComputePool::state() {
  static auto* s = new State();
  return *s;
}

void ComputePool::run(int parts, std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body,
                      std::int64_t align) {
  align = std::max<std::int64_t>(align, 1);
  parts = static_cast<int>(std::min<std::int64_t>(std::max(parts, 1), (n + align - 1) / align));
  if (parts <= 1) {
    if (n > 0) body(0, n);
    return;
  }
  State& s = state();
  std::lock_guard run_lock(s.run_mutex);
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  const std::int64_t blocks = (n + align - 1) / align;
  for (int p = 0; p < parts; ++p) {
    const std::int64_t begin = std::min(n, blocks * p / parts * align);
    const std::int64_t end = std::min(n, blocks * (p + 1) / parts * align);
    ranges.emplace_back(begin, end);
  }
  {
    std::unique_lock lock(s.mutex);
    while (static_cast<int>(s.workers.size()) < parts - 1) {
      const auto index = static_cast<int>(s.workers.size()) + 1;  // part 0 is the caller's
      s.workers.emplace_back([&s, index, seen = s.generation]() mutable {
        std::unique_lock worker_lock(s.mutex);
        for (;;) {
          s.wake.wait(worker_lock, [&] { return s.generation != seen; });
          seen = s.generation;
          if (index >= static_cast<int>(s.ranges.size())) continue;  // not needed this time
          const auto [begin, end] = s.ranges[static_cast<std::size_t>(index)];
          const auto* job = s.body;
          worker_lock.unlock();
          std::exception_ptr error;
          try {
            if (end > begin) (*job)(begin, end);
          } catch (...) {
            error = std::current_exception();
          }
          worker_lock.lock();
          if (error && !s.error) s.error = error;
          if (--s.remaining == 0) s.done.notify_one();
        }
      });
      s.workers.back().detach();
    }
    s.ranges = ranges;
    s.body = &body;
    s.remaining = parts - 1;
    s.error = nullptr;
    ++s.generation;
  }
  s.wake.notify_all();
  std::exception_ptr caller_error;
  try {
    body(ranges[0].first, ranges[0].second);
  } catch (...) {
    caller_error = std::current_exception();
  }
  std::unique_lock lock(s.mutex);
  s.done.wait(lock, [&] { return s.remaining == 0; });
  s.body = nullptr;
  const auto error = caller_error ? caller_error : s.error;
  s.error = nullptr;
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

}  // namespace slurmlab
