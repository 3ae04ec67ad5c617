// Unit tests of the client engine: optimistic overlay, outbox, acks, rebase, rollback.
#include "core/engine.hpp"

#include <gtest/gtest.h>

#include "core/change_helpers.hpp"

namespace syncline {
namespace {

EngineOptions opts() {
  EngineOptions o;
  o.client_id = "c1";
  o.collections = {"bills", "products"};
  return o;
}

using testing::change;
using testing::detail;

MutationRequest ins(std::string id, Json fields) {
  return MutationRequest{MutationOp::Insert, "bills", std::move(id), std::move(fields), std::nullopt};
}
MutationRequest upd(std::string id, Json fields, std::optional<std::int64_t> base = std::nullopt) {
  return MutationRequest{MutationOp::Update, "bills", std::move(id), std::move(fields), base};
}
MutationRequest del(std::string id) { return MutationRequest{MutationOp::Delete, "bills", std::move(id), {}, std::nullopt}; }

MutationResults applied(std::int64_t mid, std::int64_t seq) {
  return MutationResults{seq, {MutationResult{mid, ResultStatus::Applied, seq, "", ""}}};
}

Json fields_of(const Engine& e, const std::string& id) {
  const Document* d = e.get("bills", id);
  return d ? d->fields : Json();
}

TEST(Engine, LocalInsertIsVisibleAtOnceAndPending) {
  Engine e(opts());
  auto mids = e.mutate({ins("b1", {{"total", 10}})}, 0);
  ASSERT_TRUE(mids.ok());
  EXPECT_EQ(mids->at(0), 1);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 10}}));
  EXPECT_TRUE(e.is_pending("bills", "b1"));
  auto out = e.take_output();
  EXPECT_TRUE(out.outbox_dirty);
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_FALSE(out.changes[0].before.has_value());
}

TEST(Engine, AckBeforeChangeKeepsDocumentVisibleUntilSeqSeen) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({ins("b1", {{"total", 10}})}, 0);
  auto batch = e.take_batch(0);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->client, "c1");
  e.take_output();
  e.receive(applied(1, 5), 1);
  auto out = e.take_output();
  ASSERT_EQ(out.settled.size(), 1u);
  EXPECT_TRUE(out.settled[0].applied);
  EXPECT_EQ(out.settled[0].seq, 5);
  EXPECT_TRUE(out.changes.empty()) << "no flicker: the view must not change on ack";
  EXPECT_EQ(e.outbox().size(), 1u);  // waits for seq 5
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 10}}));
  e.receive(change(5, "bills", "b1", ChangeOp::Insert, {{"total", 10}}, Origin{"c1", 1}), 2);
  out = e.take_output();
  EXPECT_TRUE(e.outbox().empty());
  EXPECT_FALSE(e.is_pending("bills", "b1"));
  // Server state equal to the optimistic state: the fields do not move (no flicker), but the
  // document is no longer pending and has a version, which the app must hear about.
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].before, out.changes[0].after);
  EXPECT_EQ(e.get("bills", "b1")->version, 5);
}

TEST(Engine, AConfirmedWriteWithUnchangedFieldsRefreshesTheQueriesShowingIt) {
  Engine e(opts());
  e.set_transport_ready(true);
  const int all = e.add_query(QuerySpec{"bills", Filter{}, std::nullopt, std::nullopt});
  const int top1 = e.add_query(QuerySpec{"bills", Filter{}, OrderBy{{"total"}, true}, 1});
  const int sums = e.add_aggregate(AggregateSpec{"bills", Filter{}, {}, std::vector<std::string>{"total"}});
  e.receive(change(1, "bills", "big", ChangeOp::Insert, {{"total", 99}}), 0);
  e.mutate({ins("b1", {{"total", 10}})}, 0);
  ASSERT_TRUE(e.take_batch(0));
  e.take_output();
  // The server applies it with exactly the fields the view shows (change first, then results).
  e.receive(change(2, "bills", "b1", ChangeOp::Insert, {{"total", 10}}, Origin{"c1", 1}), 1);
  e.receive(applied(1, 2), 1);
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].id, "b1");
  EXPECT_EQ(out.changes[0].before, out.changes[0].after) << "fields unchanged: no flicker";
  EXPECT_TRUE(out.queries_changed.count(all)) << "the query showing b1 now shows it confirmed";
  EXPECT_FALSE(out.queries_changed.count(top1)) << "b1 is outside that query's limit";
  EXPECT_FALSE(out.aggregates_changed.count(sums)) << "aggregates read fields only";
  const Document* d = e.get("bills", "b1");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->version, 2);
  EXPECT_FALSE(e.is_pending("bills", "b1"));
  // Nothing moved at all: nothing is reported.
  e.receive(change(3, "bills", "other", ChangeOp::Insert, {{"total", 1}}), 2);
  out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].id, "other");
}

