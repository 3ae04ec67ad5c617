// Deterministic simulation: an in-memory server model and several client engines connected by
// a network that delays, reorders, duplicates and drops requests and responses, cuts streams,
// and crashes clients (they restart from what they last persisted). Clients write documents,
// increment counters (some bounded at min 0), send atomic groups (transfers between counters,
// with a conditional write or an insert that may fail the group) and conditional writes. At the
// end (network healed) every replica must equal the server, every mutation must have been
// applied at most once and settled exactly once, every group applied whole or not at all, and
// every counter must equal its initial value plus the increments the server applied exactly:
// summed from the clients' own verdicts (each mid once), which a lost or doubled delivery breaks.
//
// Replay a failure: SYNCLINE_SIM_SEED=<seed> ./core_tests --gtest_filter='Simulation.*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "core/change_helpers.hpp"
#include "core/engine.hpp"
#include "core/random.hpp"
#include "core/write_rules.hpp"
#include "core/memory_write_store.hpp"

namespace syncline {
namespace {

constexpr int kCounters = 4;
constexpr std::int64_t kCounterStart = 20;

std::string counter_id(std::size_t i) { return "k" + std::to_string(i); }

// The increments a mutation makes to the counters: counter id -> amount.
std::map<std::string, std::int64_t> counter_deltas(const Mutation& m) {
  std::map<std::string, std::int64_t> out;
  if (m.collection != "counters") return out;
  for (const auto& [name, op] : m.ops) {
    if (name == "v" && op.kind == FieldOp::Kind::Increment) out[m.id] += op.by.get<std::int64_t>();
  }
  return out;
}

// The server model runs the reference server's own write rules (core/write_rules.hpp) on an
// in-memory store, with one global seq; it adds the bookkeeping the checks below need.
class SimServer {
 public:
  SimServer() {
    store_.begin_scope();
    for (std::size_t i = 0; i < kCounters; ++i) {
      Document d;
      d.collection = "counters";
      d.id = counter_id(i);
      d.version = ++seq_;
      d.fields = Json{{"v", kCounterStart}};
      store_.put_document(d);
      ChangeMsg c;
      c.seq = d.version;
      c.collection = d.collection;
      c.id = d.id;
      c.op = ChangeOp::Insert;
      c.version = c.seq;
      c.fields = d.fields;
      docs_.apply(c);
      log_.push_back(c);
    }
    store_.release_scope();
  }

  MutationResults apply(const MutationBatch& batch, std::int64_t now) {
    // A group's members are consecutive in the batch (the decoder refuses anything else).
    for (std::size_t i = 0; i < batch.mutations.size();) {
      const Mutation& m = batch.mutations[i];
      std::size_t end = i + 1;
      if (m.group) {
        EXPECT_EQ(m.mid, *m.group) << "a batch must start a group at its first member";
        while (end < batch.mutations.size() && batch.mutations[end].group == m.group) ++end;
        EXPECT_EQ(static_cast<std::int64_t>(end - i), m.group_size) << "a group arrived split";
      }
      i = end;
    }
    store_.begin_scope();
    std::int64_t head = seq_;
    auto res = rules_.apply_batch(store_, head, batch.client, "sim-user", batch.mutations, nullptr,
                                  [](const Mutation&, const Document&) { return true; }, now);
    if (!res) {
      store_.rollback_scope();
      ADD_FAILURE() << "the request failed whole: " << res.error().message;
      return MutationResults{seq_, {}};
    }
    store_.release_scope();
    seq_ = head;
    for (const auto& row : res->rows) {
      ChangeMsg c = std::get<ChangeMsg>(message_of(row));
      docs_.apply(c);
      log_.push_back(c);
    }
    std::map<std::int64_t, const Mutation*> by_mid;
    for (const auto& m : batch.mutations) by_mid[m.mid] = &m;
    std::set<std::int64_t> groups_seen;
    for (const auto& r : res->results.results) {
      const Mutation& m = *by_mid.at(r.mid);
      if (r.status == ResultStatus::Applied) {
        applied_count_[{batch.client, r.mid}]++;
        for (const auto& [id, by] : counter_deltas(m)) applied_increments_[id] += by;
      }
      if (m.group && r.status != ResultStatus::Duplicate && groups_seen.insert(*m.group).second) {
        (r.status == ResultStatus::Applied ? groups_applied_ : groups_rejected_)++;
      }
    }
    return res->results;
  }
  // Changes after a cursor (the whole log is retained in the model).
  std::vector<ChangeMsg> after(std::int64_t cursor) const {
    std::vector<ChangeMsg> out;
    for (const auto& c : log_) {
      if (c.seq > cursor) out.push_back(c);
    }
    return out;
  }
  const Store& docs() const { return docs_; }
  std::int64_t seq() const { return seq_; }
  const std::map<std::pair<std::string, std::int64_t>, int>& applied_count() const { return applied_count_; }
  // The increments the server applied, per counter.
  const std::map<std::string, std::int64_t>& applied_increments() const { return applied_increments_; }
  std::size_t groups_applied() const { return groups_applied_; }
  std::size_t groups_rejected() const { return groups_rejected_; }

