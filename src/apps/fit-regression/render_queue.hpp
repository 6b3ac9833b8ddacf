#pragma once
// RenderQueue: one worker thread that runs jobs (drawing a figure, encoding a PNG) off the
// training thread, so an epoch never waits for a picture. The queue is bounded: post()
// blocks while `capacity` jobs wait, so a slow renderer slows training instead of piling up
// copies of the predictions. A job that throws is kept: later jobs are dropped (the first
// error is the one worth reading), and finish() rethrows it once the caller has written
// what it computed.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace slurmlab::fit {

class RenderQueue {
 public:
  explicit RenderQueue(std::size_t capacity = 2);
  ~RenderQueue();  // drops waiting jobs, joins (an unfinished queue: the caller is failing already)
  RenderQueue(const RenderQueue&) = delete;
  RenderQueue& operator=(const RenderQueue&) = delete;

  // Queues `job`; blocks while the queue is full. After finish(): std::logic_error.
  void post(std::function<void()> job);
  // Runs every queued job, joins the worker and rethrows the first job's exception, if any.
  void finish();

 private:
  void work();

  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false, finished_ = false, busy_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

}  // namespace slurmlab::fit
