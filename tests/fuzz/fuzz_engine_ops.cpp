// Layer: tests/fuzz. Target "engine_ops": sequences of Engine inputs (src/core/engine): local
// mutations, the send path, and arbitrary (possibly hostile or nonsensical) server messages.
//
// Input: a script, one opcode byte followed by its argument bytes (see run_step). The server side
// is not simulated faithfully on purpose: seqs, mids, verdicts and origins come from the fuzz
// bytes, so the engine sees replays, gaps, verdicts for mids it never sent and changes to
// documents it has pending mutations on.
// Invariants, checked after every step:
//   - no crash, no sanitizer report;
//   - mids returned by mutate() strictly increase over the engine's life (also across a
//     snapshot_bytes -> restore round trip); outbox mids strictly increase and stay < next_mid;
//   - a batch from take_batch() has strictly increasing mids, starts at the oldest
//     unacknowledged entry, respects max_batch (a group that comes first may exceed it) and is
//     never handed out while one is in flight; it never holds part of an atomic group: each
//     group in it starts at its first mid and has all group_size members, consecutive;
//   - mutate() with ops (increment with bounds, serverTime), conditions and atomic groups: a
//     valid batch is accepted, an atomic one gets consecutive mids and one group; an atomic
//     batch over max_batch is refused whole without taking a mid;
//   - the outbox never keeps a partial group that still waits for a verdict (any verdicts,
//     even ones naming only some members, a duplicate of a rejection, or a change on the
//     stream for one member);
//   - each mid is settled at most once;
//   - the visible view is consistent: get() agrees with documents(), which is in id order;
//     is_pending() only for keys with outbox entries; replaying the DocChanges of take_output()
//     onto a mirror gives exactly the visible view;
//   - live queries equal a from-scratch evaluation of their spec over documents();
//   - snapshot_bytes() -> restore() -> snapshot_bytes() is a fixpoint.
#include <algorithm>
#include <map>
#include <set>

#include "core/engine.hpp"
#include "core/live_query.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

const char* const kCollections[] = {"a", "b"};
const char* const kIds[] = {"d0", "d1", "d2", "d3"};
const char* const kFilters[] = {"", "n=gt.3", "n=is.null", "s=eq.x", "n=in.(1,2,250)", "id=lte.d1"};

struct Harness {
  std::unique_ptr<Engine> engine;
  std::int64_t now = 1000;
  std::int64_t server_seq = 0;
  std::int64_t last_mid = 0;
  std::set<std::int64_t> settled;
  std::optional<MutationBatch> in_flight;
  std::map<DocKey, Json> mirror;  // visible view rebuilt from DocChange outputs
  std::map<int, QuerySpec> queries;

  explicit Harness(EngineOptions o) : engine(std::make_unique<Engine>(std::move(o))) {}

  Json fields(fuzz::ByteReader& in) {
    Json f = Json::object();
    const std::uint8_t b = in.byte();
    if (b & 1) f["n"] = static_cast<int>(in.below(6)) - 1;  // -1..4
    if (b & 2) f["s"] = (b & 4) ? "x" : "y";
    if (b & 8) f["n"] = nullptr;
    if (b & 16) f["o"] = Json{{"k", b >> 5}};
    if (b & 32) f["n"] = 1.5;
    return f;
  }

  // Ops on "n" (the field the filters and queries read) or "c", never on a field the patch names.
  void add_ops(fuzz::ByteReader& in, MutationRequest& r) {
    const std::uint8_t b = in.byte();
    for (const char* name : {"n", "c"}) {
      if (!(b & (name[0] == 'n' ? 1 : 2))) continue;
      r.fields.erase(name);
      FieldOp op;
      if (b & 4) {
        op.kind = FieldOp::Kind::ServerTime;
      } else {
        op.by = (b & 8) ? Json(0.5) : Json(static_cast<int>(in.below(7)) - 3);
        if (b & 16) op.min = 0;
        if (b & 32) op.max = (b & 64) ? Json(4) : Json(2.5);
      }
      r.ops[name] = op;
    }
  }

  DocKey key(fuzz::ByteReader& in) {
    const std::uint8_t b = in.byte();
    return {kCollections[b & 1], kIds[(b >> 1) & 3]};
  }

