// Layer: server. See log_sequencer.hpp.
#include "log_sequencer.hpp"

#include <utility>

namespace syncline::server {

void LogSequencer::publish(LogRow row) {
  head_ = row.seq;
  publish_(std::move(row));
}

void LogSequencer::offer_local(std::vector<LogRow> rows) {
  for (auto& row : rows) {
    if (row.seq <= head_) continue;  // the log got it here first
    if (row.seq == head_ + 1 && held_.empty()) {
      publish(std::move(row));
    } else {
      held_.emplace(row.seq, std::move(row));
    }
  }
  drain_held();
  run_waiters();
}

bool LogSequencer::offer_log(std::vector<LogRow> rows) {
  bool dense = true;
  for (auto& row : rows) {
    if (row.seq <= head_) continue;
    if (row.seq != head_ + 1) {
      dense = false;
      if (gap_) gap_(head_, row.seq);
    }
    held_.erase(row.seq);
    publish(std::move(row));
  }
  drain_held();
  run_waiters();
  return dense;
}

void LogSequencer::drain_held() {
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first <= head_) {
      held_.erase(it);
    } else if (it->first == head_ + 1) {
      LogRow row = std::move(it->second);
      held_.erase(it);
      publish(std::move(row));
    } else {
      break;
    }
  }
}

void LogSequencer::when_published(std::int64_t seq, std::function<void()> f) {
  if (seq <= head_) return f();
  waiters_.emplace(seq, std::move(f));
}

void LogSequencer::run_waiters() {
  while (!waiters_.empty() && waiters_.begin()->first <= head_) {
    auto f = std::move(waiters_.begin()->second);
    waiters_.erase(waiters_.begin());
    f();
  }
}

}  // namespace syncline::server
