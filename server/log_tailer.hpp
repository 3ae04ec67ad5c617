// Layer: server. Follows the change log of a database other nodes write too (PostgreSQL), so a
// write committed on node A reaches the streams on node B. One thread with its own reader Store:
// it reads the log after the last seq this node has broadcast, in seq order, hands the rows to
// the io thread (LogSequencer::offer_log), and when nothing is left waits for a commit's NOTIFY
// (Store::wait_for_log), with a timeout as a safety net should a notification be lost.
//
// Commit order equals seq order on that database (a group holds the head row from its first seq
// to its commit), so a read that sees seq N+1 also sees N: what the tailer reads is a dense
// prefix of the log. Beast-free; the io thread is reached through `Post`.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store.hpp"

namespace syncline::server {

class LogTailer {
 public:
  using Post = std::function<void(std::function<void()>)>;     // schedules on the io thread
  using Rows = std::function<void(std::vector<LogRow>)>;        // runs on the io thread
  using Head = std::function<std::int64_t()>;                   // any thread: the broadcast head

  // `head`: what this node has broadcast (read before each log read, so rows this node's writer
  // already handed over are not read again).
  LogTailer(std::unique_ptr<Store> store, Head head, Post post, Rows on_rows);
  ~LogTailer();
  LogTailer(const LogTailer&) = delete;
  LogTailer& operator=(const LogTailer&) = delete;

  void start();
  // Joins the thread (a wait in progress ends within its timeout). Idempotent.
  void stop();

  // Reads that failed (the database away): for /metrics and logs.
  std::int64_t failures() const { return failures_.load(); }
  // Whether the last read of the log succeeded (a read is tried at least every second): false
  // while this node cannot reach the database.
  bool database_reachable() const { return reachable_.load(); }

 private:
  void run();

  std::unique_ptr<Store> store_;
  Head head_;
  Post post_;
  Rows on_rows_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> failures_{0};
  std::atomic<bool> reachable_{true};
  // Batches posted to the io thread and not yet handled: bounded, so a slow io thread slows the
  // tailer instead of queueing the whole log in memory.
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  std::thread thread_;
};

}  // namespace syncline::server