  std::int64_t seq(fuzz::ByteReader& in) {
    const std::uint8_t b = in.byte();
    if (b < 200) return ++server_seq;       // the usual case: the next seq
    return static_cast<std::int64_t>(b - 200);  // replays and stale seqs
  }

  void drain() {
    EngineOutput out = engine->take_output();
    for (const auto& s : out.settled) {
      FUZZ_CHECK(settled.insert(s.mid).second, "mid settled twice: " + std::to_string(s.mid));
    }
    for (const auto& c : out.changes) {
      DocKey k{c.collection, c.id};
      auto it = mirror.find(k);
      const std::optional<Json> before = it == mirror.end() ? std::nullopt : std::optional<Json>(it->second);
      const std::optional<Json> said = c.before ? std::optional<Json>(Json::parse(*c.before)) : std::nullopt;
      FUZZ_CHECK(before == said, "DocChange.before differs from the previous after for " + c.collection + "/" + c.id);
      if (c.after) {
        mirror[k] = Json::parse(*c.after);
      } else {
        mirror.erase(k);
      }
    }
  }

  void rebuild_mirror() {
    mirror.clear();
    for (const char* c : kCollections) {
      for (const auto& d : engine->documents(c)) mirror[d.key()] = d.fields;
    }
  }

  // Every group in `ms` (in mid order) appears whole: first mid, all members, consecutive.
  static void check_whole_groups(const std::vector<Mutation>& ms, const char* what) {
    for (std::size_t i = 0; i < ms.size();) {
      const Mutation& m = ms[i];
      if (!m.group) {
        ++i;
        continue;
      }
      FUZZ_CHECK(m.mid == *m.group, std::string(what) + ": a group does not start at its first mid");
      for (std::int64_t k = 0; k < m.group_size; ++k) {
        FUZZ_CHECK(i + k < ms.size() && ms[i + k].group == m.group && ms[i + k].mid == m.mid + k &&
                       ms[i + k].group_size == m.group_size,
                   std::string(what) + ": a partial group, mid " + std::to_string(m.mid));
      }
      i += static_cast<std::size_t>(m.group_size);
    }
  }

  void check() {
    drain();
    const Outbox& ob = engine->outbox();
    std::int64_t prev = 0;
    std::vector<Mutation> waiting_groups;
    for (const auto& e : ob.entries()) {
      FUZZ_CHECK(e.mutation.mid > prev, "outbox mids not increasing");
      FUZZ_CHECK(e.mutation.mid < ob.next_mid(), "outbox mid >= next_mid");
      prev = e.mutation.mid;
      if (e.mutation.group && ob.group_unacknowledged(*e.mutation.group)) waiting_groups.push_back(e.mutation);
    }
    check_whole_groups(waiting_groups, "outbox");
    std::map<DocKey, Json> visible;
    for (const char* c : kCollections) {
      std::string last;
      for (const auto& d : engine->documents(c)) {
        FUZZ_CHECK(d.collection == c, "documents() returned another collection");
        FUZZ_CHECK(last.empty() || last < d.id, "documents() not in id order");
        last = d.id;
        const Document* g = engine->get(c, d.id);
        FUZZ_CHECK(g && g->fields == d.fields, "get() differs from documents() for " + d.id);
        visible[d.key()] = d.fields;
      }
      for (const char* id : kIds) {
        const Document* g = engine->get(c, id);
        if (g) FUZZ_CHECK(visible.count(DocKey{c, id}), "get() shows a document documents() lacks");
        if (engine->is_pending(c, id)) {
          FUZZ_CHECK(!ob.for_key(DocKey{c, id}).empty() || !engine->foreign().for_key(DocKey{c, id}).empty(),
                     "pending without an outbox entry or another tab's pending write");
        }
      }
    }
    FUZZ_CHECK(visible == mirror, "the DocChange stream does not reproduce the visible view");
    for (const auto& [qid, spec] : queries) check_query(qid, spec);
  }

