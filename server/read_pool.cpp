#include "read_pool.hpp"

#include "log.hpp"

namespace syncline::server {

ReadPool::ReadPool(std::vector<std::unique_ptr<Store>> readers, Post post, std::size_t max_queued)
    : readers_(std::move(readers)), post_(std::move(post)), max_queued_(max_queued) {
  for (auto& r : readers_) threads_.emplace_back([this, s = r.get()] { run(*s); });
}

ReadPool::~ReadPool() { stop(); }

bool ReadPool::submit(Job job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

std::size_t ReadPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void ReadPool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void ReadPool::run(Store& store) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job(store);
    } catch (const std::exception& e) {
      // A job reports its own failures through its result; this is a bug, kept from killing
      // the thread (and with it every later read).
      log_error("read job failed", {{"error", e.what()}});
    }
  }
}

}  // namespace syncline::server
