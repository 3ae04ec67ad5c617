// Deterministic simulation: an in-memory server model and several client engines connected by
// a network that delays, reorders, duplicates and drops requests and responses, and cuts
// streams at random. At the end (network healed) every replica must equal the server, and
// every mutation must have been applied at most once and settled exactly once.
//
// Replay a failure: SYNCLINE_SIM_SEED=<seed> ./core_tests --gtest_filter='Simulation.*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>

#include "core/engine.hpp"
#include "core/random.hpp"

namespace syncline {
namespace {

// The server model follows the reference server's rules: per-client last mid, recorded
// outcomes, apply_mutation from the core, one global seq.
class SimServer {
 public:
  MutationResults apply(const MutationBatch& batch) {
    MutationResults out;
    auto& client = clients_[batch.client];
    for (const auto& m : batch.mutations) {
      if (m.mid <= client.last_mid) {
        MutationResult r = client.outcomes.count(m.mid) ? client.outcomes[m.mid]
                                                        : MutationResult{m.mid, ResultStatus::Duplicate, 0, "", ""};
        r.status = ResultStatus::Duplicate;
        out.results.push_back(r);
        continue;
      }
      client.last_mid = m.mid;
      const Document* cur = docs_.find(m.key());
      auto r = apply_mutation(cur, m);
      MutationResult res;
      res.mid = m.mid;
      if (!r) {
        res.status = ResultStatus::Rejected;
        res.code = r.error().code;
        res.message = r.error().message;
      } else {
        ChangeMsg c;
        c.seq = ++seq_;
        c.collection = m.collection;
        c.id = m.id;
        c.op = m.op == MutationOp::Insert ? ChangeOp::Insert
               : (r->fields ? ChangeOp::Update : ChangeOp::Delete);
        c.version = c.seq;
        c.fields = r->fields ? *r->fields : Json::object();
        c.origin = Origin{batch.client, m.mid};
        docs_.apply(c);
        log_.push_back(c);
        res.status = ResultStatus::Applied;
        res.seq = c.seq;
        applied_count_[{batch.client, m.mid}]++;
      }
      client.outcomes[m.mid] = res;
      out.results.push_back(res);
    }
    out.seq = seq_;
    return out;
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

 private:
  struct ClientState {
    std::int64_t last_mid = 0;
    std::map<std::int64_t, MutationResult> outcomes;
  };
  Store docs_;
  std::vector<ChangeMsg> log_;
  std::int64_t seq_ = 0;
  std::map<std::string, ClientState> clients_;
  std::map<std::pair<std::string, std::int64_t>, int> applied_count_;
};

struct Packet {
  std::int64_t deliver_at = 0;
  int client = 0;
  bool to_server = false;       // a mutation batch request
  MutationBatch batch;
  MutationResults results;      // response to the client
  std::uint64_t order = 0;      // tie-break for determinism
};

struct SimClient {
  std::unique_ptr<Engine> engine;
  bool online = true;
  bool stream_open = false;
  std::int64_t stream_pos = 0;  // last seq delivered on the current stream
  std::int64_t stream_generation = 0;
  std::map<std::int64_t, int> settled;  // mid -> times settled
  std::set<std::int64_t> created;
  std::set<std::int64_t> applied_mids;
  std::map<std::string, Json> shadow;  // visible view rebuilt only from change notifications
  int query = 0;
  int aggregate = 0;
};

struct SimConfig {
  double p_drop = 0.15;
  double p_dup = 0.15;
  double p_cut_stream = 0.02;
  double p_offline = 0.01;
  double p_online = 0.05;
  double p_mutate = 0.3;
  int steps = 1500;
  int clients = 3;
};

class Simulation {
 public:
  Simulation(std::uint64_t seed, SimConfig cfg) : rng_(seed), cfg_(cfg) {
    for (int i = 0; i < cfg_.clients; ++i) {
      EngineOptions o;
      o.client_id = "client" + std::to_string(i);
      o.collections = {"items"};
      o.request_timeout_ms = 50;
      o.max_batch = 4;  // small batches exercise partial progress
      SimClient c;
      c.engine = std::make_unique<Engine>(o);
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
      clients_.push_back(std::move(c));
    }
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
      // Replica equals the server.
      std::vector<Document> mine = c.engine->documents("items");
      std::vector<Document> theirs;
      server_.docs().for_each_live("items", [&](const Document& d) { theirs.push_back(d); });
      EXPECT_EQ(mine, theirs);
      EXPECT_EQ(c.engine->cursor(), server_.seq());
      // Change notifications alone reproduce the view.
      std::map<std::string, Json> view;
      for (const auto& d : mine) view[d.id] = d.fields;
      EXPECT_EQ(c.shadow, view);
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
      for (std::int64_t mid : c.created) {
        auto it = c.settled.find(mid);
        ASSERT_NE(it, c.settled.end()) << "mid " << mid << " never settled";
        EXPECT_EQ(it->second, 1) << "mid " << mid << " settled twice";
      }
      for (std::int64_t mid : c.applied_mids) {
        auto it = server_.applied_count().find({c.engine->client_id(), mid});
        ASSERT_NE(it, server_.applied_count().end()) << "acked mid " << mid << " missing on server";
        EXPECT_EQ(it->second, 1);
      }
    }
    for (const auto& [key, n] : server_.applied_count()) EXPECT_EQ(n, 1) << key.first << "/" << key.second;
  }

