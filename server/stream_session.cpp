// Layer: server. The stream session state machine (see stream_session.hpp).
#include "stream_session.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "log.hpp"

namespace syncline::server {
namespace {

constexpr std::size_t kCatchupChunk = 256;

}  // namespace


StreamSession::StreamSession(StreamContext ctx, Transport t, Subscription sub, std::string remote)
    : remote_(std::move(remote)), ctx_(std::move(ctx)), transport_(t), sub_(std::move(sub)) {
  opened_ms_ = now_mono_ms();
  auto& m = *ctx_.metrics;
  (t == Transport::Sse ? m.sse_connections : m.ws_connections)++;
  m.stream_connections_total++;
}

StreamSession::~StreamSession() {
  // Normally given back already (written, dropped, or the read answered); not at shutdown, when
  // the io_context destroys sessions with their handlers. No waking from here.
  if (catchup_held_) ctx_.catchup->give_back(sub_.claims().sub, catchup_held_, false);
  ended();
  auto& m = *ctx_.metrics;
  (transport_ == Transport::Sse ? m.sse_connections : m.ws_connections)--;
}

void StreamSession::ended() {
  if (auto f = std::exchange(on_end_, nullptr)) f(this);
}

void StreamSession::resume_catch_up() {
  waiting_budget_ = false;
  catch_up();
}

void StreamSession::begin(std::optional<std::int64_t> cursor) {
  const std::int64_t head = ctx_.head_seq();
  enqueue(serialize_hello(head, transport_));
  if (cursor && *cursor < ctx_.pruned_through()) {
    ctx_.metrics->resets_sent++;
    enqueue(serialize_reset("cursor_expired", head, transport_));
    live_ = true;
  } else if (cursor && *cursor > head) {
    // Ahead of what this node has broadcast: a snapshot read a moment ago, or a client failing
    // over from a node that is further along. Live from the cursor on (nothing after it can be
    // missed, nothing up to it is sent); the database says whether the cursor exists at all.
    live_ = true;
    catchup_next_ = *cursor;
    check_cursor_ahead(*cursor);
  } else if (cursor && *cursor < head) {
    catching_up_ = true;
    catchup_next_ = *cursor;
    catch_up();
  } else {
    live_ = true;
  }
}

struct StreamSession::CatchupChunk {
  std::int64_t from = 0;
  std::int64_t upto = 0;
  std::vector<Bytes> messages;
  std::size_t bytes = 0;
  std::int64_t last_seq = 0;  // highest seq read (shown or not); `upto` when reached_upto
  bool reached_upto = false;
  std::optional<Error> error;
};

void StreamSession::catch_up() {
  // Rows are read in chunks while the queue has room, on a reader thread (ReadPool), and only up
  // to the seq the io thread has broadcast (ctx_.head_seq()) when the read was asked for: the
  // writer may already have committed newer rows whose broadcast is still on its way here, and
  // reading those too would send them twice. A chunk that reached that head, with the head not
  // moved since, turns the session live in the same io-thread step, so every later row reaches
  // it through deliver_live: nothing is missed and nothing is sent twice. (Rows up to the head
  // are committed before they are broadcast, so the reader sees them.)
  if (!catching_up_ || reading_ || closing_ || closed_) return;
  const Limits& l = *ctx_.limits;
  if (queue_.size() >= std::max<std::size_t>(1, l.send_queue_messages / 2) || queued_bytes_ >= l.send_queue_bytes / 2) {
    return;  // on_write_done asks again
  }
  CatchupBudget& budget = *ctx_.catchup;
  const std::string& user = sub_.claims().sub;
  const std::size_t reserve = budget.chunk_bytes();
  if (!budget.try_take(user, reserve)) {
    if (!waiting_budget_) {
      waiting_budget_ = true;
      budget.wait([weak = weak_from_this()] {
        if (auto s = weak.lock()) s->resume_catch_up();
      });
    }
    return;
  }
  catchup_held_ += reserve;
  reading_ = true;
  const std::int64_t from = catchup_next_;
  const std::int64_t upto = ctx_.head_seq();
  auto self = shared_from_this();
  bool queued = ctx_.reads->submit([self, sub = sub_, t = transport_, from, upto, reserve](Store& store) {
    CatchupChunk c;
    c.from = from;
    c.upto = upto;
    c.last_seq = from;
    auto rows = store.read_log(from, upto, kCatchupChunk, reserve, &c.reached_upto);
    if (!rows) {
      c.error = rows.error();
    } else {
      // Serialised here too, off the io thread: a backlog costs the reader, not the streams.
      for (const LogRow& row : *rows) {
        c.last_seq = row.seq;
        Bytes b;
        switch (sub.visibility(row)) {
          case Visibility::Show: b = serialize_row(row, t); break;
          case Visibility::Leave: b = serialize_leave(row, t); break;
          case Visibility::Hidden: break;
        }
        if (b) {
          c.bytes += b->size();
          c.messages.push_back(std::move(b));
        }
      }
      if (c.reached_upto) c.last_seq = upto;
    }
    self->ctx_.reads->post([self, c = std::move(c)]() mutable { self->on_catch_up_read(std::move(c)); });
  });
  if (!queued) {
    reading_ = false;
    catchup_held_ -= reserve;
    budget.give_back(user, reserve);
    log_warn("catch-up refused: read queue full", {{"remote", remote_}});
    shutdown("overloaded");
  }
}

void StreamSession::on_catch_up_read(CatchupChunk c) {
  reading_ = false;
  CatchupBudget& budget = *ctx_.catchup;
  const std::string& user = sub_.claims().sub;
  const std::size_t reserve = budget.chunk_bytes();
  catchup_held_ -= reserve;
  budget.give_back(user, reserve, false);
  if (!catching_up_ || closing_ || closed_) return budget.give_back(user, 0);
  if (c.error) {
    log_error("catch-up read failed", {{"error", c.error->message}});
    return terminate("internal");
  }
  // Checked after the read: the writer raises the floor before it deletes, so a prune that
  // overlapped this read shows here and the rows read may have a hole.
  if (c.from < ctx_.pruned_through()) {
    ctx_.metrics->resets_sent++;
    catching_up_ = false;
    live_ = true;
    enqueue(serialize_reset("cursor_expired", ctx_.head_seq(), transport_));
    return budget.give_back(user, 0);
  }
  budget.force_take(user, c.bytes);
  catchup_held_ += c.bytes;
  for (auto& m : c.messages) enqueue(std::move(m), true);
  if (closed_ || closing_) return;  // overflowed
  catchup_next_ = c.last_seq;
  if (c.reached_upto && c.upto == ctx_.head_seq()) {
    catching_up_ = false;
    live_ = true;
  }
  budget.give_back(user, 0);  // wake others if the reservation freed room
  catch_up();
}

void StreamSession::check_cursor_ahead(std::int64_t cursor) {
  auto self = shared_from_this();
  bool queued = ctx_.reads->submit([self, cursor](Store& store) {
    auto head = store.committed_head();
    self->ctx_.reads->post([self, cursor, head = std::move(head)] {
      if (self->closing_ || self->closed_) return;
      if (!head) {
        log_error("cursor check failed", {{"error", head.error().message}});
        return self->terminate("internal");
      }
      if (*head >= cursor) return;  // committed: its broadcast is on its way
      // Newer than anything the database has (it was replaced): the client must re-snapshot.
      // Every row up to the database's head is below the cursor, so none was sent yet.
      self->ctx_.metrics->resets_sent++;
      self->catchup_next_ = self->ctx_.head_seq();
      self->enqueue(serialize_reset("cursor_ahead", self->ctx_.head_seq(), self->transport_));
    });
  });
  if (!queued) {
    log_warn("cursor check refused: read queue full", {{"remote", remote_}});
    shutdown("overloaded");
  }
}

void StreamSession::deliver_live(const OutgoingPtr& out) {
  if (!live_ || closing_ || closed_) return;
  // Never send a seq twice (catch-up already covered everything up to the head it read).
  if (out->row.seq <= catchup_next_) return;
  switch (sub_.visibility(out->row)) {
    case Visibility::Show: enqueue(transport_ == Transport::Sse ? out->sse : out->ws); break;
    case Visibility::Leave: enqueue(transport_ == Transport::Sse ? out->sse_leave : out->ws_leave); break;
    case Visibility::Hidden: break;
  }
}

void StreamSession::release_bytes(std::size_t n) {
  catchup_held_ -= std::min(n, catchup_held_);
  ctx_.catchup->give_back(sub_.claims().sub, n);
}

void StreamSession::release_queued_catchup() {
  std::size_t n = 0;
  for (const Queued& q : queue_) {
    if (q.catchup) n += q.bytes->size();
  }
  if (n) release_bytes(n);
}

void StreamSession::send_private(Bytes bytes) {
  if (closing_ || closed_) return;
  enqueue(std::move(bytes));
}

void StreamSession::enqueue(Bytes bytes, bool catchup) {
  if (closing_ || closed_) {
    if (catchup) release_bytes(bytes->size());
    return;
  }
  const Limits& l = *ctx_.limits;
  if (queue_.size() + 1 > l.send_queue_messages || queued_bytes_ + bytes->size() > l.send_queue_bytes) {
    if (catchup) release_bytes(bytes->size());
    overflow();
    return;
  }
  queued_bytes_ += bytes->size();
  queue_.push_back(Queued{std::move(bytes), catchup});
  ctx_.metrics->messages_sent++;
  pump();
}

void StreamSession::overflow() {
  ctx_.metrics->queue_drops++;
  log_warn("slow consumer cut off",
           {{"remote", remote_}, {"transport", transport_ == Transport::Sse ? "sse" : "websocket"},
            {"queued", queue_.size()}, {"queued_bytes", queued_bytes_}, {"sent", sent_}});
  // Drop what is queued: memory is released now, and the final words go out as soon as the
  // write in flight (if any) completes.
  release_queued_catchup();
  queue_.clear();
  queued_bytes_ = 0;
  closing_ = true;
  close_reason_ = codes::kSlowConsumer;
  catching_up_ = false;
  if (!writing_) {
    closed_ = true;
    ended();
    close_transport(close_reason_);
  }
}

bool StreamSession::token_expired() {
  if (closing_ || closed_) return true;
  const long long now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  if (!claims_expired(subscription().claims(), now_s)) return false;
  send_private(serialize_error(make_error(codes::kUnauthorized, "the token has expired"), transport_));
  shutdown("token_expired");
  return true;
}

void StreamSession::shutdown(const std::string& reason) {
  if (closing_ || closed_) return;
  closing_ = true;
  close_reason_ = reason;
  catching_up_ = false;
  if (!writing_ && queue_.empty()) {
    closed_ = true;
    ended();
    close_transport(close_reason_);
  }
}

void StreamSession::pump() {
  if (writing_ || closed_ || queue_.empty()) return;
  // Hand the transport everything queued (bounded), so one completion drains many messages
  // instead of one: a burst of changes costs a few syscalls per connection, not one each.
  constexpr std::size_t kMaxBatchMessages = 256;
  constexpr std::size_t kMaxBatchBytes = 512 * 1024;
  auto batch = std::make_shared<std::vector<Bytes>>();
  std::size_t bytes = 0;
  while (!queue_.empty() && batch->size() < kMaxBatchMessages && (batch->empty() || bytes < kMaxBatchBytes)) {
    Queued& q = queue_.front();
    bytes += q.bytes->size();
    queued_bytes_ -= q.bytes->size();
    if (q.catchup) in_flight_catchup_bytes_ += q.bytes->size();
    batch->push_back(std::move(q.bytes));
    queue_.pop_front();
  }
  writing_ = true;
  in_flight_ = batch->size();
  write_batch(std::move(batch));
}

void StreamSession::on_write_done(bool ok) {
  writing_ = false;
  if (in_flight_catchup_bytes_) {
    release_bytes(in_flight_catchup_bytes_);
    in_flight_catchup_bytes_ = 0;
  }
  if (closed_) return;
  if (!ok) {
    terminate("write_failed");
    return;
  }
  sent_ += static_cast<std::int64_t>(in_flight_);
  in_flight_ = 0;
  if (closing_ && (close_reason_ == codes::kSlowConsumer || queue_.empty())) {
    closed_ = true;
    ended();
    close_transport(close_reason_);
    return;
  }
  pump();
  if (catching_up_ && queue_.size() < ctx_.limits->send_queue_messages / 4 + 1) catch_up();
}

void StreamSession::terminate(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  catching_up_ = false;
  release_queued_catchup();
  queue_.clear();
  queued_bytes_ = 0;
  ended();
  close_transport("");
}

}  // namespace syncline::server