TEST(Engine, WithChangeDetailOffChangesNameTheDocumentAndQueriesStillFollow) {
  Engine e(opts());
  const int top1 = e.add_query(QuerySpec{"bills", Filter{}, OrderBy{{"total"}, true}, 1});
  const int sums = e.add_aggregate(AggregateSpec{"bills", Filter{}, {}, std::vector<std::string>{"total"}});
  e.set_change_detail(false);
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"total", 5}}), 0);
  e.receive(change(2, "bills", "b1", ChangeOp::Update, {{"total", 7}}), 0);
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 2u);
  for (const auto& c : out.changes) {
    EXPECT_EQ(c.id, "b1");
    EXPECT_FALSE(c.before.has_value());
    EXPECT_FALSE(c.after.has_value());
  }
  EXPECT_TRUE(out.queries_changed.count(top1));
  EXPECT_TRUE(out.aggregates_changed.count(sums));
  EXPECT_EQ(e.aggregate(sums)->total().sum, 7);
  // An update that leaves the fields as they are moves only the version: the query showing the
  // document refreshes, the aggregate does not.
  e.receive(change(3, "bills", "b1", ChangeOp::Update, {{"total", 7}}), 0);
  out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_TRUE(out.queries_changed.count(top1));
  EXPECT_FALSE(out.aggregates_changed.count(sums));
  e.set_change_detail(true);
  e.receive(change(4, "bills", "b1", ChangeOp::Update, {{"total", 9}}), 0);
  out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(detail(out.changes[0].before), (Json{{"total", 7}}));
  EXPECT_EQ(detail(out.changes[0].after), (Json{{"total", 9}}));
}

TEST(Engine, ChangeWithOwnOriginSettlesBeforeAck) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({ins("b1", {{"total", 10}})}, 0);
  e.take_batch(0);
  e.take_output();
  e.receive(change(7, "bills", "b1", ChangeOp::Insert, {{"total", 10}}, Origin{"c1", 1}), 1);
  auto out = e.take_output();
  ASSERT_EQ(out.settled.size(), 1u);
  EXPECT_EQ(out.settled[0].seq, 7);
  EXPECT_TRUE(e.outbox().empty());
  // A late ack is ignored.
  e.receive(applied(1, 7), 2);
  out = e.take_output();
  EXPECT_TRUE(out.settled.empty());
}

TEST(Engine, RebaseReappliesSeveralPendingPatchesOverRemoteChange) {
  Engine e(opts());
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"a", 0}, {"b", 0}, {"c", 0}}), 0);
  e.mutate({upd("b1", {{"a", 1}}), upd("b1", {{"a", 2}, {"b", 2}}), upd("b1", {{"c", nullptr}})}, 0);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 2}, {"b", 2}}));
  // Another client changes a, b and adds d: local pending patches win where they touch.
  e.receive(change(2, "bills", "b1", ChangeOp::Update, {{"a", 9}, {"b", 9}, {"c", 9}, {"d", 9}}), 1);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 2}, {"b", 2}, {"d", 9}}));
  EXPECT_EQ(e.base().find("bills", "b1")->fields, (Json{{"a", 9}, {"b", 9}, {"c", 9}, {"d", 9}}));
}