  void check_query(int qid, const QuerySpec& spec) {
    std::vector<Document> docs = engine->documents(spec.collection);
    std::erase_if(docs, [&](const Document& d) { return !spec.where.matches(d.id, d.fields); });
    const bool by_id = !spec.order_by || (spec.order_by->path.size() == 1 && spec.order_by->path[0] == "id");
    std::stable_sort(docs.begin(), docs.end(), [&](const Document& a, const Document& b) {
      if (by_id) return spec.order_by && spec.order_by->descending ? a.id > b.id : a.id < b.id;
      int c = compare_values(lookup_field(a.fields, spec.order_by->path), lookup_field(b.fields, spec.order_by->path));
      if (c != 0) return spec.order_by->descending ? c > 0 : c < 0;
      return a.id < b.id;
    });
    auto total = engine->query_total(qid);
    FUZZ_CHECK(total.ok() && *total == docs.size(), "live query total differs from a full evaluation");
    if (spec.limit && docs.size() > *spec.limit) docs.resize(*spec.limit);
    auto got = engine->query_result(qid);
    FUZZ_CHECK(got.ok(), "query_result failed");
    FUZZ_CHECK(got->size() == docs.size(), "live query size differs from a full evaluation");
    for (std::size_t i = 0; i < docs.size(); ++i) {
      FUZZ_CHECK((*got)[i].id == docs[i].id && (*got)[i].fields == docs[i].fields,
                 "live query result differs from a full evaluation at " + std::to_string(i));
    }
  }