 private:
  testing::MemoryWriteStore store_;
  WriteRules rules_{nullptr, 1000};
  Store docs_;
  std::vector<ChangeMsg> log_;
  std::int64_t seq_ = 0;
  std::map<std::pair<std::string, std::int64_t>, int> applied_count_;
  std::map<std::string, std::int64_t> applied_increments_;
  std::size_t groups_applied_ = 0;
  std::size_t groups_rejected_ = 0;
};

struct Packet {
  std::int64_t deliver_at = 0;
  int client = 0;
  bool to_server = false;       // a mutation batch request
  MutationBatch batch;
  MutationResults results;      // response to the client
  std::uint64_t order = 0;      // tie-break for determinism
};

// What the app knows of its own writes. Persisted with the engine's state and rolled back with
// it in a crash: a verdict that arrived after the last save is heard again after the restart.
struct Tracking {
  std::map<std::int64_t, int> settled;  // mid -> times settled
  std::set<std::int64_t> created;
  std::set<std::int64_t> applied_mids;
  std::map<std::int64_t, std::map<std::string, std::int64_t>> increments;  // mid -> counter -> amount
  std::map<std::int64_t, std::int64_t> group_of;                           // mid -> group
};

struct SimClient {
  std::unique_ptr<Engine> engine;
  bool online = true;
  bool stream_open = false;
  std::int64_t stream_pos = 0;  // last seq delivered on the current stream
  std::int64_t stream_generation = 0;
  Tracking tracking;
  // The last save: the engine's bytes, the app's tracking, the mids durable on disk.
  std::string saved_bytes;
  Tracking saved_tracking;
  std::int64_t durable_next_mid = 1;
  int crashes = 0;
  bool unsaved = false;  // the engine asked for something to be persisted since the last save
  std::map<std::string, std::map<std::string, Json>> shadow;  // collection -> id -> fields, from notifications
  int query = 0;
  int aggregate = 0;
};

struct SimConfig {
  double p_drop = 0.15;
  double p_dup = 0.15;
  double p_cut_stream = 0.02;
  double p_offline = 0.01;
  double p_online = 0.05;
  double p_mutate = 0.12;
  double p_crash = 0.004;
  double p_persist = 0.1;  // chance per step that the client's storage catches up
  int steps = 1500;
  int clients = 3;
};

const std::vector<std::string> kCollections = {"items", "counters"};

class Simulation {
 public:
  Simulation(std::uint64_t seed, SimConfig cfg) : rng_(seed), cfg_(cfg) {
    for (int i = 0; i < cfg_.clients; ++i) {
      EngineOptions o;
      o.client_id = "client" + std::to_string(i);
      o.collections = kCollections;
      o.request_timeout_ms = 50;
      o.max_batch = 4;  // small batches exercise partial progress (and groups that do not fit)
      o.history_limit = 16;  // keeps the frequent saves cheap
      options_.push_back(o);
      SimClient c;
      c.engine = std::make_unique<Engine>(o);
      add_views(c);
      persist(c);
      clients_.push_back(std::move(c));
    }
  }

  void add_views(SimClient& c) {
    QuerySpec q;
    q.collection = "items";
    q.where = *Filter::parse("n=gte.20");
    q.order_by = OrderBy{{"n"}, true};
    q.limit = 5;
    c.query = c.engine->add_query(q);
    AggregateSpec a;
    a.collection = "items";
    a.group_by = {"by"};
    a.sum_of = std::vector<std::string>{"n"};
    c.aggregate = c.engine->add_aggregate(a);
  }