  std::size_t mutations_made() const {
    std::size_t n = 0;
    for (const auto& c : clients_) n += c.created.size();
    return n;
  }
  std::int64_t server_seq() const { return server_.seq(); }

 private:
  void act(int i, bool chaos) {
    SimClient& c = clients_[i];
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
    if (auto batch = e.take_batch(now_)) send(i, std::move(*batch), chaos);
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
  }

  void make_mutation(SimClient& c) {
    Engine& e = *c.engine;
    std::vector<Document> docs = e.documents("items");
    MutationRequest r;
    r.collection = "items";
    double pick = rng_.uniform();
    if (docs.empty() || pick < 0.35) {
      r.op = MutationOp::Insert;
      r.id = "d" + std::to_string(rng_.below(40));  // collisions give insert conflicts
      r.fields = {{"n", static_cast<int>(rng_.below(100))}, {"by", e.client_id()}};
    } else {
      const Document& d = docs[rng_.below(docs.size())];
      r.id = d.id;
      if (pick < 0.85) {
        r.op = MutationOp::Update;
        std::string field = std::string(1, static_cast<char>('a' + rng_.below(3)));
        r.fields = {{field, rng_.below(2) ? Json(static_cast<int>(rng_.below(100))) : Json(nullptr)}};
        if (rng_.uniform() < 0.2) r.base_version = d.version;
      } else {
        r.op = MutationOp::Delete;
      }
    }
    auto mids = e.mutate({r}, now_);
    ASSERT_TRUE(mids.ok());
    c.created.insert(mids->at(0));
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
        resp.results = server_.apply(p.batch);
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
    for (const auto& ch : out.changes) {
      if (ch.after) {
        c.shadow[ch.id] = *ch.after;
      } else {
        c.shadow.erase(ch.id);
      }
    }
    for (const auto& s : out.settled) {
      c.settled[s.mid]++;
      if (s.applied) c.applied_mids.insert(s.mid);
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
  std::size_t total_mutations = 0;
  for (std::uint64_t seed : seeds_to_run()) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: SYNCLINE_SIM_SEED=" + std::to_string(seed) + ")");
    Simulation sim(seed, SimConfig{});
    sim.run();
    sim.check();
    total_mutations += sim.mutations_made();
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "simulation failed with seed %llu\n", static_cast<unsigned long long>(seed));
      break;
    }
  }
  EXPECT_GT(total_mutations, 0u);
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
