// Layer: server. The writer: one thread that owns the writer Store and commits every write
// request (mutation batches from HTTP and WebSocket, custom events) off the io thread.
//
// Group commit: every request queued while a commit is in flight goes into the next group, one
// IMMEDIATE transaction with one savepoint per request and one fsync (synchronous=FULL) for the
// lot. Requests are applied in arrival order, so two batches of one client keep their order and
// seqs are handed out in queue order. A request that fails as a whole (a real SQLite error, a
// client id bound to another subject) is rolled back to its savepoint and answered with its
// error; the others keep their work. If SQLite rolls the whole transaction back by itself, the
// group is redone without the request that caused it. If the commit fails, every request of the
// group is answered with an error: nothing is acknowledged that is not durable.
//
// Completions are posted to the io thread, one post per group, after the commit returned; they
// run in seq order there, so the io thread broadcasts and answers in the order of the log.
// Beast-free: the io thread is reached through the `Post` function given at construction.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store.hpp"

namespace syncline::server {

struct WriteRequest {
  enum class Kind { Mutate, Publish };
  Kind kind = Kind::Mutate;
  // Mutate
  std::string client;
  std::string subject;
  std::vector<Mutation> mutations;
  WriteCheck check;  // runs on the writer thread: must not touch io-thread state
  ReadCheck readable;  // idem
  // Publish
  PublishRequest event;
  PublishCheck event_check;  // idem
};

struct WriteOutcome {
  std::optional<Error> error;   // not committed: "forbidden" or "internal"
  BatchResult batch;            // Mutate: results and committed rows
  std::optional<LogRow> event;  // Publish: the committed event
};

// What one group cost, for /metrics.
struct GroupStats {
  std::size_t requests = 0;
  long long commit_us = 0;  // begin to commit returned (includes the fsync)
  bool committed = false;
};

class Writer {
 public:
  using Done = std::function<void(WriteOutcome)>;           // runs on the io thread
  using Post = std::function<void(std::function<void()>)>;  // schedules on the io thread
  using OnGroup = std::function<void(const GroupStats&)>;   // runs on the io thread

  Writer(std::unique_ptr<Store> store, Post post, OnGroup on_group, std::size_t max_queued);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void start();
  // io thread. False when the queue is full or the writer stopped: the caller answers 503.
  bool submit(WriteRequest req, Done done);
  // Refuses new requests, commits everything queued, joins the thread. Idempotent.
  void stop();

  // Submitted requests whose completion has not run yet on the io thread.
  std::size_t pending() const { return pending_.load(); }
  // Thread-safe (see Store::pruned_through).
  std::int64_t pruned_through() const { return store_->pruned_through(); }
  // Only while the thread is not running (start-up, after stop()).
  Store& store() { return *store_; }

 private:
  struct Job {
    WriteRequest req;
    Done done;
  };
  void run();
  std::vector<Job> take_group();
  // Moves queued jobs into `group` while it is under the group bounds; never waits.
  void take_more(std::vector<Job>& group);
  GroupStats commit_group(std::vector<Job>& group, std::vector<WriteOutcome>& out);
  WriteOutcome apply(const WriteRequest& req);

  std::unique_ptr<Store> store_;
  Post post_;
  OnGroup on_group_;
  const std::size_t max_queued_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::size_t> pending_{0};
};

}  // namespace syncline::server
