#include "render_queue.hpp"

#include <stdexcept>
#include <utility>

namespace slurmlab::fit {

RenderQueue::RenderQueue(std::size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {
  worker_ = std::thread([this] { work(); });
}

RenderQueue::~RenderQueue() {
  {
    std::lock_guard lock(mutex_);
    jobs_.clear();
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void RenderQueue::post(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  if (finished_ || stopping_) throw std::logic_error("RenderQueue::post after finish()");
  changed_.wait(lock, [&] { return jobs_.size() < capacity_ || error_; });
  if (error_) return;  // drawing already failed; finish() reports why
  jobs_.push_back(std::move(job));
  lock.unlock();
  changed_.notify_all();
}

void RenderQueue::finish() {
  {
    std::unique_lock lock(mutex_);
    if (finished_) return;
    finished_ = true;
    changed_.wait(lock, [&] { return jobs_.empty() && !busy_; });
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
  if (error_) std::rethrow_exception(error_);
}

void RenderQueue::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping with nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    changed_.notify_all();  // room in the queue
    std::exception_ptr failure;
    try {
      job();
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
      if (failure && !error_) {
        error_ = failure;
        jobs_.clear();
      }
    }
    changed_.notify_all();
  }
}

}  // namespace slurmlab::fit