  void run() {
    for (int step = 0; step < cfg_.steps; ++step) {
      now_ += 1 + static_cast<std::int64_t>(rng_.below(5));
      for (int i = 0; i < cfg_.clients; ++i) act(i, /*chaos=*/true);
      deliver_due(/*chaos=*/true);
    }
    // Heal: everyone online, no more faults, run until quiet.
    for (auto& c : clients_) c.online = true;
    for (int round = 0; round < 5000; ++round) {
      now_ += 10;
      for (int i = 0; i < cfg_.clients; ++i) act(i, /*chaos=*/false);
      deliver_due(/*chaos=*/false);
      if (quiet()) break;
    }
  }

  void check() const {
    for (int i = 0; i < cfg_.clients; ++i) {
      const SimClient& c = clients_[i];
      SCOPED_TRACE("client " + std::to_string(i));
      EXPECT_TRUE(c.engine->outbox().empty()) << "outbox not drained: " << c.engine->outbox().size();
      // Replica equals the server, and change notifications alone reproduce the view.
      for (const std::string& coll : kCollections) {
        std::vector<Document> mine = c.engine->documents(coll);
        std::vector<Document> theirs;
        server_.docs().for_each_live(coll, [&](const Document& d) { theirs.push_back(d); });
        EXPECT_EQ(mine, theirs) << coll;
        std::map<std::string, Json> view;
        for (const auto& d : mine) view[d.id] = d.fields;
        auto sh = c.shadow.find(coll);
        const std::map<std::string, Json> shadow = sh == c.shadow.end() ? std::map<std::string, Json>() : sh->second;
        EXPECT_EQ(shadow, view) << coll;
      }
      std::vector<Document> mine = c.engine->documents("items");
      EXPECT_EQ(c.engine->cursor(), server_.seq());
      // The incremental live query equals a brute-force evaluation.
      std::vector<Document> expect;
      for (const auto& d : mine) {
        if (d.fields.contains("n") && d.fields["n"].get<int>() >= 20) expect.push_back(d);
      }
      std::sort(expect.begin(), expect.end(), [](const Document& x, const Document& y) {
        int nx = x.fields["n"].get<int>(), ny = y.fields["n"].get<int>();
        return nx != ny ? nx > ny : x.id < y.id;
      });
      if (expect.size() > 5) expect.resize(5);
      EXPECT_EQ(*c.engine->query_result(c.query), expect);
      std::map<std::string, GroupTotals> groups;
      for (const auto& d : mine) {
        auto& g = groups[d.fields.contains("by") ? d.fields["by"].dump() : "null"];
        g.count++;
        if (d.fields.contains("n")) g.sum += d.fields["n"].get<int>();
      }
      EXPECT_EQ(c.engine->aggregate(c.aggregate)->groups(), groups);
      // Every mutation settled exactly once; applied ones applied exactly once on the server.
      const Tracking& t = c.tracking;
      for (std::int64_t mid : t.created) {
        auto it = t.settled.find(mid);
        ASSERT_NE(it, t.settled.end()) << "mid " << mid << " never settled";
        EXPECT_EQ(it->second, 1) << "mid " << mid << " settled twice";
      }
      for (std::int64_t mid : t.applied_mids) {
        auto it = server_.applied_count().find({c.engine->client_id(), mid});
        ASSERT_NE(it, server_.applied_count().end()) << "acked mid " << mid << " missing on server";
        EXPECT_EQ(it->second, 1);
      }
      // Nothing the app did not hear of (or lost in a crash before it was durable) was applied.
      for (const auto& [key, n] : server_.applied_count()) {
        if (key.first == c.engine->client_id()) {
          EXPECT_TRUE(t.applied_mids.count(key.second)) << "mid " << key.second << " applied but not reported";
        }
      }
      // A group is all or nothing in the app's verdicts too.
      std::map<std::int64_t, std::set<bool>> group_verdicts;
      for (const auto& [mid, group] : t.group_of) group_verdicts[group].insert(t.applied_mids.count(mid) > 0);
      for (const auto& [group, verdicts] : group_verdicts) EXPECT_EQ(verdicts.size(), 1u) << "group " << group;
    }
    for (const auto& [key, n] : server_.applied_count()) EXPECT_EQ(n, 1) << key.first << "/" << key.second;
    // The exact-sum invariant: each counter is its start plus every applied increment, counted
    // from the clients' verdicts (each mid once) and from the server's own ledger.
    std::map<std::string, std::int64_t> reported;
    for (const SimClient& c : clients_) {
      for (std::int64_t mid : c.tracking.applied_mids) {
        auto it = c.tracking.increments.find(mid);
        if (it == c.tracking.increments.end()) continue;
        for (const auto& [id, by] : it->second) reported[id] += by;
      }
    }
    for (std::size_t i = 0; i < kCounters; ++i) {
      const std::string id = counter_id(i);
      const Document* d = server_.docs().find(DocKey{"counters", id});
      ASSERT_TRUE(d && !d->deleted) << id;
      const std::int64_t v = d->fields.at("v").get<std::int64_t>();
      auto led = server_.applied_increments().find(id);
      EXPECT_EQ(v, kCounterStart + (led == server_.applied_increments().end() ? 0 : led->second)) << id;
      EXPECT_EQ(v, kCounterStart + reported[id]) << id << ": the applied increments the clients heard of";
    }
  }

