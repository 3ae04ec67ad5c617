// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The client engine: a sans-I/O state machine that owns the replica.
//
//   inputs:  receive(server message), apply_snapshot(docs), mutate(local mutations),
//            take_batch()/on_batch_failed() (the adapter's send path), set_transport_ready(),
//            tick(now)
//   outputs: take_output() -> visible document changes, live queries whose result changed,
//            settled mutations (server verdicts), custom events, what must be persisted,
//            and whether a re-snapshot is needed.
//
// Visible state = base (server) state + pending outbox mutations re-applied in mid order.
// Only documents touched by pending mutations carry an overlay, and a server change to a
// document re-runs just that document's pending mutations (rebase cost: O(pending on key)).
// At most one mutation batch is in flight; a resend always starts at the oldest unacknowledged
// mid, so with the server's "mid <= last_mid is a duplicate" rule nothing applies twice even
// when requests are duplicated or reordered by the network.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/event_history.hpp"
#include "core/filter.hpp"
#include "core/foreign_pending.hpp"
#include "core/json.hpp"
#include "core/live_query.hpp"
#include "core/outbox.hpp"
#include "core/protocol.hpp"
#include "core/store.hpp"

namespace syncline {

struct EngineOptions {
  std::string client_id;
  std::vector<std::string> collections;  // subscribed collections; empty = all
  // The subscription's server-side filter (`where` grammar, the same for every collection);
  // empty = none. Must parse (Filter::parse): the adapter validates it; an invalid one counts
  // as none. Together with `collections` it is the subscription the replica is built for.
  std::string where;
  // The clock when the engine is created or restored: the time of the history entries a
  // restore writes (subscription_changed).
  std::int64_t now_ms = 0;
  std::size_t history_limit = EventHistory::kDefaultCapacity;
  std::size_t max_batch = 500;
  std::int64_t request_timeout_ms = 30'000;
};

struct MutationRequest {
  MutationOp op = MutationOp::Insert;
  std::string collection;
  std::string id;
  Json fields = Json::object();
  std::optional<std::int64_t> base_version;
  // insert/update: field operations (increment, serverTime), applied after `fields`.
  std::map<std::string, FieldOp> ops;
  // update/delete: a precondition in the `where` grammar ("status=eq.unpaid"), parsed by mutate().
  std::optional<std::string> condition;
};

// A change of the visible view of one document.
struct DocChange {
  std::string collection;
  std::string id;
  // The visible fields on each side as compact JSON text (nullopt: absent), filled only while
  // change detail is on (set_change_detail). Text, not a Json: written once from where the
  // fields live, it is what the adapter hands on, and a DOM copy per change costs more than
  // applying the change.
  std::optional<std::string> before;
  std::optional<std::string> after;
};

// The server's verdict on a local mutation.
struct SettledMutation {
  std::int64_t mid = 0;
  bool applied = false;
  std::int64_t seq = 0;
  std::string code;  // when rejected
  std::string message;
  std::string collection;
  std::string id;
  // Rejected member of an atomic group: the member whose rejection failed the group.
  std::int64_t failed_mid = 0;
  // Rejected with conflict: the document as the server has it ({"version","fields"}, or null
  // when absent), when the server sent it.
  std::optional<Json> current;
};

struct EngineOutput {
  std::vector<DocChange> changes;
  std::set<int> queries_changed;
  std::set<int> aggregates_changed;
  std::vector<SettledMutation> settled;
  std::vector<EventMsg> events;
  std::set<DocKey> dirty_docs;  // base documents to persist (a missing one must be deleted)
  bool outbox_dirty = false;    // persist the outbox (before reporting a mutation accepted)
  bool meta_dirty = false;      // cursor / next mid
  bool history_dirty = false;
  bool need_snapshot = false;   // the server sent reset: fetch a snapshot, then apply_snapshot()

  bool empty() const;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);

