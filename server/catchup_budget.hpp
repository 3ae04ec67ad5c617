// Layer: server. Memory for stream resume catch-up, shared by every stream: the bytes a session
// has read from the log and not yet written to its socket (plus what a read in flight may
// bring). A session reads its next chunk only when the total and its subject's share have room,
// else it waits in line and is woken when bytes are given back. So however many streams resume
// from however far back, the backlog held in memory stays under limits.catchup_memory_bytes,
// and one subject's streams cannot take more than limits.catchup_memory_per_user of it.
//
// Plain arithmetic and a line of wake-up callbacks: it knows nothing of sessions, so sessions
// depend on it and not the other way round. io thread only. Beast-free.
#pragma once
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

namespace syncline::server {

class CatchupBudget {
 public:
  CatchupBudget(std::size_t total, std::size_t per_user) : total_(total), per_user_(per_user) {}
  bool try_take(const std::string& user, std::size_t n);
  // Takes without checking (a chunk read may overshoot its reservation by one row).
  void force_take(const std::string& user, std::size_t n);
  // Gives bytes back; `wake` resumes those waiting in line (io thread, not from destructors).
  void give_back(const std::string& user, std::size_t n, bool wake = true);
  // Lines up `resume`, called once when bytes are given back and a chunk may fit. A waiter that
  // is gone by then does nothing (the callback holds it weakly).
  void wait(std::function<void()> resume);
  std::size_t used() const { return used_; }
  std::size_t waiting() const { return waiters_.size(); }
  // Bytes one chunk read reserves.
  std::size_t chunk_bytes() const;

 private:
  std::size_t total_, per_user_;
  std::size_t used_ = 0;
  std::unordered_map<std::string, std::size_t> by_user_;
  std::deque<std::function<void()>> waiters_;
  bool waking_ = false;
};

}  // namespace syncline::server