  struct Stats {
    std::size_t mutations = 0, groups_applied = 0, groups_rejected = 0, crashes = 0;
  };
  Stats stats() const {
    Stats s;
    for (const auto& c : clients_) {
      s.mutations += c.tracking.created.size();
      s.crashes += static_cast<std::size_t>(c.crashes);
    }
    s.groups_applied = server_.groups_applied();
    s.groups_rejected = server_.groups_rejected();
    return s;
  }

  std::size_t mutations_made() const { return stats().mutations; }
  std::int64_t server_seq() const { return server_.seq(); }

 private:
  void act(int i, bool chaos) {
    SimClient& c = clients_[i];
    if (chaos && rng_.uniform() < cfg_.p_crash) crash(i);
    Engine& e = *c.engine;
    if (chaos) {
      if (c.online && rng_.uniform() < cfg_.p_offline) {
        c.online = false;
        close_stream(c);
      } else if (!c.online && rng_.uniform() < cfg_.p_online) {
        c.online = true;
      }
      if (c.stream_open && rng_.uniform() < cfg_.p_cut_stream) close_stream(c);
      if (rng_.uniform() < cfg_.p_mutate) make_mutation(c);
    }
    if (c.online && !c.stream_open) open_stream(c);
    e.tick(now_);
    if (auto batch = e.take_batch(now_, c.durable_next_mid)) send(i, std::move(*batch), chaos);
    // The stream delivers in order, a few messages per step.
    if (c.stream_open) {
      auto pending = server_.after(c.stream_pos);
      std::size_t n = chaos ? rng_.below(4) : pending.size();
      for (std::size_t k = 0; k < n && k < pending.size(); ++k) {
        c.stream_pos = pending[k].seq;
        e.receive(pending[k], now_);
      }
    }
    drain(c);
    // Storage catches up now and then (always once healed): only what it holds survives a crash,
    // and only mutations it holds may be sent.
    if (c.unsaved && (!chaos || rng_.uniform() < cfg_.p_persist)) persist(c);
  }

  void persist(SimClient& c) {
    c.unsaved = false;
    c.saved_bytes = c.engine->snapshot_bytes();
    c.saved_tracking = c.tracking;
    c.durable_next_mid = c.engine->outbox().next_mid();
  }

  // The process dies: the connection, the in-memory engine and whatever was not saved are gone.
  // Packets already on the wire still arrive (at the restarted engine).
  void crash(int i) {
    SimClient& c = clients_[i];
    auto restored = Engine::restore(c.saved_bytes, options_[i]);
    ASSERT_TRUE(restored.ok()) << restored.error().message;
    c.engine = std::move(*restored);
    c.tracking = c.saved_tracking;
    c.stream_open = false;
    c.crashes++;
    add_views(c);
    c.engine->take_output();
    c.shadow.clear();
    for (const std::string& coll : kCollections) {
      for (const auto& d : c.engine->documents(coll)) c.shadow[coll][d.id] = d.fields;
    }
  }

  MutationRequest counter_increment(std::size_t k, std::int64_t by, bool bounded) {
    MutationRequest r;
    r.op = MutationOp::Update;
    r.collection = "counters";
    r.id = counter_id(k);
    FieldOp op;
    op.by = by;
    if (bounded) op.min = 0;
    r.ops["v"] = op;
    return r;
  }

  std::int64_t nonzero_amount(int spread) {
    const std::int64_t by = static_cast<std::int64_t>(rng_.below(2 * spread + 1)) - spread;
    return by == 0 ? 1 : by;
  }