TEST(Engine, RejectedMutationInTheMiddleIsRolledBack) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"a", 0}}), 0);
  e.mutate({upd("b1", {{"a", 1}}), upd("b1", {{"a", 2}}), upd("b1", {{"b", 3}})}, 0);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 2}, {"b", 3}}));
  auto batch = e.take_batch(0);
  ASSERT_EQ(batch->mutations.size(), 3u);
  e.take_output();
  MutationResults r{4,
                    {MutationResult{1, ResultStatus::Applied, 2, "", ""},
                     MutationResult{2, ResultStatus::Rejected, 0, "conflict", "stale"},
                     MutationResult{3, ResultStatus::Applied, 3, "", ""}}};
  e.receive(r, 1);
  auto out = e.take_output();
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 1}, {"b", 3}}));
  ASSERT_EQ(out.settled.size(), 3u);
  EXPECT_FALSE(out.settled[1].applied);
  EXPECT_EQ(out.settled[1].code, "conflict");
  EXPECT_EQ(e.history().counts().at("rejected"), 1);
  e.receive(change(2, "bills", "b1", ChangeOp::Update, {{"a", 1}}, Origin{"c1", 1}), 2);
  e.receive(change(3, "bills", "b1", ChangeOp::Update, {{"a", 1}, {"b", 3}}, Origin{"c1", 3}), 3);
  EXPECT_TRUE(e.outbox().empty());
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 1}, {"b", 3}}));
}

TEST(Engine, DuplicateAndOutOfOrderChangesAreNoOps) {
  Engine e(opts());
  e.receive(change(5, "bills", "b1", ChangeOp::Insert, {{"v", 5}}), 0);
  e.receive(change(3, "bills", "b1", ChangeOp::Update, {{"v", 3}}), 0);
  e.receive(change(5, "bills", "b1", ChangeOp::Insert, {{"v", 5}}), 0);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"v", 5}}));
  e.receive(change(6, "bills", "b1", ChangeOp::Delete, Json::object()), 0);
  EXPECT_EQ(e.get("bills", "b1"), nullptr);
  ASSERT_NE(e.base().find("bills", "b1"), nullptr);
  EXPECT_TRUE(e.base().find("bills", "b1")->deleted);
  e.receive(change(4, "bills", "b1", ChangeOp::Update, {{"v", 4}}), 0);
  EXPECT_EQ(e.get("bills", "b1"), nullptr) << "tombstone keeps an older replay from resurrecting it";
  EXPECT_EQ(e.cursor(), 6);
}

TEST(Engine, AChangeOrEventAtOrBelowTheCursorIsLoggedAndDeliveredOnce) {
  // Replayed frames (a duplicated delivery, or another tab catching this one up) overlap what
  // the replica saw: the history and the app's event stream must not show them twice.
  Engine e(opts());
  EventMsg ev;
  ev.seq = 2;
  ev.name = "bill_paid";
  for (int round = 0; round < 2; ++round) {
    e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"v", 1}}), 0);
    e.receive(ServerMessage{ev}, 0);
    e.receive(change(3, "bills", "b1", ChangeOp::Update, {{"v", 3}}), 0);
  }
  EXPECT_EQ(e.history().counts().at("insert"), 1);
  EXPECT_EQ(e.history().counts().at("update"), 1);
  EXPECT_EQ(e.history().counts().at("bill_paid"), 1);
  EXPECT_EQ(e.take_output().events.size(), 1u);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"v", 3}}));
  EXPECT_EQ(e.cursor(), 3);
}

TEST(Engine, OneBatchInFlightAndResendStartsAtOldest) {
  Engine e(opts());
  e.mutate({ins("b1", {{"x", 1}}), ins("b2", {{"x", 2}})}, 0);
  EXPECT_FALSE(e.take_batch(0)) << "not ready";
  e.set_transport_ready(true);
  auto b = e.take_batch(0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mutations.size(), 2u);
  e.mutate({ins("b3", {{"x", 3}})}, 1);
  EXPECT_FALSE(e.take_batch(1)) << "a batch is already in flight";
  e.on_batch_failed();
  b = e.take_batch(2);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->mutations.size(), 3u);
  EXPECT_EQ(b->mutations[0].mid, 1);
  EXPECT_EQ(b->mutations[2].mid, 3);
  // Timeout also frees the slot.
  e.tick(2 + e.options().request_timeout_ms);
  EXPECT_TRUE(e.take_batch(3));
}

TEST(Engine, BatchTakesOnlyTheDurablePrefixOfTheOutbox) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({ins("b1", {{"x", 1}}), ins("b2", {{"x", 2}}), ins("b3", {{"x", 3}})}, 0);
  EXPECT_FALSE(e.take_batch(0, 1)) << "nothing durable yet: nothing may leave";
  auto b = e.take_batch(0, 3);  // mids 1 and 2 are on disk, 3 is not
  ASSERT_TRUE(b);
  ASSERT_EQ(b->mutations.size(), 2u);
  EXPECT_EQ(b->mutations.back().mid, 2);
  e.receive(MutationResults{2, {MutationResult{1, ResultStatus::Applied, 1, {}, {}},
                                MutationResult{2, ResultStatus::Applied, 2, {}, {}}}}, 1);
  b = e.take_batch(2, 4);
  ASSERT_TRUE(b) << "the slot is free again once the batch is answered";
  ASSERT_EQ(b->mutations.size(), 1u);
  EXPECT_EQ(b->mutations[0].mid, 3);
}