  // ---- inputs ----
  // Validates the whole batch first (all or nothing), then assigns mids and rebases the view.
  // atomic: the batch is one group (consecutive mids, group = the first), which the server
  // applies all or none; it is sent in one request and shows and rolls back as one. An atomic
  // batch holds at most options.max_batch mutations.
  Result<std::vector<std::int64_t>> mutate(const std::vector<MutationRequest>& batch, std::int64_t now_ms,
                                           bool atomic = false);
  // One server message (change, event, hello, reset, results, error).
  Result<bool> receive(const ServerMessage& message, std::int64_t now_ms);
  // Same, for a message the caller is done with: a change's fields move into the store.
  Result<bool> receive(ServerMessage&& message, std::int64_t now_ms);
  // Replaces the base state of the given collections (empty = all subscribed) with a complete
  // snapshot taken at `seq`; documents not in it are dropped.
  void apply_snapshot(const std::vector<std::string>& collections, std::vector<Document> docs,
                      std::int64_t seq, std::int64_t now_ms);
  // The send path: returns the next batch to send, or nothing (not ready, nothing pending,
  // or a batch already in flight). The adapter must answer with receive(results) or
  // on_batch_failed(). `durable_next_mid`: only mutations with a smaller mid are taken, i.e.
  // those whose outbox record the adapter has made durable (a mutation sent before that and
  // lost in a crash would have its mid reused by the next owner of the outbox, and the server
  // would answer the new mutation `duplicate`). The default suits adapters that persist
  // synchronously. Why: docs/decisions/0001-send-only-the-durable-outbox-prefix.md.
  std::optional<MutationBatch> take_batch(std::int64_t now_ms, std::int64_t durable_next_mid = INT64_MAX);
  void on_batch_failed();
  void set_transport_ready(bool ready);
  // Whether output changes carry the before/after fields (on by default). Off, they name only
  // the document: an adapter without a reader of the detail skips a copy per change.
  void set_change_detail(bool on) { change_detail_ = on; }
  bool change_detail() const { return change_detail_; }
  void tick(std::int64_t now_ms);
  // Marks the whole state (every base document, outbox, cursor, history) as needing to be
  // persisted again: used when the browser wiped the store under a running client.
  void mark_all_dirty();
  // Records a status transition (connection state etc.) in the history.
  void record(HistoryEntry entry);
  // Pending writes of the other tabs of this user (see ForeignPending): shown in this view, never
  // sent or persisted here. `replace` sets a client's whole set, `add` extends it, `drop` removes
  // mids its owner settled. Mutations of this engine's own client id or of collections it does
  // not subscribe to are ignored. tick() drops sets not refreshed for ForeignPending::kTtlMs.
  void replace_foreign(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms);
  void add_foreign(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms);
  void drop_foreign(const std::string& client, const std::vector<std::int64_t>& mids);
  const ForeignPending& foreign() const { return foreign_; }
  // The frames this engine receives from now on come from a stream opened for `upstream`
  // (canonical or not; nullopt = unknown): another tab's stream it follows, or its own (pass
  // subscription()). While that is not this engine's own subscription the replica is not known
  // to be complete as of its cursor (collections or documents this subscription has and the
  // upstream's lacks get no changes), so it needs a snapshot of its own, and keeps needing one
  // after each snapshot until it follows a stream of its own subscription again; changes of
  // collections or documents outside this subscription are not applied. The first snapshot
  // taken once it matches again marks every document to be persisted again (the shared store
  // was written for the other subscription meanwhile). Records `subscription_mismatch` when it
  // starts to differ.
  void follow_subscription(const std::optional<Json>& upstream, std::int64_t now_ms);

  // ---- outputs ----
  EngineOutput take_output();

  // ---- reads of the visible view ----
  // nullptr when absent. The pointer is valid until the next input.
  const Document* get(const std::string& collection, const std::string& id) const;
  std::vector<Document> documents(const std::string& collection) const;
  bool is_pending(const std::string& collection, const std::string& id) const;

  int add_query(QuerySpec spec);
  void remove_query(int id);
  Result<std::vector<Document>> query_result(int id) const;
  // The result's document ids in order: lets an adapter that keeps the documents it already
  // has read only the ones that changed.
  Result<std::vector<std::string>> query_ids(int id) const;
  Result<std::size_t> query_total(int id) const;
  int add_aggregate(AggregateSpec spec);
  void remove_aggregate(int id);
  const GroupedAggregate* aggregate(int id) const;

  // ---- state ----
  const std::string& client_id() const { return options_.client_id; }
  std::int64_t cursor() const { return cursor_; }
  std::int64_t stream_head() const { return stream_head_; }
  const Store& base() const { return base_; }
  const Outbox& outbox() const { return outbox_; }
  const EventHistory& history() const { return history_; }
  EventHistory& history() { return history_; }
  bool needs_snapshot() const { return need_snapshot_; }
  bool in_flight() const { return in_flight_.has_value(); }
  const EngineOptions& options() const { return options_; }
  bool subscribed(const std::string& collection) const;
  // The subscription in canonical form: {"collections":[sorted, unique], "where":"canonical
  // filter text" or ""}. Persisted with the cursor (meta): a replica belongs to a subscription.
  const Json& subscription() const { return subscription_; }
  // The canonical form of a stored or announced subscription, or nullopt when malformed.
  static std::optional<Json> canonical_subscription(const Json& subscription);
  // Whether the stream this engine follows is of its own subscription (follow_subscription).
  bool upstream_matches() const { return upstream_matches_; }

