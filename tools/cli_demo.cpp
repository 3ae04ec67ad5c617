// A small, real walk-through of the core engine, printed step by step. `npm start` runs the
// demo app once it exists; this remains available as `npm run demo:cli`.
#include <cstdio>

#include "core/engine.hpp"

using namespace syncline;

static void show(const char* title, const Engine& e, int query) {
  std::printf("\n== %s\n", title);
  for (const auto& d : e.documents("bills")) {
    std::printf("  %-6s v%-3lld %s%s\n", d.id.c_str(), static_cast<long long>(d.version), d.fields.dump().c_str(),
                e.is_pending("bills", d.id) ? "   (pending)" : "");
  }
  auto res = e.query_result(query);
  std::printf("  live query 'status=eq.unpaid order by total desc limit 2':");
  for (const auto& d : *res) std::printf(" %s", d.id.c_str());
  std::printf("\n  outbox: %zu pending, cursor: %lld\n", e.outbox().size(), static_cast<long long>(e.cursor()));
}

int main() {
  EngineOptions o;
  o.client_id = "cli-demo";
  o.collections = {"bills"};
  Engine e(o);
  e.set_transport_ready(true);

  QuerySpec spec;
  spec.collection = "bills";
  spec.where = *Filter::parse("status=eq.unpaid");
  spec.order_by = *parse_order_by("total.desc");
  spec.limit = 2;
  int q = e.add_query(spec);

  auto server_change = [&](std::int64_t seq, const char* id, ChangeOp op, Json fields, std::optional<Origin> origin = {}) {
    ChangeMsg c{seq, "bills", id, op, seq, std::move(fields), std::move(origin)};
    e.receive(c, seq);
  };

  server_change(1, "b-100", ChangeOp::Insert, {{"total", 120}, {"status", "unpaid"}});
  server_change(2, "b-101", ChangeOp::Insert, {{"total", 80}, {"status", "paid"}});
  show("server state arrives", e, q);

  e.mutate({{MutationOp::Insert, "bills", "b-102", {{"total", 300}, {"status", "unpaid"}}, std::nullopt},
            {MutationOp::Update, "bills", "b-100", {{"status", "paid"}}, std::nullopt}},
           3);
  show("two local writes (optimistic, offline-safe)", e, q);

  auto batch = e.take_batch(4);
  std::printf("\n-> would POST /v1/mutations %s\n", encode(*batch).dump().c_str());

  server_change(3, "b-100", ChangeOp::Update, {{"total", 125}, {"status", "unpaid"}});
  show("another client edits b-100's total: pending write rebased on top", e, q);

  MutationResults r{5, {{1, ResultStatus::Applied, 4, "", ""}, {2, ResultStatus::Rejected, 0, "conflict", "stale"}}};
  e.receive(r, 5);
  for (const auto& s : e.take_output().settled) {
    std::printf("\n<- mid %lld %s%s%s\n", static_cast<long long>(s.mid), s.applied ? "applied" : "rejected: ",
                s.code.c_str(), s.applied ? "" : " (rolled back)");
  }
  server_change(4, "b-102", ChangeOp::Insert, {{"total", 300}, {"status", "unpaid"}}, Origin{"cli-demo", 1});
  show("acks + stream: outbox drained, no flicker", e, q);

  std::string bytes = e.snapshot_bytes();
  auto restored = Engine::restore(bytes, o);
  std::printf("\nsnapshot: %zu bytes, restore %s, %zu history entries\n", bytes.size(),
              restored.ok() ? "ok" : restored.error().message.c_str(), e.history().size());
  return 0;
}