  void run_step(fuzz::ByteReader& in) {
    const std::uint8_t op = in.byte() % 14;
    now += 1 + in.below(50) * 100;
    switch (op) {
      case 0:
      case 1: {  // mutate a batch of 1..3, maybe atomic, with ops and conditions
        std::vector<MutationRequest> batch;
        const std::uint8_t head = in.byte();
        const std::uint32_t n = 1 + head % 3;
        const bool atomic = (head & 4) != 0;
        for (std::uint32_t i = 0; i < n; ++i) {
          MutationRequest r;
          const std::uint8_t b = in.byte();
          r.op = static_cast<MutationOp>(b % 3);
          DocKey k = key(in);
          r.collection = k.collection;
          r.id = k.id;
          r.fields = fields(in);
          if (b & 8) r.base_version = in.small_int();
          if (r.op != MutationOp::Delete && (b & 16)) add_ops(in, r);
          if (r.op != MutationOp::Insert && (b & 32)) r.condition = kFilters[in.below(6)];
          batch.push_back(std::move(r));
        }
        const std::int64_t next = engine->outbox().next_mid();
        auto mids = engine->mutate(batch, now, atomic);
        if (atomic && batch.size() > engine->options().max_batch) {
          FUZZ_CHECK(!mids.ok(), "an atomic batch over max_batch was accepted");
          FUZZ_CHECK(engine->outbox().next_mid() == next, "a refused atomic batch consumed mids");
          break;
        }
        FUZZ_CHECK(mids.ok(), "mutate of a valid batch failed: " + (mids.ok() ? "" : mids.error().message));
        FUZZ_CHECK(mids->size() == batch.size(), "mutate returned the wrong number of mids");
        for (std::int64_t mid : *mids) {
          FUZZ_CHECK(mid > last_mid, "mid not above every earlier mid: " + std::to_string(mid));
          last_mid = mid;
          const Mutation& m = engine->outbox().find(mid)->mutation;
          if (atomic && batch.size() > 1) {
            FUZZ_CHECK(m.group == mids->front() && m.group_size == static_cast<std::int64_t>(batch.size()),
                       "an atomic batch is not one group");
          } else {
            FUZZ_CHECK(!m.group, "a group without an atomic batch of two or more");
          }
        }
        if (atomic) FUZZ_CHECK(mids->back() - mids->front() + 1 == static_cast<std::int64_t>(mids->size()), "group mids not consecutive");
        break;
      }
      case 2: {  // invalid batch: must be refused as a whole
        std::vector<MutationRequest> batch(2);
        batch[0].collection = "a";
        batch[0].id = "d0";
        batch[1].collection = (in.byte() & 1) ? "Bad" : "a";
        batch[1].id = "bad id";
        const std::int64_t before = engine->outbox().next_mid();
        FUZZ_CHECK(!engine->mutate(batch, now).ok(), "an invalid batch was accepted");
        FUZZ_CHECK(engine->outbox().next_mid() == before, "a refused batch consumed mids");
        break;
      }
      case 3:
        engine->set_transport_ready(in.byte() & 1);
        if (!engine->in_flight()) in_flight.reset();
        break;
      case 4: {  // take_batch
        const bool was_in_flight = engine->in_flight();
        auto b = engine->take_batch(now);
        if (!b) break;
        FUZZ_CHECK(!was_in_flight, "a batch was handed out while another was in flight");
        FUZZ_CHECK(!b->mutations.empty(), "an empty batch");
        // Only a group that comes first may take the batch past max_batch.
        FUZZ_CHECK(b->mutations.size() <= engine->options().max_batch ||
                       (b->mutations[0].group && b->mutations.size() == static_cast<std::size_t>(b->mutations[0].group_size)),
                   "batch size");
        check_whole_groups(b->mutations, "batch");
        auto unacked = engine->outbox().unacknowledged(1);
        FUZZ_CHECK(!unacked.empty() && unacked[0].mid == b->mutations[0].mid,
                   "batch does not start at the oldest unacknowledged mid");
        // Every member awaiting a verdict up to the batch's end is in it: nothing is skipped.
        for (const auto& e : engine->outbox().entries()) {
          if (e.mutation.mid > b->mutations.back().mid) break;
          if (!e.applied_seq) {
            FUZZ_CHECK(std::any_of(b->mutations.begin(), b->mutations.end(),
                                   [&](const Mutation& m) { return m.mid == e.mutation.mid; }),
                       "the batch skipped a mutation awaiting a verdict");
          }
        }
        for (std::size_t i = 1; i < b->mutations.size(); ++i) {
          FUZZ_CHECK(b->mutations[i - 1].mid < b->mutations[i].mid, "batch mids not increasing");
        }
        FUZZ_CHECK(b->client == engine->client_id(), "batch from another client id");
        in_flight = std::move(b);
        break;
      }
      case 5: {  // results: for the in-flight batch, or for arbitrary mids
        MutationResults res;
        std::vector<std::int64_t> mids;
        if (in_flight && (in.byte() & 3) != 0) {
          for (const auto& m : in_flight->mutations) mids.push_back(m.mid);
        } else {
          for (std::uint32_t i = in.below(3); i > 0; --i) mids.push_back(1 + in.small_int() % 16);
        }
        for (std::int64_t mid : mids) {
          if (in.byte() % 5 == 0) continue;  // a verdict the server lost
          MutationResult r;
          r.mid = mid;
          const std::uint8_t s = in.byte() % 4;
          r.status = s == 0 ? ResultStatus::Rejected : (s == 1 ? ResultStatus::Duplicate : ResultStatus::Applied);
          if (r.status != ResultStatus::Rejected) r.seq = seq(in);
          if (r.status == ResultStatus::Rejected || (r.status == ResultStatus::Duplicate && (s & 2))) {
            const std::uint8_t c = in.byte();
            r.code = (c & 1) ? "constraint" : "conflict";
            r.message = "fuzz";
            if (c & 2) r.failed_mid = mids.front();
            if (c & 4) r.current = (c & 8) ? Json(nullptr) : Json{{"version", in.small_int()}, {"fields", fields(in)}};
          }
          res.results.push_back(std::move(r));
        }
        res.seq = server_seq;
        engine->receive(ServerMessage{std::move(res)}, now);
        in_flight.reset();
        break;
      }
      case 6: {  // a committed change, maybe from this client
        ChangeMsg c;
        c.seq = seq(in);
        DocKey k = key(in);
        c.collection = k.collection;
        c.id = k.id;
        const std::uint8_t b = in.byte();
        c.op = static_cast<ChangeOp>(b % 3);
        c.version = (b & 4) ? in.small_int() : 0;
        c.fields = c.op == ChangeOp::Delete ? Json::object() : fields(in);
        if (b & 8) c.origin = Origin{(b & 16) ? engine->client_id() : "other", 1 + in.small_int() % 16};
        engine->receive(ServerMessage{std::move(c)}, now);
        break;
      }
      case 7: {  // a custom event
        EventMsg e;
        e.seq = seq(in);
        e.name = "fuzz:event";
        e.data = Json{{"v", in.byte()}};
        engine->receive(ServerMessage{std::move(e)}, now);
        break;
      }
      case 8: {  // hello / reset / error
        const std::uint8_t b = in.byte() % 3;
        if (b == 0) engine->receive(ServerMessage{HelloMsg{server_seq}}, now);
        if (b == 1) engine->receive(ServerMessage{ResetMsg{"cursor_expired", server_seq}}, now);
        if (b == 2) engine->receive(ServerMessage{ErrorMsg{Error{"rate_limited", "slow down", ""}}}, now);
        break;
      }
      case 9: {  // a snapshot of some collection(s)
        std::vector<Document> docs;
        const std::uint8_t b = in.byte();
        std::vector<std::string> colls;
        if (b & 1) colls.push_back(kCollections[(b >> 1) & 1]);
        for (std::uint32_t n = in.below(4); n > 0; --n) {
          DocKey k = key(in);
          if (!colls.empty() && k.collection != colls[0]) continue;
          if (std::any_of(docs.begin(), docs.end(), [&](const Document& d) { return d.key() == k; })) continue;
          docs.push_back(Document{k.collection, k.id, in.small_int(), fields(in), false});
        }
        const std::int64_t at = (b & 4) ? server_seq : in.small_int();
        engine->apply_snapshot(colls, std::move(docs), at, now);
        break;
      }
      case 10:
        engine->tick(now + in.below(4) * 10'000);
        if (!engine->in_flight()) in_flight.reset();
        break;
      case 11: {  // add or remove a live query
        const std::uint8_t b = in.byte();
        if ((b & 1) && !queries.empty()) {
          auto it = queries.begin();
          std::advance(it, in.below(static_cast<std::uint32_t>(queries.size())));
          engine->remove_query(it->first);
          queries.erase(it);
          break;
        }
        QuerySpec spec;
        spec.collection = kCollections[(b >> 1) & 1];
        spec.where = *Filter::parse(kFilters[in.below(6)]);
        const std::uint8_t o = in.byte();
        if (o & 1) spec.order_by = OrderBy{{(o & 2) ? "n" : "id"}, (o & 4) != 0};
        if (o & 8) spec.limit = in.below(4);
        const int qid = engine->add_query(spec);
        queries.emplace(qid, std::move(spec));
        break;
      }
      case 13: {  // another tab's pending writes: add, replace or drop
        const std::uint8_t b = in.byte();
        const std::string client = (b & 4) ? "tab2" : "tab3";
        if ((b & 3) == 2) {
          std::vector<std::int64_t> mids;
          for (std::uint32_t i = in.below(3); i > 0; --i) mids.push_back(1 + in.small_int() % 16);
          engine->drop_foreign(client, mids);
          break;
        }
        std::vector<Mutation> list;
        for (std::uint32_t i = in.below(3); i > 0; --i) {
          Mutation m;
          m.mid = 1 + in.small_int() % 16;
          const std::uint8_t o = in.byte();
          m.op = static_cast<MutationOp>(o % 3);
          DocKey k = key(in);
          m.collection = k.collection;
          m.id = k.id;
          m.fields = m.op == MutationOp::Delete ? Json::object() : fields(in);
          if (o & 8) m.base_version = in.small_int();
          list.push_back(std::move(m));
        }
        const std::size_t own = engine->outbox().size();
        if ((b & 3) == 0) engine->add_foreign(client, std::move(list), now);
        else engine->replace_foreign(client, std::move(list), now);
        FUZZ_CHECK(engine->outbox().size() == own, "another tab's writes entered this engine's outbox");
        break;
      }
      case 12: {  // persist and restore
        drain();
        const std::string bytes = engine->snapshot_bytes();
        auto restored = Engine::restore(bytes, engine->options());
        FUZZ_CHECK(restored.ok(), "restore of snapshot_bytes() failed: " +
                                      (restored.ok() ? "" : restored.error().message));
        FUZZ_CHECK((*restored)->snapshot_bytes() == bytes, "snapshot -> restore -> snapshot is not a fixpoint");
        FUZZ_CHECK((*restored)->outbox() == engine->outbox(), "restore changed the outbox");
        FUZZ_CHECK((*restored)->cursor() == engine->cursor(), "restore changed the cursor");
        if (in.byte() & 1) {  // the app restarted: continue with the restored engine
          engine = std::move(*restored);
          in_flight.reset();
          queries.clear();
          rebuild_mirror();
        }
        break;
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::ByteReader in(data, size);
  EngineOptions o;
  o.client_id = "me";
  const std::uint8_t cfg = in.byte();
  o.max_batch = 1 + cfg % 4;
  o.history_limit = (cfg >> 2) % 5;  // 0..4: tiny rings wrap often
  if (cfg & 0x80) o.collections = {"a"};
  o.request_timeout_ms = 20'000;
  Harness h(o);
  int steps = 0;
  while (!in.empty() && steps++ < 96) {
    h.run_step(in);
    h.check();
  }
  return 0;
}