  // ---- persistence ----
  // The whole client state (docs, outbox, cursor, history) as CBOR bytes.
  std::string snapshot_bytes() const;
  // Restores a state saved by snapshot_bytes(); options.client_id is replaced by the saved one.
  // The state's "subscription" is the one its documents and cursor were built for. When it
  // differs from the options' (the app now subscribes to other collections or another `where`),
  // or is absent from a state that holds data (saved before subscriptions were stored), the
  // replica is re-based: the outbox is kept and sent as usual, documents outside the new
  // subscription leave the base (to be deleted from storage), needs_snapshot() becomes true so
  // the adapter fetches a snapshot before it resumes the stream, and `subscription_changed`
  // ({from, to, dropped}) is recorded. The re-base's storage work is in the next output.
  // Documents outside the subscription are dropped on every restore (a leader of another
  // subscription may have written them to a shared store).
  static Result<std::unique_ptr<Engine>> restore(std::string_view bytes, EngineOptions options);
  // Same, from the decoded state object ({"v":1,"client","cursor","docs","outbox","history"});
  // lets a browser adapter assemble the state from separately stored parts. `image`: the base
  // replica as one text (encode_base_image), restored first; the state's `docs` are then what
  // changed since (they win), where {"collection","id","erased":true} removes a document.
  static Result<std::unique_ptr<Engine>> restore_json(const Json& state, EngineOptions options,
                                                      std::string_view image = {});

 private:
  struct VisibleDoc {
    Document doc;
  };
  // What a reader sees of a document besides its fields: a write confirmed with the fields the
  // view already showed changes only these, and must still reach the app (pending badge, the
  // version a conditional update is based on).
  struct VisibleMeta {
    std::int64_t version = 0;
    bool pending = false;
    bool operator==(const VisibleMeta&) const = default;
  };
  std::optional<Json> visible_fields(const DocKey& key) const;
  VisibleMeta visible_meta(const DocKey& key) const;
  // before / before_meta: the visible fields and meta before the caller changed the base
  // (both default to the current view; a caller passing one passes both).
  void rebase(const DocKey& key, std::optional<std::optional<Json>> before = std::nullopt,
              std::optional<VisibleMeta> before_meta = std::nullopt);
  void emit_change(const DocKey& key, std::optional<Json> before, bool meta_changed);
  void confirm_seen();
  void settle_applied(OutboxEntry& entry, std::int64_t seq);
  void clock(std::int64_t now_ms) { now_ms_ = std::max(now_ms_, now_ms); }
  void handle_results(const MutationResults& results, std::int64_t now_ms);
  void handle_change(ChangeMsg change, std::int64_t now_ms);
  void for_each_visible(const std::string& collection, const std::function<void(const Document&)>& fn) const;
  std::vector<Mutation> foreign_filter(const std::string& client, std::vector<Mutation> mutations) const;
  void rebase_all(const std::set<DocKey>& keys);

  EngineOptions options_;
  Json subscription_;
  Filter where_;
  bool upstream_matches_ = true;
  bool rewrite_on_snapshot_ = false;
  Store base_;
  Outbox outbox_;
  ForeignPending foreign_;
  // Documents with pending mutations: their visible state (nullopt = hidden by a local delete).
  std::map<DocKey, std::optional<Document>> overlay_;
  std::int64_t cursor_ = 0;
  std::int64_t stream_head_ = 0;
  EventHistory history_;
  std::map<int, LiveQuery> queries_;
  std::map<int, GroupedAggregate> aggregates_;
  int next_query_id_ = 1;
  struct InFlight {
    std::int64_t first_mid = 0;
    std::int64_t last_mid = 0;
    std::int64_t sent_at_ms = 0;
  };
  std::optional<InFlight> in_flight_;
  bool transport_ready_ = false;
  bool need_snapshot_ = false;
  bool change_detail_ = true;
  // The latest clock an input brought: the time a pending serverTime op shows when its entry
  // has none of its own (another tab's write, a state saved before queued_ms existed).
  std::int64_t now_ms_ = 0;
  EngineOutput out_;
};

// Why `sub` is not shaped like a subscription ({"collections":[string...], "where": string, null
// or absent}), as an error with `code` and the member in `field`; nullopt when it is. A `where`
// that does not parse is not a shape error (canonical_subscription then answers nullopt).
std::optional<Error> subscription_shape_error(const Json& sub, RegisteredCode code);

}  // namespace syncline