TEST(Engine, LocalDeleteHidesAndRejectedDeleteRestores) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"a", 1}}), 0);
  e.mutate({del("b1")}, 0);
  EXPECT_EQ(e.get("bills", "b1"), nullptr);
  e.take_batch(0);
  e.receive(MutationResults{1, {MutationResult{1, ResultStatus::Rejected, 0, "forbidden", "no"}}}, 1);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 1}}));
}

TEST(Engine, InvalidMutationBatchIsRefusedWhole) {
  Engine e(opts());
  auto r = e.mutate({ins("ok", {{"a", 1}}), ins("bad id!", {{"a", 1}})}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_mutation");
  EXPECT_EQ(r.error().field, "mutations[1].id");
  EXPECT_TRUE(e.outbox().empty());
  EXPECT_EQ(e.get("bills", "ok"), nullptr);
}

TEST(Engine, ResetAsksForSnapshotWhichReplacesBase) {
  Engine e(opts());
  e.receive(change(1, "bills", "gone", ChangeOp::Insert, {{"a", 1}}), 0);
  e.receive(change(2, "bills", "kept", ChangeOp::Insert, {{"a", 1}}), 0);
  e.take_output();
  e.receive(ResetMsg{"cursor_expired", 50}, 1);
  auto out = e.take_output();
  EXPECT_TRUE(out.need_snapshot);
  EXPECT_TRUE(e.needs_snapshot());
  e.apply_snapshot({"bills"}, {Document{"bills", "kept", 40, {{"a", 2}}, false}}, 50, 2);
  EXPECT_EQ(e.get("bills", "gone"), nullptr);
  EXPECT_EQ(fields_of(e, "kept"), (Json{{"a", 2}}));
  EXPECT_EQ(e.cursor(), 50);
  EXPECT_FALSE(e.needs_snapshot());
  out = e.take_output();
  EXPECT_EQ(out.changes.size(), 2u);
}

TEST(Engine, SnapshotRestoreRoundTripKeepsOutboxAndMids) {
  EngineOptions o = opts();
  o.history_limit = 5;
  Engine e(o);
  e.receive(change(3, "bills", "b1", ChangeOp::Insert, {{"a", 1}}), 0);
  e.mutate({upd("b1", {{"a", 2}}), ins("b2", {{"z", true}})}, 0);
  std::string bytes = e.snapshot_bytes();
  auto r = Engine::restore(bytes, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Engine& e2 = **r;
  EXPECT_EQ(e2.cursor(), 3);
  EXPECT_EQ(e2.outbox(), e.outbox());
  EXPECT_EQ(e2.base(), e.base());
  EXPECT_EQ(e2.history(), e.history());
  EXPECT_EQ(e2.documents("bills"), e.documents("bills"));
  e2.set_transport_ready(true);
  auto b = e2.take_batch(0);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->mutations[0].mid, 1);
  auto mids = e2.mutate({ins("b3", Json::object())}, 0);
  ASSERT_TRUE(mids.ok()) << mids.error().message;
  EXPECT_EQ(mids->at(0), 3) << "mids keep increasing across restarts";
}

TEST(Engine, RestoreRejectsGarbage) {
  auto r = Engine::restore("not cbor at all", opts());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_snapshot");
}

TEST(Engine, LiveQueryFollowsLocalAndRemoteChanges) {
  Engine e(opts());
  e.receive(change(1, "bills", "a", ChangeOp::Insert, {{"total", 5}, {"status", "open"}}), 0);
  e.receive(change(2, "bills", "b", ChangeOp::Insert, {{"total", 50}, {"status", "paid"}}), 0);
  QuerySpec spec;
  spec.collection = "bills";
  spec.where = *Filter::parse("status=eq.open");
  spec.order_by = OrderBy{{"total"}, true};
  spec.limit = 10;
  int q = e.add_query(spec);
  e.take_output();
  EXPECT_EQ(e.query_result(q)->size(), 1u);
  e.mutate({ins("c", {{"total", 7}, {"status", "open"}})}, 0);
  auto out = e.take_output();
  EXPECT_TRUE(out.queries_changed.count(q));
  auto res = *e.query_result(q);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].id, "c");
  e.receive(change(3, "bills", "b", ChangeOp::Update, {{"total", 60}, {"status", "paid"}}), 0);
  out = e.take_output();
  EXPECT_FALSE(out.queries_changed.count(q)) << "unrelated change must not notify";
  EXPECT_FALSE(e.query_result(999).ok());
}

