// Layer: server. Reads that may take long (stream catch-up from the log, snapshots, /metrics'
// document count) run here, on reader threads that each own a read-only Store connection, so
// the io thread never waits on SQLite or on serialising a backlog: health checks and live
// fan-out stay fast whatever one caller asks for.
//
// A job runs on a reader thread with that thread's Store; what it produces is handed back to the
// io thread through `Post` (the same function the Writer uses). Jobs run in submission order per
// thread; the queue is bounded, so a flood of reads gets refusals (503) instead of memory.
// Beast-free.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store.hpp"

namespace syncline::server {

class ReadPool {
 public:
  using Job = std::function<void(Store&)>;                  // runs on a reader thread
  using Post = std::function<void(std::function<void()>)>;  // schedules on the io thread

  ReadPool(std::vector<std::unique_ptr<Store>> readers, Post post, std::size_t max_queued);
  ~ReadPool();
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // io thread. False when the queue is full or the pool stopped.
  bool submit(Job job);
  // Schedules `f` on the io thread (for a job's result).
  void post(std::function<void()> f) { post_(std::move(f)); }
  // Finishes the jobs already running, drops the queued ones, joins the threads. Idempotent.
  void stop();
  std::size_t queued() const;

 private:
  void run(Store& store);

  std::vector<std::unique_ptr<Store>> readers_;
  Post post_;
  const std::size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace syncline::server
