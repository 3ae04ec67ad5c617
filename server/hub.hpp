// Layer: server. Fan-out of committed log rows to stream connections (SSE and WebSocket).
// Transport-agnostic and Beast-free: StreamSession owns the subscription, the catch-up from the
// log on resume, and the bounded send queue; subclasses only move bytes.
//
// Each live row is serialised once per transport into a shared_ptr<const std::string> that every
// session sending it shares. A session skips rows its caller may not read (rule AND where,
// decided on the row's visibility fields). A session whose queue overflows is cut off as a slow
// consumer instead of slowing the others or growing without bound.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "store.hpp"

namespace syncline::server {

class App;

enum class Transport { Sse, Ws };

using Bytes = std::shared_ptr<const std::string>;

// A committed row ready for fan-out.
struct Outgoing {
  LogRow row;
  Bytes sse;
  Bytes ws;
  // Updates only: the same change as a `delete` for readers whose scope the document left.
  Bytes sse_leave;
  Bytes ws_leave;
};
using OutgoingPtr = std::shared_ptr<const Outgoing>;

Bytes serialize_row(const LogRow& row, Transport t);
// An update seen by a reader who could read the document before but not after: a delete.
Bytes serialize_leave(const LogRow& row, Transport t);

enum class Visibility { Hidden, Show, Leave };
OutgoingPtr make_outgoing(LogRow row);
Bytes serialize_hello(std::int64_t seq, Transport t);
Bytes serialize_reset(const std::string& reason, std::int64_t seq, Transport t);
Bytes serialize_error(const Error& e, Transport t);

// What one connection subscribed to, resolved against its caller's rules.
class Subscription {
 public:
  // collections empty = every collection the caller may read.
  Subscription(const Config& config, Claims claims, std::vector<std::string> collections, Filter where);
  bool can_see(const LogRow& row) const { return visibility(row) == Visibility::Show; }
  Visibility visibility(const LogRow& row) const;
  // Effective access (rule AND where) to one collection.
  const Access& access(const std::string& collection) const;
  bool subscribed(const std::string& collection) const;
  const Claims& claims() const { return claims_; }

 private:
  const Config& config_;
  Claims claims_;
  std::set<std::string> collections_;
  bool all_ = false;
  Filter where_;
  mutable std::map<std::string, Access> cache_;
};

class StreamSession;

// Memory for resume catch-up, shared by every stream: the bytes a session has read from the log
// and not yet written to its socket (plus what a read in flight may bring). A session reads its
// next chunk only when the total and its subject's share have room, else it waits in line and
// is woken when bytes are given back. So however many streams resume from however far back,
// the backlog held in memory stays under limits.catchup_memory_bytes, and one subject's
// streams cannot take more than limits.catchup_memory_per_user of it.
class CatchupBudget {
 public:
  CatchupBudget(std::size_t total, std::size_t per_user) : total_(total), per_user_(per_user) {}
  bool try_take(const std::string& user, std::size_t n);
  // Takes without checking (a chunk read may overshoot its reservation by one row).
  void force_take(const std::string& user, std::size_t n);
  // Gives bytes back; `wake` resumes sessions waiting in line (io thread, not from destructors).
  void give_back(const std::string& user, std::size_t n, bool wake = true);
  void wait(const std::shared_ptr<StreamSession>& s);
  std::size_t used() const { return used_; }
  std::size_t waiting() const { return waiters_.size(); }
  // Bytes one chunk read reserves.
  std::size_t chunk_bytes() const;

 private:
  std::size_t total_, per_user_;
  std::size_t used_ = 0;
  std::unordered_map<std::string, std::size_t> by_user_;
  std::deque<std::weak_ptr<StreamSession>> waiters_;
  bool waking_ = false;
};

class StreamSession : public std::enable_shared_from_this<StreamSession> {
 public:
  StreamSession(App& app, Transport t, Subscription sub, std::string remote);
  virtual ~StreamSession();

  // Sends hello, then either a reset (cursor expired / ahead), the backlog after `cursor`
  // followed by live rows, or only live rows (no cursor).
  void begin(std::optional<std::int64_t> cursor);
  void deliver_live(const OutgoingPtr& out);
  // Queue a message for this connection only (e.g. mutation results on a WebSocket).
  void send_private(Bytes bytes);
  // Server shutdown / policy close: flush what is queued, then close with `reason`.
  void shutdown(const std::string& reason);
  // Ends the stream (after an `unauthorized` error message) once the caller's token has
  // expired; returns true when it did.
  bool token_expired();

  // Resumes a catch-up that waited for memory (CatchupBudget).
  void resume_catch_up() {
    waiting_budget_ = false;
    catch_up();
  }
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

  App& app_;
  std::string remote_;
  long long opened_ms_ = 0;
  std::int64_t sent_ = 0;

 private:
  struct CatchupChunk;
  void enqueue(Bytes bytes, bool catchup = false);
  void pump();
  void catch_up();
  void on_catch_up_read(CatchupChunk chunk);
  void overflow();
  // Gives back the catch-up bytes still queued (the queue is being dropped).
  void release_queued_catchup();
  void release_bytes(std::size_t n);

  // Queued messages; `catchup` ones count against the CatchupBudget until written.
  struct Queued {
    Bytes bytes;
    bool catchup = false;
  };

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
};

// Registry of stream sessions.
class Hub {
 public:
  void add(const std::shared_ptr<StreamSession>& s);
  void remove(StreamSession* s);
  void broadcast(const OutgoingPtr& out);
  void shutdown_all(const std::string& reason);
  std::size_t size() const { return sessions_.size(); }
  // Open streams of one token subject (limits.max_streams_per_user).
  std::size_t streams_of(const std::string& sub) const;

 private:
  std::unordered_map<StreamSession*, std::weak_ptr<StreamSession>> sessions_;
  std::unordered_map<std::string, std::size_t> per_subject_;
};

}  // namespace syncline::server