TEST(Engine, AggregateByStatus) {
  Engine e(opts());
  AggregateSpec spec;
  spec.collection = "bills";
  spec.group_by = {"status"};
  spec.sum_of = std::vector<std::string>{"total"};
  int a = e.add_aggregate(spec);
  e.receive(change(1, "bills", "a", ChangeOp::Insert, {{"total", 5}, {"status", "open"}}), 0);
  e.receive(change(2, "bills", "b", ChangeOp::Insert, {{"total", 50}, {"status", "paid"}}), 0);
  e.mutate({upd("a", {{"status", "paid"}})}, 0);
  auto out = e.take_output();
  EXPECT_TRUE(out.aggregates_changed.count(a));
  const auto& groups = e.aggregate(a)->groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups.at("\"paid\"").count, 2);
  EXPECT_DOUBLE_EQ(groups.at("\"paid\"").sum, 55);
}

TEST(Engine, AckForUnsubscribedCollectionLeavesOutboxAtOnce) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({MutationRequest{MutationOp::Insert, "stock_transactions", "t1", {{"qty", 1}}, std::nullopt}}, 0);
  e.take_batch(0);
  e.receive(applied(1, 9), 1);
  EXPECT_TRUE(e.outbox().empty());
}

}  // namespace
}  // namespace syncline

namespace syncline {
namespace {

TEST(EngineQueries, TotalOnlyChangeOutsideTheWindowNotifies) {
  Engine e(opts());
  QuerySpec spec;
  spec.collection = "bills";
  spec.order_by = OrderBy{{"total"}, false};
  spec.limit = 1;
  int q = e.add_query(spec);
  e.receive(change(1, "bills", "a", ChangeOp::Insert, {{"total", 1}}), 0);
  e.take_output();
  e.receive(change(2, "bills", "b", ChangeOp::Insert, {{"total", 9}}), 0);
  auto out = e.take_output();
  EXPECT_TRUE(out.queries_changed.count(q)) << "total went from 1 to 2";
  EXPECT_EQ(*e.query_total(q), 2u);
  e.receive(change(3, "bills", "b", ChangeOp::Update, {{"total", 8}}), 0);
  out = e.take_output();
  EXPECT_FALSE(out.queries_changed.count(q)) << "neither window nor total changed";
}

}  // namespace
}  // namespace syncline

namespace syncline {
namespace {

TEST(EngineSend, LateAnswerToAnOlderBatchDoesNotFreeTheCurrentOne) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({ins("a", {{"x", 1}})}, 0);
  ASSERT_TRUE(e.take_batch(0));  // mids [1]
  e.receive(applied(1, 1), 1);   // answered
  e.mutate({ins("b", {{"x", 2}})}, 2);
  auto b = e.take_batch(2);      // mids [2]
  ASSERT_TRUE(b);
  e.receive(applied(1, 1), 3);   // a duplicated, late answer for mid 1
  EXPECT_TRUE(e.in_flight()) << "mid 2 is still waiting for its own answer";
  e.receive(applied(2, 2), 4);
  EXPECT_FALSE(e.in_flight());
}

}  // namespace
}  // namespace syncline

namespace syncline {
namespace {

TEST(EnginePersistence, MarkAllDirtyAsksToRewriteEverything) {
  Engine e(opts());
  e.receive(change(1, "bills", "a", ChangeOp::Insert, {{"x", 1}}), 0);
  e.receive(change(2, "bills", "b", ChangeOp::Delete, Json::object()), 0);
  e.mutate({ins("c", {{"x", 3}})}, 0);
  e.take_output();
  e.mark_all_dirty();
  auto out = e.take_output();
  EXPECT_EQ(out.dirty_docs.size(), 2u) << "live documents and tombstones";
  EXPECT_TRUE(out.outbox_dirty && out.meta_dirty && out.history_dirty);
}

}  // namespace
}  // namespace syncline
