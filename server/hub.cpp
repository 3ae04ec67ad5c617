#include "hub.hpp"

#include <chrono>

#include "api.hpp"
#include "core/protocol.hpp"
#include "log.hpp"

namespace syncline::server {
namespace {

constexpr std::size_t kCatchupChunk = 256;

Bytes sse_block(const char* event, const std::string& data, std::optional<std::int64_t> id) {
  std::string s;
  s.reserve(data.size() + 48);
  if (id) {
    s += "id: ";
    s += std::to_string(*id);
    s += "\n";
  }
  s += "event: ";
  s += event;
  s += "\ndata: ";
  s += data;
  s += "\n\n";
  return std::make_shared<const std::string>(std::move(s));
}

ServerMessage to_message(const LogRow& row) {
  if (row.is_event) {
    EventMsg e;
    e.seq = row.seq;
    e.name = row.name;
    e.collection = row.collection;
    e.id = row.id;
    e.data = row.data;
    return e;
  }
  ChangeMsg c;
  c.seq = row.seq;
  c.collection = row.collection;
  c.id = row.id;
  c.op = row.op;
  c.version = row.version;
  c.fields = row.op == ChangeOp::Delete ? Json::object() : row.fields;
  c.origin = row.origin;
  return c;
}

Bytes serialize_message(const ServerMessage& m, Transport t, std::optional<std::int64_t> id) {
  if (t == Transport::Ws) return std::make_shared<const std::string>(encode_ws(m));
  Json body = std::visit([](const auto& v) { return encode(v); }, m);
  return sse_block(message_type(m), body.dump(), id);
}

}  // namespace

Bytes serialize_row(const LogRow& row, Transport t) {
  return serialize_message(to_message(row), t, row.seq);
}

Bytes serialize_leave(const LogRow& row, Transport t) {
  ServerMessage m = to_message(row);
  if (auto* c = std::get_if<ChangeMsg>(&m)) {
    c->op = ChangeOp::Delete;
    c->fields = Json::object();
  }
  return serialize_message(m, t, row.seq);
}

OutgoingPtr make_outgoing(LogRow row) {
  auto out = std::make_shared<Outgoing>();
  ServerMessage m = to_message(row);
  out->sse = serialize_message(m, Transport::Sse, row.seq);
  out->ws = serialize_message(m, Transport::Ws, row.seq);
  if (!row.is_event && row.op == ChangeOp::Update && !row.prior.is_null()) {
    out->sse_leave = serialize_leave(row, Transport::Sse);
    out->ws_leave = serialize_leave(row, Transport::Ws);
  }
  out->row = std::move(row);
  return out;
}

Bytes serialize_hello(std::int64_t seq, Transport t) {
  return serialize_message(HelloMsg{seq}, t, std::nullopt);
}

Bytes serialize_reset(const std::string& reason, std::int64_t seq, Transport t) {
  // The SSE id moves the browser's Last-Event-ID to `seq`, so an automatic reconnect after the
  // re-snapshot resumes from there instead of hitting the same reset again.
  return serialize_message(ResetMsg{reason, seq}, t, seq);
}

Bytes serialize_error(const Error& e, Transport t) {
  return serialize_message(ErrorMsg{e}, t, std::nullopt);
}

// --- Subscription ---

Subscription::Subscription(const Config& config, Claims claims, std::vector<std::string> collections, Filter where)
    : config_(config), claims_(std::move(claims)), where_(std::move(where)) {
  all_ = collections.empty();
  collections_.insert(collections.begin(), collections.end());
}

bool Subscription::subscribed(const std::string& collection) const {
  return all_ || collections_.count(collection) > 0;
}

const Access& Subscription::access(const std::string& collection) const {
  auto it = cache_.find(collection);
  if (it != cache_.end()) return it->second;
  Access a = config_.read_access(collection, claims_);
  if (a.kind != Access::Kind::None && !where_.empty()) {
    if (a.kind == Access::Kind::All) {
      a.kind = Access::Kind::Where;
      a.filter = where_;
    } else {
      a.filter = a.filter.and_also(where_);
    }
  }
  return cache_.emplace(collection, std::move(a)).first->second;
}

Visibility Subscription::visibility(const LogRow& row) const {
  if (row.is_event && row.collection.empty()) {  // dataset-wide event
    return config_.events.may_read(claims_.role) ? Visibility::Show : Visibility::Hidden;
  }
  if (!subscribed(row.collection)) return Visibility::Hidden;
  const Access& a = access(row.collection);
  if (a.kind == Access::Kind::None) return Visibility::Hidden;
  if (a.kind == Access::Kind::All) return Visibility::Show;
  if (row.visibility.is_null()) return Visibility::Hidden;  // event about no (visible) document
  if (a.filter.matches(row.id, row.visibility)) return Visibility::Show;
  // An update that moved the document out of this reader's scope: it must drop its copy.
  if (!row.is_event && row.op == ChangeOp::Update && !row.prior.is_null() && a.filter.matches(row.id, row.prior)) {
    return Visibility::Leave;
  }
  return Visibility::Hidden;
}

// --- StreamSession ---

StreamSession::StreamSession(App& app, Transport t, Subscription sub, std::string remote)
    : app_(app), remote_(std::move(remote)), transport_(t), sub_(std::move(sub)) {
  opened_ms_ = now_mono_ms();
  auto& m = app_.metrics();
  (t == Transport::Sse ? m.sse_connections : m.ws_connections)++;
  m.stream_connections_total++;
}

StreamSession::~StreamSession() {
  // Normally given back already (written, dropped, or the read answered); not at shutdown, when
  // the io_context destroys sessions with their handlers. No waking from here.
  if (catchup_held_) app_.catchup_budget().give_back(sub_.claims().sub, catchup_held_, false);
  app_.hub().remove(this);
  auto& m = app_.metrics();
  (transport_ == Transport::Sse ? m.sse_connections : m.ws_connections)--;
}

void StreamSession::begin(std::optional<std::int64_t> cursor) {
  const std::int64_t head = app_.head_seq();
  enqueue(serialize_hello(head, transport_));
  if (cursor && *cursor < app_.pruned_through()) {
    app_.metrics().resets_sent++;
    enqueue(serialize_reset("cursor_expired", head, transport_));
    live_ = true;
  } else if (cursor && *cursor > head) {
    app_.metrics().resets_sent++;
    enqueue(serialize_reset("cursor_ahead", head, transport_));
    live_ = true;
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
  // to the seq the io thread has broadcast (app_.head_seq()) when the read was asked for: the
  // writer may already have committed newer rows whose broadcast is still on its way here, and
  // reading those too would send them twice. A chunk that reached that head, with the head not
  // moved since, turns the session live in the same io-thread step, so every later row reaches
  // it through deliver_live: nothing is missed and nothing is sent twice. (Rows up to the head
  // are committed before they are broadcast, so the reader sees them.)
  if (!catching_up_ || reading_ || closing_ || closed_) return;
  const Limits& l = app_.config().limits;
  if (queue_.size() >= std::max<std::size_t>(1, l.send_queue_messages / 2) || queued_bytes_ >= l.send_queue_bytes / 2) {
    return;  // on_write_done asks again
  }
  CatchupBudget& budget = app_.catchup_budget();
  const std::string& user = sub_.claims().sub;
  const std::size_t reserve = budget.chunk_bytes();
  if (!budget.try_take(user, reserve)) {
    if (!waiting_budget_) {
      waiting_budget_ = true;
      budget.wait(shared_from_this());
    }
    return;
  }
  catchup_held_ += reserve;
  reading_ = true;
  const std::int64_t from = catchup_next_;
  const std::int64_t upto = app_.head_seq();
  auto self = shared_from_this();
  bool queued = app_.reads().submit([self, sub = sub_, t = transport_, from, upto, reserve](Store& store) {
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
    self->app_.reads().post([self, c = std::move(c)]() mutable { self->on_catch_up_read(std::move(c)); });
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
  CatchupBudget& budget = app_.catchup_budget();
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
  if (c.from < app_.pruned_through()) {
    app_.metrics().resets_sent++;
    catching_up_ = false;
    live_ = true;
    enqueue(serialize_reset("cursor_expired", app_.head_seq(), transport_));
    return budget.give_back(user, 0);
  }
  budget.force_take(user, c.bytes);
  catchup_held_ += c.bytes;
  for (auto& m : c.messages) enqueue(std::move(m), true);
  if (closed_ || closing_) return;  // overflowed
  catchup_next_ = c.last_seq;
  if (c.reached_upto && c.upto == app_.head_seq()) {
    catching_up_ = false;
    live_ = true;
  }
  budget.give_back(user, 0);  // wake others if the reservation freed room
  catch_up();
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
  app_.catchup_budget().give_back(sub_.claims().sub, n);
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
  const Limits& l = app_.config().limits;
  if (queue_.size() + 1 > l.send_queue_messages || queued_bytes_ + bytes->size() > l.send_queue_bytes) {
    if (catchup) release_bytes(bytes->size());
    overflow();
    return;
  }
  queued_bytes_ += bytes->size();
  queue_.push_back(Queued{std::move(bytes), catchup});
  app_.metrics().messages_sent++;
  pump();
}

void StreamSession::overflow() {
  app_.metrics().queue_drops++;
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
    app_.hub().remove(this);
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
    app_.hub().remove(this);
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
    app_.hub().remove(this);
    close_transport(close_reason_);
    return;
  }
  pump();
  if (catching_up_ && queue_.size() < app_.config().limits.send_queue_messages / 4 + 1) catch_up();
}

void StreamSession::terminate(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  catching_up_ = false;
  release_queued_catchup();
  queue_.clear();
  queued_bytes_ = 0;
  app_.hub().remove(this);
  close_transport("");
}

// --- CatchupBudget ---

std::size_t CatchupBudget::chunk_bytes() const {
  constexpr std::size_t kMax = 1u << 20;
  constexpr std::size_t kMin = 64u << 10;
  return std::max(kMin, std::min({kMax, per_user_ / 4, total_ / 8}));
}

bool CatchupBudget::try_take(const std::string& user, std::size_t n) {
  std::size_t& mine = by_user_[user];
  if (used_ + n > total_ || mine + n > per_user_) {
    if (mine == 0) by_user_.erase(user);
    return false;
  }
  used_ += n;
  mine += n;
  return true;
}

void CatchupBudget::force_take(const std::string& user, std::size_t n) {
  if (n == 0) return;
  used_ += n;
  by_user_[user] += n;
}

void CatchupBudget::give_back(const std::string& user, std::size_t n, bool wake) {
  if (n) {
    used_ -= std::min(n, used_);
    auto it = by_user_.find(user);
    if (it != by_user_.end()) {
      it->second -= std::min(n, it->second);
      if (it->second == 0) by_user_.erase(it);
    }
  }
  if (!wake || waking_ || waiters_.empty() || used_ + chunk_bytes() > total_) return;
  // Everyone waiting tries again, oldest first; whoever still finds no room lines up again.
  waking_ = true;
  std::deque<std::weak_ptr<StreamSession>> line;
  line.swap(waiters_);
  for (auto& w : line) {
    if (auto s = w.lock()) s->resume_catch_up();
  }
  waking_ = false;
}

void CatchupBudget::wait(const std::shared_ptr<StreamSession>& s) { waiters_.push_back(s); }

// --- Hub ---

void Hub::add(const std::shared_ptr<StreamSession>& s) {
  if (sessions_.emplace(s.get(), s).second) per_subject_[s->subscription().claims().sub]++;
}

// Called by the session itself (alive) when it ends.
void Hub::remove(StreamSession* s) {
  if (sessions_.erase(s) == 0) return;
  auto it = per_subject_.find(s->subscription().claims().sub);
  if (it != per_subject_.end() && --it->second == 0) per_subject_.erase(it);
}

std::size_t Hub::streams_of(const std::string& sub) const {
  auto it = per_subject_.find(sub);
  return it == per_subject_.end() ? 0 : it->second;
}

void Hub::broadcast(const OutgoingPtr& out) {
  std::vector<std::shared_ptr<StreamSession>> targets;
  targets.reserve(sessions_.size());
  for (auto& [p, w] : sessions_) {
    if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->deliver_live(out);
}

void Hub::shutdown_all(const std::string& reason) {
  std::vector<std::shared_ptr<StreamSession>> targets;
  for (auto& [p, w] : sessions_) {
    if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->shutdown(reason);
}

}  // namespace syncline::server