  // A write on the items collection: inserts (colliding ids), patches, increments of n bounded
  // at 0, serverTime stamps, deletes; some conditional, some with base_version.
  MutationRequest item_mutation(SimClient& c) {
    Engine& e = *c.engine;
    std::vector<Document> docs = e.documents("items");
    MutationRequest r;
    r.collection = "items";
    double pick = rng_.uniform();
    if (docs.empty() || pick < 0.35) {
      r.op = MutationOp::Insert;
      r.id = "d" + std::to_string(rng_.below(40));  // collisions give insert conflicts
      r.fields = {{"n", static_cast<int>(rng_.below(100))}, {"by", e.client_id()}};
      return r;
    }
    const Document& d = docs[rng_.below(docs.size())];
    r.id = d.id;
    if (pick < 0.85) {
      r.op = MutationOp::Update;
      const double kind = rng_.uniform();
      if (kind < 0.25) {
        FieldOp op;
        op.by = nonzero_amount(15);
        op.min = 0;
        r.ops["n"] = op;
      } else {
        std::string field = std::string(1, static_cast<char>('a' + rng_.below(3)));
        r.fields = {{field, rng_.below(2) ? Json(static_cast<int>(rng_.below(100))) : Json(nullptr)}};
        if (kind > 0.85) {
          FieldOp st;
          st.kind = FieldOp::Kind::ServerTime;
          r.ops["t"] = st;
        }
      }
      if (rng_.uniform() < 0.2) r.base_version = d.version;
    } else {
      r.op = MutationOp::Delete;
    }
    if (rng_.uniform() < 0.25) r.condition = rng_.below(2) ? "n=gte.50" : "n=lt.50";
    return r;
  }

  void make_mutation(SimClient& c) {
    Engine& e = *c.engine;
    std::vector<MutationRequest> batch;
    bool atomic = false;
    const std::uint64_t kind = rng_.below(10);
    if (kind < 4) {
      batch.push_back(item_mutation(c));
    } else if (kind < 7) {
      batch.push_back(counter_increment(rng_.below(kCounters), nonzero_amount(5), rng_.below(2) == 0));
    } else if (kind < 9) {
      // A transfer between two counters that must not leave the first below 0, sometimes with
      // an item write that can fail the whole group.
      atomic = true;
      const std::size_t from = rng_.below(kCounters);
      const std::size_t to = (from + 1 + rng_.below(kCounters - 1)) % kCounters;
      const std::int64_t amount = 1 + static_cast<std::int64_t>(rng_.below(8));
      batch.push_back(counter_increment(from, -amount, true));
      batch.push_back(counter_increment(to, amount, false));
      if (rng_.below(2)) batch.push_back(item_mutation(c));
      if (rng_.below(4) == 0) std::swap(batch.front(), batch.back());
    } else {
      // Conditional writes on counters: a tag only while the counter is high enough, grouped
      // with an increment of another counter.
      atomic = rng_.below(2) == 0;
      MutationRequest tag;
      tag.op = MutationOp::Update;
      tag.collection = "counters";
      tag.id = counter_id(rng_.below(kCounters));
      tag.fields = {{"tag", static_cast<int>(rng_.below(10))}};
      tag.condition = "v=gte." + std::to_string(rng_.below(30));
      batch.push_back(tag);
      batch.push_back(counter_increment(rng_.below(kCounters), nonzero_amount(3), true));
    }
    auto mids = e.mutate(batch, now_, atomic);
    ASSERT_TRUE(mids.ok()) << mids.error().field << ": " << mids.error().message;
    for (std::size_t k = 0; k < mids->size(); ++k) {
      const std::int64_t mid = mids->at(k);
      c.tracking.created.insert(mid);
      const Mutation& m = e.outbox().find(mid)->mutation;
      if (auto d = counter_deltas(m); !d.empty()) c.tracking.increments[mid] = std::move(d);
      if (m.group) c.tracking.group_of[mid] = *m.group;
    }
  }

  void send(int i, MutationBatch batch, bool chaos) {
    if (!clients_[i].online) {
      clients_[i].engine->on_batch_failed();
      return;
    }
    Packet p;
    p.client = i;
    p.to_server = true;
    p.batch = std::move(batch);
    enqueue(std::move(p), chaos);
  }

  void enqueue(Packet p, bool chaos) {
    if (chaos && rng_.uniform() < cfg_.p_drop) return;  // the caller times out and resends
    int copies = (chaos && rng_.uniform() < cfg_.p_dup) ? 2 : 1;
    for (int k = 0; k < copies; ++k) {
      Packet q = p;
      q.deliver_at = now_ + 1 + static_cast<std::int64_t>(rng_.below(chaos ? 60 : 3));
      q.order = order_++;
      net_.push_back(std::move(q));
    }
  }

