#include "core/engine.hpp"

#include "core/base_image.hpp"
#include "core/json_bounded.hpp"

#include <algorithm>

namespace syncline {

bool EngineOutput::empty() const {
  return changes.empty() && queries_changed.empty() && aggregates_changed.empty() && settled.empty() &&
         events.empty() && dirty_docs.empty() && !outbox_dirty && !meta_dirty && !history_dirty &&
         !need_snapshot;
}

Engine::Engine(EngineOptions options) : options_(std::move(options)), history_(options_.history_limit) {
  if (auto f = Filter::parse(options_.where)) where_ = std::move(*f);
  std::vector<std::string> colls = options_.collections;
  std::sort(colls.begin(), colls.end());
  colls.erase(std::unique(colls.begin(), colls.end()), colls.end());
  subscription_ = Json{{"collections", std::move(colls)}, {"where", where_.to_string()}};
  now_ms_ = options_.now_ms;
}

std::optional<Json> Engine::canonical_subscription(const Json& sub) {
  if (!sub.is_object()) return std::nullopt;
  auto c = sub.find("collections");
  auto w = sub.find("where");
  if (c == sub.end() || !c->is_array()) return std::nullopt;
  std::vector<std::string> colls;
  for (const auto& name : *c) {
    if (!name.is_string()) return std::nullopt;
    colls.push_back(name.get<std::string>());
  }
  std::sort(colls.begin(), colls.end());
  colls.erase(std::unique(colls.begin(), colls.end()), colls.end());
  std::string where;
  if (w != sub.end() && !w->is_null()) {
    if (!w->is_string()) return std::nullopt;
    auto f = Filter::parse(w->get<std::string>());
    if (!f) return std::nullopt;
    where = f->to_string();
  }
  return Json{{"collections", std::move(colls)}, {"where", std::move(where)}};
}

std::optional<Error> subscription_shape_error(const Json& sub, RegisteredCode code) {
  if (!sub.is_object()) return make_error(code, "subscription must be an object", "subscription");
  auto c = sub.find("collections");
  if (c == sub.end() || !c->is_array()) {
    return make_error(code, "subscription collections must be an array", "subscription.collections");
  }
  for (const auto& name : *c) {
    if (!name.is_string()) {
      return make_error(code, "subscription collections must be strings", "subscription.collections");
    }
  }
  if (auto w = sub.find("where"); w != sub.end() && !w->is_null() && !w->is_string()) {
    return make_error(code, "subscription where must be a string", "subscription.where");
  }
  return std::nullopt;
}

void Engine::follow_subscription(const std::optional<Json>& upstream, std::int64_t now_ms) {
  clock(now_ms);
  std::optional<Json> canon = upstream ? canonical_subscription(*upstream) : std::nullopt;
  const bool matches = canon && *canon == subscription_;
  if (matches == upstream_matches_) return;
  upstream_matches_ = matches;
  if (matches) return;  // still needs its snapshot: what it followed meanwhile left gaps
  need_snapshot_ = true;
  rewrite_on_snapshot_ = true;
  out_.meta_dirty = true;
  history_.push(HistoryEntry{now_ms, "subscription_mismatch", 0, {}, {},
                             Json{{"own", subscription_}, {"upstream", canon ? *canon : Json(nullptr)}}});
  out_.history_dirty = true;
}

bool Engine::subscribed(const std::string& collection) const {
  if (options_.collections.empty()) return true;
  return std::find(options_.collections.begin(), options_.collections.end(), collection) !=
         options_.collections.end();
}

// ---------------------------------------------------------------- visible view

std::optional<Json> Engine::visible_fields(const DocKey& key) const {
  auto ov = overlay_.find(key);
  if (ov != overlay_.end()) {
    if (!ov->second) return std::nullopt;
    return ov->second->fields;
  }
  const Document* d = base_.find(key);
  if (!d || d->deleted) return std::nullopt;
  return d->fields;
}

Engine::VisibleMeta Engine::visible_meta(const DocKey& key) const {
  const Document* d = get(key.collection, key.id);
  return VisibleMeta{d ? d->version : 0, d && overlay_.count(key) > 0};
}

const Document* Engine::get(const std::string& collection, const std::string& id) const {
  DocKey key{collection, id};
  auto ov = overlay_.find(key);
  if (ov != overlay_.end()) return ov->second ? &*ov->second : nullptr;
  const Document* d = base_.find(key);
  return (d && !d->deleted) ? d : nullptr;
}

bool Engine::is_pending(const std::string& collection, const std::string& id) const {
  return overlay_.count(DocKey{collection, id}) > 0;
}

void Engine::for_each_visible(const std::string& collection,
                              const std::function<void(const Document&)>& fn) const {
  // No pending write in this collection (the common case, and every cold start): the base is
  // the view, already in id order.
  auto first = overlay_.lower_bound(DocKey{collection, ""});
  if (first == overlay_.end() || first->first.collection != collection) {
    base_.for_each_live(collection, fn);
    return;
  }
  // Base documents without overlay, then overlaid ones; both in id order, merged.
  std::vector<const Document*> docs;
  base_.for_each_live(collection, [&](const Document& d) {
    if (!overlay_.count(d.key())) docs.push_back(&d);
  });
  for (auto it = overlay_.lower_bound(DocKey{collection, ""});
       it != overlay_.end() && it->first.collection == collection; ++it) {
    if (it->second) docs.push_back(&*it->second);
  }
  std::sort(docs.begin(), docs.end(), [](const Document* a, const Document* b) { return a->id < b->id; });
  for (const Document* d : docs) fn(*d);
}

std::vector<Document> Engine::documents(const std::string& collection) const {
  std::vector<Document> out;
  for_each_visible(collection, [&](const Document& d) { out.push_back(d); });
  return out;
}

void Engine::emit_change(const DocKey& key, std::optional<Json> before, bool meta_changed) {
  // The visible fields after the change are read where they live: copied only into the change
  // detail, and only when the adapter asked for it.
  const Document* now = get(key.collection, key.id);
  const Json* a = now ? &now->fields : nullptr;
  const Json* b = before ? &*before : nullptr;
  const bool fields_changed = (a == nullptr) != (b == nullptr) || (a && *a != *b);
  const auto record = [&] {
    DocChange c{key.collection, key.id, std::nullopt, std::nullopt};
    if (change_detail_) {
      if (b) c.before = dump_nothrow(*b);
      if (a) c.after = dump_nothrow(*a);
    }
    out_.changes.push_back(std::move(c));
  };
  // Only the version or the pending flag of a visible document moved: the queries showing it
  // changed, the aggregates (which read fields only) did not.
  if (!fields_changed) {
    if (!meta_changed || !a) return;
    for (auto& [qid, q] : queries_) {
      if (q.spec().collection == key.collection && q.in_result(key.id)) out_.queries_changed.insert(qid);
    }
    record();
    return;
  }
  for (auto& [qid, q] : queries_) {
    if (q.spec().collection != key.collection) continue;
    const std::size_t total_before = q.total_matches();
    // A match entering or leaving outside the window changes only the total: still a change.
    if (q.on_change(key.id, b, a) || q.total_matches() != total_before) out_.queries_changed.insert(qid);
  }
  for (auto& [aid, agg] : aggregates_) {
    if (agg.spec().collection == key.collection && agg.on_change(key.id, b, a)) {
      out_.aggregates_changed.insert(aid);
    }
  }
  record();
}

// Re-applies the pending mutations of one document on top of its base state.
void Engine::rebase(const DocKey& key, std::optional<std::optional<Json>> before_arg,
                    std::optional<VisibleMeta> before_meta) {
  std::optional<Json> before = before_arg ? std::move(*before_arg) : visible_fields(key);
  const VisibleMeta meta_before = before_meta ? *before_meta : visible_meta(key);
  const Document* base = base_.find(key);
  // Other tabs' pending writes first, then this engine's own (they are the newest here). Each
  // replays through the server's rule on the newest state: an increment adds to whatever the
  // base is now, never restores the value it computed when it was made. serverTime shows the
  // local time the write was queued (or the latest clock) until the server's value arrives.
  std::vector<std::pair<const Mutation*, ApplyContext>> pending;
  for (const Mutation* m : foreign_.for_key(key)) pending.emplace_back(m, ApplyContext{now_ms_});
  for (const OutboxEntry* e : outbox_.for_key(key)) {
    // An acknowledged mutation whose seq the base has already seen is part of the base (seen: the
    // document is at that version or later, or the stream delivered everything up to it; a group
    // member waits in the outbox for its siblings after that).
    if (e->applied_seq && ((base && base->version >= *e->applied_seq) || *e->applied_seq <= cursor_)) continue;
    pending.emplace_back(&e->mutation, ApplyContext{e->queued_ms != 0 ? e->queued_ms : now_ms_});
  }
  if (pending.empty()) {
    overlay_.erase(key);
  } else {
    std::optional<Document> cur;
    if (base && !base->deleted) cur = *base;
    std::int64_t version = base ? base->version : 0;
    for (const auto& [m, ctx] : pending) {
      Document probe;
      const Document* current = nullptr;
      if (cur) {
        current = &*cur;
      } else if (base) {
        probe = *base;  // tombstone: keeps the version for base_version checks
        probe.deleted = true;
        current = &probe;
      }
      auto r = apply_mutation(current, *m, ctx);
      if (!r) continue;  // the server will reject it too; its effect stays invisible
      if (r->fields) {
        cur = Document{key.collection, key.id, version, std::move(*r->fields), false};
      } else {
        cur.reset();
      }
    }
    overlay_[key] = std::move(cur);
  }
  emit_change(key, std::move(before), visible_meta(key) != meta_before);
}

// ---------------------------------------------------------------- mutations

namespace {

constexpr std::size_t kMaxOpsPerMutation = 64;  // as the protocol decoder allows

// The checks decode_mutation makes on the wire, for a request built by the app: what the server
// would refuse as a malformed request is refused here before it takes a mid.
std::optional<Error> check_request(const MutationRequest& m, const std::string& at, std::optional<Filter>& condition) {
  const auto bad = [](const std::string& message, const std::string& field) {
    return make_error(codes::kInvalidMutation, message, field);
  };
  if (!is_valid_collection(m.collection)) {
    return bad("collection name '" + m.collection + "' is not valid", at + ".collection");
  }
  if (!is_valid_id(m.id)) return bad("document id '" + m.id + "' is not valid", at + ".id");
  if (m.op != MutationOp::Delete && !m.fields.is_object()) return bad("fields must be an object", at + ".fields");
  if (m.base_version && *m.base_version < 0) return bad("base_version must be >= 0", at + ".base_version");
  if (!m.ops.empty()) {
    if (m.op == MutationOp::Delete) return bad("a delete cannot carry ops", at + ".ops");
    if (m.ops.size() > kMaxOpsPerMutation) {
      return bad("at most " + std::to_string(kMaxOpsPerMutation) + " ops per mutation", at + ".ops");
    }
    for (const auto& [name, op] : m.ops) {
      const std::string path = at + ".ops." + name;
      if (name.empty()) return bad("an op needs a field name", at + ".ops");
      if (m.fields.contains(name)) return bad(name + " is named both in fields and in ops", path);
      // The wire form is the one definition of a valid op.
      if (auto d = decode_field_op(encode(op), path); !d) return bad(d.error().message, d.error().field);
    }
  }
  if (m.condition) {
    if (m.op == MutationOp::Insert) return bad("an insert cannot carry a condition", at + ".if");
    auto f = Filter::parse(*m.condition);
    if (!f) return bad("condition: " + f.error().message, at + ".if");
    condition = std::move(*f);
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<std::int64_t>> Engine::mutate(const std::vector<MutationRequest>& batch, std::int64_t now_ms,
                                                 bool atomic) {
  std::vector<std::optional<Filter>> conditions(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto e = check_request(batch[i], "mutations[" + std::to_string(i) + "]", conditions[i])) return *e;
  }
  // The server takes a group in one request of at most max_batch mutations.
  if (atomic && batch.size() > options_.max_batch) {
    return make_error(codes::kInvalidMutation,
                      "an atomic batch holds at most " + std::to_string(options_.max_batch) + " mutations",
                      "mutations");
  }
  clock(now_ms);
  const bool grouped = atomic && batch.size() > 1;
  const std::int64_t first = outbox_.next_mid();
  std::vector<std::int64_t> mids;
  mids.reserve(batch.size());
  std::set<DocKey> keys;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const MutationRequest& req = batch[i];
    Mutation m;
    m.op = req.op;
    m.collection = req.collection;
    m.id = req.id;
    m.fields = req.op == MutationOp::Delete ? Json::object() : req.fields;
    m.base_version = req.base_version;
    m.ops = req.ops;
    m.condition = std::move(conditions[i]);
    if (grouped) {
      m.group = first;
      m.group_size = static_cast<std::int64_t>(batch.size());
    }
    keys.insert(m.key());
    mids.push_back(outbox_.push(std::move(m), now_ms));
  }
  // The batch shows as one (a group in particular): each document changes once, after every
  // mutation is queued.
  for (const DocKey& key : keys) rebase(key);
  if (!mids.empty()) {
    out_.outbox_dirty = true;
    out_.meta_dirty = true;
  }
  return mids;
}

std::optional<MutationBatch> Engine::take_batch(std::int64_t now_ms, std::int64_t durable_next_mid) {
  clock(now_ms);
  if (!transport_ready_ || in_flight_) return std::nullopt;
  std::vector<Mutation> pending = outbox_.unacknowledged(options_.max_batch, durable_next_mid);
  if (pending.empty()) return std::nullopt;
  in_flight_ = InFlight{pending.front().mid, pending.back().mid, now_ms};
  return MutationBatch{options_.client_id, std::move(pending)};
}

void Engine::on_batch_failed() { in_flight_.reset(); }

void Engine::set_transport_ready(bool ready) {
  transport_ready_ = ready;
  // Whatever was in flight may never be answered on a new connection: resend it (the
  // server answers `duplicate` for what it already applied).
  if (!ready) in_flight_.reset();
}

void Engine::tick(std::int64_t now_ms) {
  clock(now_ms);
  if (in_flight_ && now_ms - in_flight_->sent_at_ms >= options_.request_timeout_ms) in_flight_.reset();
  if (!foreign_.empty()) rebase_all(foreign_.expire(now_ms));
}

// ---------------------------------------------------------------- other tabs' pending writes

std::vector<Mutation> Engine::foreign_filter(const std::string& client, std::vector<Mutation> mutations) const {
  if (client == options_.client_id) return {};
  std::erase_if(mutations, [&](const Mutation& m) { return !subscribed(m.collection); });
  return mutations;
}

void Engine::rebase_all(const std::set<DocKey>& keys) {
  for (const auto& key : keys) rebase(key);
}

void Engine::replace_foreign(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms) {
  clock(now_ms);
  if (client == options_.client_id) return;
  rebase_all(foreign_.replace(client, foreign_filter(client, std::move(mutations)), now_ms));
}

void Engine::add_foreign(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms) {
  clock(now_ms);
  rebase_all(foreign_.add(client, foreign_filter(client, std::move(mutations)), now_ms));
}

void Engine::drop_foreign(const std::string& client, const std::vector<std::int64_t>& mids) {
  rebase_all(foreign_.drop(client, mids));
}

void Engine::settle_applied(OutboxEntry& entry, std::int64_t seq) {
  entry.applied_seq = seq;
  SettledMutation s;
  s.mid = entry.mutation.mid;
  s.applied = true;
  s.seq = seq;
  s.collection = entry.mutation.collection;
  s.id = entry.mutation.id;
  out_.settled.push_back(std::move(s));
  out_.outbox_dirty = true;
}

// Removes acknowledged mutations whose effect the replica has seen.
void Engine::confirm_seen() {
  std::vector<std::pair<std::int64_t, DocKey>> done;
  for (const auto& e : outbox_.entries()) {
    if (!e.applied_seq) continue;
    const std::int64_t seq = *e.applied_seq;
    const Document* base = base_.find(e.mutation.key());
    bool seen = seq <= cursor_ || (base && base->version >= seq) || !subscribed(e.mutation.collection);
    // A group member stays while another member awaits its verdict: a resend carries the whole
    // group (Outbox::unacknowledged), and the server answers the settled ones `duplicate`.
    if (seen && e.mutation.group && outbox_.group_unacknowledged(*e.mutation.group)) seen = false;
    if (seen) done.emplace_back(e.mutation.mid, e.mutation.key());
  }
  for (auto& [mid, key] : done) {
    outbox_.remove(mid);
    rebase(key);
  }
  if (!done.empty()) out_.outbox_dirty = true;
}

void Engine::handle_results(const MutationResults& results, std::int64_t now_ms) {
  // Rejections leave the outbox together and each document is rebased once afterwards, so a
  // rejected group (answered in one message) rolls back in one step, one change per document.
  std::set<DocKey> rolled_back;
  const auto reject = [&](const OutboxEntry& entry, const MutationResult& r, std::int64_t failed_mid) {
    Mutation m = entry.mutation;
    outbox_.remove(m.mid);
    out_.outbox_dirty = true;
    SettledMutation s;
    s.mid = m.mid;
    s.code = r.code;
    s.message = r.message;
    s.collection = m.collection;
    s.id = m.id;
    s.failed_mid = failed_mid;
    if (r.mid == m.mid) s.current = r.current;
    out_.settled.push_back(std::move(s));
    Json detail{{"mid", m.mid}, {"code", r.code}, {"message", r.message}};
    if (failed_mid != 0) detail["failed_mid"] = failed_mid;
    history_.push(HistoryEntry{now_ms, "rejected", 0, m.collection, m.id, std::move(detail)});
    out_.history_dirty = true;
    rolled_back.insert(m.key());
  };
  for (const auto& r : results.results) {
    OutboxEntry* entry = outbox_.find(r.mid);
    if (!entry || entry->applied_seq) continue;
    const bool rejected = r.status == ResultStatus::Rejected ||
                          (r.status == ResultStatus::Duplicate && !r.code.empty());
    if (!rejected) {
      // A duplicate whose outcome the server no longer retains was applied long ago.
      settle_applied(*entry, r.seq);
      continue;
    }
    const std::optional<std::int64_t> group = entry->mutation.group;
    if (!group) {
      reject(*entry, r, r.failed_mid);
      continue;
    }
    // A group is applied all or none: one rejected member means none of them applies. Every
    // member still waiting goes now, even one the server's answer left out, so no partial
    // group stays behind (the server refuses to take one).
    const std::int64_t failed_mid = r.failed_mid != 0 ? r.failed_mid : r.mid;
    std::vector<std::int64_t> members;
    for (const auto& e : outbox_.entries()) {
      if (e.mutation.group == group && !e.applied_seq) members.push_back(e.mutation.mid);
    }
    for (std::int64_t mid : members) {
      const OutboxEntry* member = outbox_.find(mid);
      // The member's own answer, when the message holds one, gives its code and current.
      const MutationResult* own = &r;
      for (const auto& other : results.results) {
        if (other.mid == mid && other.status != ResultStatus::Applied && !other.code.empty()) own = &other;
      }
      reject(*member, *own, own->failed_mid != 0 ? own->failed_mid : failed_mid);
    }
  }
  rebase_all(rolled_back);
  // Only an answer to the batch in flight frees the slot: a late second answer to an older
  // (duplicated) request must not trigger a needless resend of the current one.
  if (in_flight_) {
    for (const auto& r : results.results) {
      if (r.mid >= in_flight_->first_mid && r.mid <= in_flight_->last_mid) {
        in_flight_.reset();
        break;
      }
    }
  }
  confirm_seen();
}

void Engine::handle_change(ChangeMsg c, std::int64_t now_ms) {
  if (c.origin && c.origin->client == options_.client_id) {
    if (OutboxEntry* e = outbox_.find(c.origin->mid); e && !e->applied_seq) settle_applied(*e, c.seq);
  }
  // A change outside this subscription on a stream of another subscription (another tab's, see
  // follow_subscription): not applied, except that a document it moves out of the `where`
  // leaves the base, as the server's `delete` for a document leaving a reader's scope would make
  // it. On its own stream the server decides what this subscription receives.
  bool skip = false;
  if (!upstream_matches_ && !subscribed(c.collection)) {
    skip = true;
  } else if (!upstream_matches_ && c.op != ChangeOp::Delete && !where_.empty() && !where_.matches(c.id, c.fields)) {
    const Document* had = base_.find(c.collection, c.id);
    if (!had || had->deleted) {
      skip = true;
    } else {
      c.op = ChangeOp::Delete;
      c.fields = Json::object();
    }
  }
  // A change at or below the cursor was seen already (a duplicated delivery, or frames another
  // tab replays to catch this one up): applying it again is harmless, logging it twice is not.
  if (c.seq > cursor_ && !skip) {
    history_.push(HistoryEntry{now_ms, to_string(c.op), c.seq, c.collection, c.id, Json::object()});
    out_.history_dirty = true;
  }
  DocKey key{c.collection, c.id};
  // The visible fields before the change. Without pending writes on the document they are the
  // base fields the change replaces: the store hands those over instead of us copying them.
  const bool overlaid = overlay_.count(key) > 0;
  std::optional<Json> before = overlaid ? visible_fields(key) : std::nullopt;
  const VisibleMeta meta_before = visible_meta(key);
  // Another tab's write the server has decided (with every earlier mid of that tab): it leaves
  // the foreign set in the same step as the base takes it, so the view never flickers back.
  std::set<DocKey> foreign_touched;
  bool key_touched = false;
  if (c.origin && c.origin->client != options_.client_id && !foreign_.empty()) {
    foreign_touched = foreign_.drop_through(c.origin->client, c.origin->mid);
    key_touched = foreign_touched.erase(key) > 0;
  }
  const std::int64_t seq = c.seq;
  const bool applied = !skip && base_.apply(std::move(c), overlaid ? nullptr : &before);
  if (seq > cursor_) {
    cursor_ = seq;
    out_.meta_dirty = true;
  }
  if (applied) {
    out_.dirty_docs.insert(key);
    rebase(key, std::move(before), meta_before);
  } else if (key_touched) {
    rebase(key, std::move(before), meta_before);
  }
  rebase_all(foreign_touched);
  confirm_seen();
}

Result<bool> Engine::receive(ServerMessage&& message, std::int64_t now_ms) {
  clock(now_ms);
  if (auto* c = std::get_if<ChangeMsg>(&message)) {
    handle_change(std::move(*c), now_ms);
    return true;
  }
  return receive(static_cast<const ServerMessage&>(message), now_ms);
}

Result<bool> Engine::receive(const ServerMessage& message, std::int64_t now_ms) {
  clock(now_ms);
  if (const auto* c = std::get_if<ChangeMsg>(&message)) {
    handle_change(*c, now_ms);
  } else if (const auto* e = std::get_if<EventMsg>(&message)) {
    if (e->seq <= cursor_) return true;  // seen already: the app hears an event once
    if (!upstream_matches_ && !e->collection.empty() && !subscribed(e->collection)) {  // another tab's stream
      cursor_ = e->seq;
      out_.meta_dirty = true;
      confirm_seen();
      return true;
    }
    history_.push(HistoryEntry{now_ms, e->name, e->seq, e->collection, e->id, e->data});
    out_.history_dirty = true;
    out_.events.push_back(*e);
    if (e->seq > cursor_) {
      cursor_ = e->seq;
      out_.meta_dirty = true;
      confirm_seen();
    }
  } else if (const auto* h = std::get_if<HelloMsg>(&message)) {
    stream_head_ = h->seq;
  } else if (const auto* r = std::get_if<ResetMsg>(&message)) {
    need_snapshot_ = true;
    out_.need_snapshot = true;
    out_.meta_dirty = true;
    history_.push(HistoryEntry{now_ms, "reset", r->seq, {}, {}, Json{{"reason", r->reason}}});
    out_.history_dirty = true;
  } else if (const auto* res = std::get_if<MutationResults>(&message)) {
    handle_results(*res, now_ms);
  } else if (const auto* err = std::get_if<ErrorMsg>(&message)) {
    history_.push(HistoryEntry{now_ms, "error", 0, {}, {},
                               Json{{"code", err->error.code}, {"message", err->error.message}}});
    out_.history_dirty = true;
  }
  return true;
}

void Engine::apply_snapshot(const std::vector<std::string>& collections, std::vector<Document> docs,
                            std::int64_t seq, std::int64_t now_ms) {
  clock(now_ms);
  std::vector<std::string> colls = collections;
  if (colls.empty()) colls = options_.collections;
  if (colls.empty()) {
    colls = base_.collections();
    for (const auto& d : docs) {
      if (std::find(colls.begin(), colls.end(), d.collection) == colls.end()) colls.push_back(d.collection);
    }
  }
  std::set<DocKey> incoming;
  for (const auto& d : docs) incoming.insert(d.key());
  // Documents no longer in the snapshot were deleted or became unreadable.
  std::vector<DocKey> gone;
  for (const auto& c : colls) {
    base_.for_each_live(c, [&](const Document& d) {
      if (!incoming.count(d.key())) gone.push_back(d.key());
    });
  }
  for (const auto& key : gone) {
    std::optional<Json> before = visible_fields(key);
    const VisibleMeta meta_before = visible_meta(key);
    base_.erase(key);
    out_.dirty_docs.insert(key);
    rebase(key, std::move(before), meta_before);
  }
  for (auto& d : docs) {
    DocKey key = d.key();
    const Document* cur = base_.find(key);
    if (cur && *cur == d) continue;
    std::optional<Json> before = visible_fields(key);
    const VisibleMeta meta_before = visible_meta(key);
    base_.put(std::move(d));
    out_.dirty_docs.insert(key);
    rebase(key, std::move(before), meta_before);
  }
  // The snapshot is the truth as of `seq`: the cursor moves to it even if it went backwards
  // (a server restored from backup), so the stream resumes from there.
  cursor_ = seq;
  out_.meta_dirty = true;
  // Taken while following a stream of another subscription, the replica stays incomplete (see
  // follow_subscription). Once it matches again, the store (written meanwhile by a leader of
  // that other subscription) gets every document again.
  need_snapshot_ = !upstream_matches_;
  if (upstream_matches_ && rewrite_on_snapshot_) {
    rewrite_on_snapshot_ = false;
    base_.for_each([&](const Document& d) { out_.dirty_docs.insert(d.key()); });
  }
  history_.push(HistoryEntry{now_ms, "snapshot", seq, {}, {}, Json{{"docs", incoming.size()}}});
  out_.history_dirty = true;
  confirm_seen();
}

void Engine::mark_all_dirty() {
  base_.for_each([&](const Document& d) { out_.dirty_docs.insert(d.key()); });
  out_.outbox_dirty = true;
  out_.meta_dirty = true;
  out_.history_dirty = true;
}

void Engine::record(HistoryEntry entry) {
  history_.push(std::move(entry));
  out_.history_dirty = true;
}

EngineOutput Engine::take_output() {
  EngineOutput o = std::move(out_);
  out_ = EngineOutput{};
  return o;
}

// ---------------------------------------------------------------- queries

int Engine::add_query(QuerySpec spec) {
  int id = next_query_id_++;
  auto [it, _] = queries_.emplace(id, LiveQuery(std::move(spec)));
  LiveQuery& q = it->second;
  for_each_visible(q.spec().collection, [&](const Document& d) { q.on_change(d.id, nullptr, &d.fields); });
  return id;
}

void Engine::remove_query(int id) { queries_.erase(id); }

Result<std::vector<Document>> Engine::query_result(int id) const {
  auto it = queries_.find(id);
  if (it == queries_.end()) return make_error(codes::kUnknownQuery, "no live query " + std::to_string(id));
  std::vector<Document> out;
  for (const auto& doc_id : it->second.result_ids()) {
    if (const Document* d = get(it->second.spec().collection, doc_id)) out.push_back(*d);
  }
  return out;
}

Result<std::vector<std::string>> Engine::query_ids(int id) const {
  auto it = queries_.find(id);
  if (it == queries_.end()) return make_error(codes::kUnknownQuery, "no live query " + std::to_string(id));
  return it->second.result_ids();
}

Result<std::size_t> Engine::query_total(int id) const {
  auto it = queries_.find(id);
  if (it == queries_.end()) return make_error(codes::kUnknownQuery, "no live query " + std::to_string(id));
  return it->second.total_matches();
}

int Engine::add_aggregate(AggregateSpec spec) {
  int id = next_query_id_++;
  auto [it, _] = aggregates_.emplace(id, GroupedAggregate(std::move(spec)));
  GroupedAggregate& a = it->second;
  for_each_visible(a.spec().collection, [&](const Document& d) { a.on_change(d.id, nullptr, &d.fields); });
  return id;
}

void Engine::remove_aggregate(int id) { aggregates_.erase(id); }

const GroupedAggregate* Engine::aggregate(int id) const {
  auto it = aggregates_.find(id);
  return it == aggregates_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------- persistence

std::string Engine::snapshot_bytes() const {
  Json docs = Json::array();
  base_.for_each([&](const Document& d) { docs.push_back(document_to_json(d)); });
  Json state = {{"v", 1},
                {"client", options_.client_id},
                {"cursor", cursor_},
                {"needSnapshot", need_snapshot_},
                {"subscription", subscription_},
                {"docs", std::move(docs)},
                {"outbox", outbox_.to_json()},
                {"history", history_.to_json()}};
  std::vector<std::uint8_t> bytes = Json::to_cbor(state);
  return std::string(bytes.begin(), bytes.end());
}

namespace {

// Saved state is untrusted (IndexedDB, files): it may be truncated, corrupted or hostile.
// Nesting: a state is {docs:[{fields:{...}}]} etc., and fields nest at most 62 levels when they
// arrive through the protocol (kMaxDepth 64 there), so 96 leaves room and keeps recursion shallow
// (nlohmann's CBOR reader and json copies recurse once per level).
constexpr std::size_t kMaxStateDepth = 96;

}  // namespace

Result<std::unique_ptr<Engine>> Engine::restore(std::string_view bytes, EngineOptions options) {
  Json state;
  BoundedDomParser sax(state, bytes.size(), kMaxStateDepth);
  const bool parsed = Json::sax_parse(bytes.begin(), bytes.end(), &sax, Json::input_format_t::cbor, true);
  if (!parsed || state.is_discarded() || !state.is_object()) {
    return make_error(codes::kInvalidSnapshot, "saved state is not valid CBOR");
  }
  return restore_json(state, std::move(options));
}

Result<std::unique_ptr<Engine>> Engine::restore_json(const Json& state, EngineOptions options, std::string_view image_text) {
  if (!state.is_object()) return make_error(codes::kInvalidSnapshot, "saved state must be an object");
  if (!within_depth(state, kMaxStateDepth)) {
    return make_error(codes::kInvalidSnapshot, "saved state nests deeper than " + std::to_string(kMaxStateDepth) + " levels");
  }
  auto v = state.find("v");
  if (v == state.end() || !v->is_number_integer() || v->get<int>() != 1) {
    return make_error(codes::kInvalidSnapshot, "unsupported saved state version", "v");
  }
  auto client = state.find("client");
  auto cursor = state.find("cursor");
  auto docs = state.find("docs");
  auto outbox = state.find("outbox");
  auto history = state.find("history");
  if (client == state.end() || !client->is_string() || cursor == state.end() || !cursor->is_number_integer() ||
      docs == state.end() || !docs->is_array() || outbox == state.end() || history == state.end()) {
    return make_error(codes::kInvalidSnapshot, "saved state is missing members");
  }
  options.client_id = client->get<std::string>();
  auto ob = Outbox::from_json(*outbox);
  if (!ob) return ob.error();
  auto hist = EventHistory::from_json(*history);
  if (!hist) return hist.error();
  auto engine = std::make_unique<Engine>(options);
  engine->cursor_ = cursor->get<std::int64_t>();
  if (auto ns = find_renamed(state, "needSnapshot", "need_snapshot"); ns != state.end() && !ns->is_null()) {
    if (!ns->is_boolean()) return make_error(codes::kInvalidSnapshot, "needSnapshot must be a boolean", "needSnapshot");
    engine->need_snapshot_ = ns->get<bool>();
  }
  // The subscription the stored replica was built for. Absent (or null): saved before
  // subscriptions were stored, unknown (only a state that holds nothing needs no re-base).
  std::optional<Json> stored;
  if (auto s = state.find("subscription"); s != state.end() && !s->is_null()) {
    if (auto bad = subscription_shape_error(*s, codes::kInvalidSnapshot)) return *bad;
    // A well-formed one whose `where` this version does not parse (a grammar of another
    // version) counts as unknown: the replica is re-based, which is always safe.
    stored = canonical_subscription(*s);
  }
  std::optional<std::vector<Document>> image;
  if (!image_text.empty()) {
    auto decoded = decode_base_image(image_text, kMaxStateDepth - 2);
    if (!decoded) return decoded.error();
    image = std::move(*decoded);
  }
  const bool holds_data = engine->cursor_ != 0 || !docs->empty() || (image && !image->empty());
  const bool changed = stored ? *stored != engine->subscription_ : holds_data;
  std::set<DocKey> dropped;
  // Re-based: what lies outside the new subscription leaves the replica (and storage, below).
  // A tombstone outside the where stays: it keeps a replayed older change from reviving it.
  // Under the same subscription the stored replica is kept as it was (what its own stream
  // carried is the server's decision), so saving and restoring changes nothing.
  const auto keep = [&](Document d) {
    if (changed && (!engine->subscribed(d.collection) ||
                    (!d.deleted && !engine->where_.empty() && !engine->where_.matches(d.id, d.fields)))) {
      dropped.insert(d.key());
      return;
    }
    engine->base_.put(std::move(d));
  };
  if (image) {
    for (auto& d : *image) keep(std::move(d));
  }
  // The documents stored apart: on their own, or what changed since the image (they win).
  for (std::size_t i = 0; i < docs->size(); ++i) {
    const Json& dj = (*docs)[i];
    std::string at = "docs[" + std::to_string(i) + "]";
    if (!dj.is_object()) return make_error(codes::kInvalidSnapshot, "document must be an object", at);
    auto c = dj.find("collection");
    auto id = dj.find("id");
    if (c == dj.end() || !c->is_string() || id == dj.end() || !id->is_string()) {
      return make_error(codes::kInvalidSnapshot, "document is malformed", at);
    }
    // {"collection","id","erased":true}: the document left the replica after the image was made.
    if (auto erased = dj.find("erased"); erased != dj.end() && !erased->is_null()) {
      if (!erased->is_boolean()) return make_error(codes::kInvalidSnapshot, "erased must be a boolean", at + ".erased");
      if (erased->get<bool>()) {
        DocKey key{c->get<std::string>(), id->get<std::string>()};
        engine->base_.erase(key);
        dropped.erase(key);
        continue;
      }
    }
    auto ver = dj.find("version");
    auto fields = dj.find("fields");
    if (ver == dj.end() || !ver->is_number_integer() || fields == dj.end() || !fields->is_object()) {
      return make_error(codes::kInvalidSnapshot, "document is malformed", at);
    }
    Document d{c->get<std::string>(), id->get<std::string>(), ver->get<std::int64_t>(), *fields, false};
    if (auto del = dj.find("deleted"); del != dj.end() && !del->is_null()) {
      if (!del->is_boolean()) return make_error(codes::kInvalidSnapshot, "deleted must be a boolean", at + ".deleted");
      d.deleted = del->get<bool>();
    }
    keep(std::move(d));
  }
  engine->outbox_ = std::move(*ob);
  std::size_t limit = options.history_limit;
  engine->history_ = std::move(*hist);
  engine->history_.set_capacity(limit);
  std::set<DocKey> keys;
  for (const auto& e : engine->outbox_.entries()) keys.insert(e.mutation.key());
  for (const auto& k : keys) engine->rebase(k);
  engine->out_ = EngineOutput{};
  engine->out_.dirty_docs = std::move(dropped);
  if (changed) {
    engine->need_snapshot_ = true;
    engine->out_.meta_dirty = true;
    engine->history_.push(HistoryEntry{options.now_ms, "subscription_changed", 0, {}, {},
                                       Json{{"from", stored ? *stored : Json(nullptr)},
                                            {"to", engine->subscription_},
                                            {"dropped", engine->out_.dirty_docs.size()}}});
    engine->out_.history_dirty = true;
  }
  return engine;
}

}  // namespace syncline
