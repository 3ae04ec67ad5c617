// Layer: server. The stream session state machine, transport-agnostic and Beast-free: one
// subscriber's cursor, the catch-up from the log on resume, live delivery, and the bounded send
// queue that cuts off a slow consumer. Subclasses (sse_session, ws_session) only move bytes.
//
// Depends on the serialisation (stream_frames), the read-rule scoping (subscription) and the
// catch-up memory budget; never on the App, the routes or the registry (hub), which learns of a
// session's end through the callback it sets with on_end.
//
// States: catching up (reading the log after the cursor, chunk by chunk) -> live (rows arrive
// through deliver_live) -> closing (final words queued, no more input) -> closed. Invariants:
// every row a reader may see is sent once, in seq order, with no gap between catch-up and live;
// the queue never holds more than limits.send_queue_messages / send_queue_bytes (past that, the
// session is cut off as a slow consumer instead of slowing the others or growing without bound).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catchup_budget.hpp"
#include "config.hpp"
#include "metrics.hpp"
#include "read_pool.hpp"
#include "stream_frames.hpp"
#include "subscription.hpp"

namespace syncline::server {

// What a session uses of the server around it, and no more. The App builds one per session
// (App::stream_context); everything it points at outlives the sessions.
struct StreamContext {
  const Limits* limits = nullptr;
  Metrics* metrics = nullptr;
  ReadPool* reads = nullptr;
  CatchupBudget* catchup = nullptr;
  // The io thread's broadcast head (every seq up to it is committed) and the prune floor (rows up
  // to it may be gone from the log).
  std::function<std::int64_t()> head_seq;
  std::function<std::int64_t()> pruned_through;
};

class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(StreamContext ctx, Transport t, Subscription sub, std::string remote);
  virtual ~StreamSession();

  // Sends hello, then either a reset (cursor expired; or ahead of the database), the backlog
  // after `cursor` followed by live rows, or only live rows (no cursor, or a cursor this node
  // has not broadcast yet: rows after it arrive live).
  void begin(std::optional<std::int64_t> cursor);
  void deliver_live(const OutgoingPtr& out);
  // Queue a message for this connection only (e.g. mutation results on a WebSocket).
  void send_private(Bytes bytes);
  // Server shutdown / policy close: flush what is queued, then close with `reason`.
  void shutdown(const std::string& reason);
  // Ends the stream (after an `unauthorized` error message) once the caller's token has
  // expired; returns true when it did.
  bool token_expired();

  // Called once, when the session closes or is destroyed (whichever comes first): the registry
  // forgets it then, so a closed stream no longer counts against connection limits.
  void on_end(std::function<void(StreamSession*)> f) { on_end_ = std::move(f); }
  // Keeps the accepted connection's slot for as long as this session lives.
  void hold_connection(std::shared_ptr<void> slot) { connection_ = std::move(slot); }

  bool live() const { return live_; }
  bool closed() const { return closed_; }
  Transport transport() const { return transport_; }
  const Subscription& subscription() const { return sub_; }

 protected:
  // Transport hooks. write_batch sends the messages in order (SSE: one gathered write;
  // WebSocket: one frame each) and must call on_write_done exactly once when all are written.
  virtual void write_batch(std::shared_ptr<std::vector<Bytes>> batch) = 0;
  // Send the final words for `reason` (if any) and close the transport. Called once, when no
  // write is in flight.
  virtual void close_transport(const std::string& reason) = 0;
  void on_write_done(bool ok);
  // The transport failed or the peer went away: stop everything.
  void terminate(const std::string& why);
  bool writing() const { return writing_; }

  std::string remote_;
  long long opened_ms_ = 0;
  std::int64_t sent_ = 0;

 private:
  struct CatchupChunk;
  void enqueue(Bytes bytes, bool catchup = false);
  void pump();
  void catch_up();
  // A cursor past this node's broadcast head: reset only if the database has no such seq.
  void check_cursor_ahead(std::int64_t cursor);
  void on_catch_up_read(CatchupChunk chunk);
  // Resumes a catch-up that waited in the CatchupBudget's line.
  void resume_catch_up();
  void overflow();
  // Runs on_end's callback, once.
  void ended();
  // Gives back the catch-up bytes still queued (the queue is being dropped).
  void release_queued_catchup();
  void release_bytes(std::size_t n);

  // Queued messages; `catchup` ones count against the CatchupBudget until written.
  struct Queued {
    Bytes bytes;
    bool catchup = false;
  };

  StreamContext ctx_;
  Transport transport_;
  Subscription sub_;
  std::deque<Queued> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::size_t in_flight_ = 0;  // messages in the current write_batch
  std::size_t in_flight_catchup_bytes_ = 0;
  std::size_t catchup_held_ = 0;  // budget this session holds: reserved + queued + in flight
  bool reading_ = false;           // a catch-up read is on a reader thread
  bool waiting_budget_ = false;    // in the CatchupBudget's line
  bool live_ = false;
  bool catching_up_ = false;
  std::int64_t catchup_next_ = 0;  // last seq handled while catching up
  bool closing_ = false;
  bool closed_ = false;
  std::string close_reason_;
  std::shared_ptr<void> connection_;
  std::function<void(StreamSession*)> on_end_;
};

}  // namespace syncline::server