  void deliver_due(bool chaos) {
    std::sort(net_.begin(), net_.end(), [](const Packet& a, const Packet& b) {
      return a.deliver_at != b.deliver_at ? a.deliver_at < b.deliver_at : a.order < b.order;
    });
    std::vector<Packet> later;
    std::vector<Packet> due;
    for (auto& p : net_) (p.deliver_at <= now_ ? due : later).push_back(std::move(p));
    net_ = std::move(later);
    for (auto& p : due) {
      if (p.to_server) {
        Packet resp;
        resp.client = p.client;
        resp.results = server_.apply(p.batch, now_);
        enqueue(std::move(resp), chaos);
      } else {
        SimClient& c = clients_[p.client];
        if (!c.online) continue;  // lost
        c.engine->receive(p.results, now_);
        drain(c);
      }
    }
  }

  void open_stream(SimClient& c) {
    c.stream_open = true;
    c.stream_pos = c.engine->cursor();
    c.engine->set_transport_ready(true);
    c.engine->receive(HelloMsg{server_.seq()}, now_);
  }
  void close_stream(SimClient& c) {
    c.stream_open = false;
    c.engine->set_transport_ready(false);
  }

  void drain(SimClient& c) {
    EngineOutput out = c.engine->take_output();
    if (out.outbox_dirty || out.meta_dirty || !out.dirty_docs.empty() || !out.settled.empty()) c.unsaved = true;
    for (const auto& ch : out.changes) {
      if (ch.after) {
        c.shadow[ch.collection][ch.id] = *testing::detail(ch.after);
      } else {
        c.shadow[ch.collection].erase(ch.id);
      }
    }
    for (const auto& s : out.settled) {
      c.tracking.settled[s.mid]++;
      if (s.applied) c.tracking.applied_mids.insert(s.mid);
    }
  }

  bool quiet() const {
    if (!net_.empty()) return false;
    for (const auto& c : clients_) {
      if (!c.engine->outbox().empty() || c.engine->cursor() != server_.seq()) return false;
    }
    return true;
  }

  Rng rng_;
  SimConfig cfg_;
  SimServer server_;
  std::vector<EngineOptions> options_;
  std::vector<SimClient> clients_;
  std::vector<Packet> net_;
  std::int64_t now_ = 0;
  std::uint64_t order_ = 0;
};

std::vector<std::uint64_t> seeds_to_run() {
  if (const char* s = std::getenv("SYNCLINE_SIM_SEED")) return {std::strtoull(s, nullptr, 10)};
  int n = 200;
  if (const char* c = std::getenv("SYNCLINE_SIM_SEEDS")) n = std::atoi(c);
  std::vector<std::uint64_t> seeds;
  for (int i = 1; i <= n; ++i) seeds.push_back(static_cast<std::uint64_t>(i) * 7919u);
  return seeds;
}

TEST(Simulation, ReplicasConvergeAndMutationsApplyExactlyOnce) {
  Simulation::Stats total;
  for (std::uint64_t seed : seeds_to_run()) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: SYNCLINE_SIM_SEED=" + std::to_string(seed) + ")");
    Simulation sim(seed, SimConfig{});
    sim.run();
    sim.check();
    const auto s = sim.stats();
    total.mutations += s.mutations;
    total.groups_applied += s.groups_applied;
    total.groups_rejected += s.groups_rejected;
    total.crashes += s.crashes;
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "simulation failed with seed %llu\n", static_cast<unsigned long long>(seed));
      break;
    }
  }
  EXPECT_GT(total.mutations, 0u);
  // The run exercises what it claims to: groups both ways, and crashes.
  EXPECT_GT(total.groups_applied, 0u);
  EXPECT_GT(total.groups_rejected, 0u);
  EXPECT_GT(total.crashes, 0u);
  std::printf("[ simulation ] %zu mutations, %zu groups applied, %zu rejected, %zu client crashes\n", total.mutations,
              total.groups_applied, total.groups_rejected, total.crashes);
}

TEST(Simulation, FiveClientsHeavyChaos) {
  SimConfig cfg;
  cfg.clients = 5;
  cfg.p_drop = 0.35;
  cfg.p_dup = 0.3;
  cfg.p_cut_stream = 0.08;
  cfg.steps = 800;
  for (std::uint64_t seed : {11u, 12u, 13u, 14u, 15u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed, cfg);
    sim.run();
    sim.check();
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace syncline
