// Layer: server. The order in which this node broadcasts the log: every seq once, ascending,
// with no gap, whatever mix of sources the rows arrive from. Pure (no I/O, no threads): the App
// drives it on the io thread.
//
// Two sources. This node's writer hands over the rows it committed (offer_local), at once and in
// its own commit order. With a database other nodes write too (PostgreSQL), the seqs between
// two local groups may belong to another node: those arrive from the LogTailer, which reads the
// log in seq order (offer_log). A local row that does not follow the head waits until the log
// has filled what comes before it; a row already broadcast (the tailer re-reading a local group,
// or the writer's answer arriving after the tailer's) is dropped. On a database only this node
// writes (SQLite), local rows always follow the head and the log source is not used.
//
// The log is authoritative: seqs are dense (a rolled-back group gives its seqs back), so a jump
// in what the tailer read means rows were pruned before it read them. The sequencer reports the
// jump *before* it broadcasts anything past it (the App cuts the live streams off then, so none
// of them moves its cursor past the hole: they resume from their cursors and get a reset), and
// moves on.
//
// Waiters: when_published(seq, f) runs f once every seq up to `seq` has been broadcast (the
// answer to a write goes out after its changes, as on one node).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/write_rules.hpp"

namespace syncline::server {

class LogSequencer {
 public:
  using Publish = std::function<void(LogRow)>;
  // A hole in the log: seqs after `head` up to `next - 1` are gone.
  using Gap = std::function<void(std::int64_t head, std::int64_t next)>;
  LogSequencer(std::int64_t head, Publish publish, Gap gap = nullptr)
      : head_(head), publish_(std::move(publish)), gap_(std::move(gap)) {}

  // Rows this node's writer committed, in seq order.
  void offer_local(std::vector<LogRow> rows);
  // Rows read from the log, in seq order. Returns false when they did not follow the head (a
  // pruned stretch was skipped: the streams must resume from their cursors).
  bool offer_log(std::vector<LogRow> rows);
  // Runs `f` now if `seq` is already broadcast, else once it is.
  void when_published(std::int64_t seq, std::function<void()> f);

  std::int64_t head() const { return head_; }
  // Local rows waiting for the log to catch up (for /metrics and tests).
  std::size_t held() const { return held_.size(); }

 private:
  void publish(LogRow row);
  // Publishes the held rows that now follow the head, drops those already behind it.
  void drain_held();
  void run_waiters();

  std::int64_t head_;
  Publish publish_;
  Gap gap_;
  std::map<std::int64_t, LogRow> held_;
  std::multimap<std::int64_t, std::function<void()>> waiters_;
};

}  // namespace syncline::server
