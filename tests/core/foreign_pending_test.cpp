// Unit tests of other tabs' pending writes in the engine's view (ForeignPending).
#include "core/foreign_pending.hpp"

#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "core/change_helpers.hpp"

namespace syncline {
namespace {

EngineOptions opts() {
  EngineOptions o;
  o.client_id = "tab-a";
  o.collections = {"bills"};
  return o;
}

Mutation mut(std::int64_t mid, MutationOp op, std::string id, Json fields = Json::object(),
             std::string collection = "bills") {
  Mutation m;
  m.mid = mid;
  m.op = op;
  m.collection = std::move(collection);
  m.id = std::move(id);
  m.fields = std::move(fields);
  return m;
}

ChangeMsg change(std::int64_t seq, std::string id, ChangeOp op, Json fields, std::optional<Origin> origin = std::nullopt) {
  return testing::change(seq, "bills", std::move(id), op, std::move(fields), std::move(origin));
}

Json fields_of(const Engine& e, const std::string& id) {
  const Document* d = e.get("bills", id);
  return d ? d->fields : Json();
}

TEST(ForeignPending, AnotherTabsInsertShowsAtOnceAndHandsOverToTheBaseWithoutFlicker) {
  Engine e(opts());
  e.add_foreign("tab-b", {mut(7, MutationOp::Insert, "b1", {{"total", 5}})}, 0);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 5}}));
  EXPECT_TRUE(e.is_pending("bills", "b1"));
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_FALSE(out.changes[0].before.has_value());
  EXPECT_FALSE(out.outbox_dirty) << "not this engine's outbox: nothing of it is persisted here";
  EXPECT_EQ(e.outbox().size(), 0u);

  // The server applied it: the change carries tab-b's origin.
  e.receive(change(3, "b1", ChangeOp::Insert, {{"total", 5}}, Origin{"tab-b", 7}), 1);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 5}}));
  EXPECT_FALSE(e.is_pending("bills", "b1"));
  EXPECT_TRUE(e.foreign().empty());
  for (const auto& c : e.take_output().changes) {
    EXPECT_EQ(c.before, c.after) << "no visible change: the write was already shown";
  }
}

TEST(ForeignPending, IsRebasedOnServerChangesAndRolledBackWhenItsOwnerDropsIt) {
  Engine e(opts());
  e.receive(change(1, "b1", ChangeOp::Insert, {{"total", 1}, {"status", "unpaid"}}), 0);
  e.add_foreign("tab-b", {mut(2, MutationOp::Update, "b1", {{"status", "paid"}})}, 0);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 1}, {"status", "paid"}}));
  // Someone else changes another field: the foreign patch stays on top.
  e.receive(change(2, "b1", ChangeOp::Update, {{"total", 9}, {"status", "unpaid"}}), 1);
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 9}, {"status", "paid"}}));
  // The server rejected it; tab-b says so.
  e.take_output();
  e.drop_foreign("tab-b", {2});
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"total", 9}, {"status", "unpaid"}}));
  EXPECT_FALSE(e.is_pending("bills", "b1"));
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(testing::detail(out.changes[0].after), (Json{{"total", 9}, {"status", "unpaid"}}));
}

TEST(ForeignPending, AChangeFromThatTabDecidesItsEarlierMidsOnOtherDocuments) {
  Engine e(opts());
  e.add_foreign("tab-b", {mut(1, MutationOp::Insert, "x", {{"v", 1}}), mut(2, MutationOp::Insert, "y", {{"v", 2}})}, 0);
  // mid 1 was rejected by the server (no change for it); mid 2 was applied.
  e.receive(change(5, "y", ChangeOp::Insert, {{"v", 2}}, Origin{"tab-b", 2}), 1);
  EXPECT_EQ(e.get("bills", "x"), nullptr) << "mid 1 <= 2 is decided: no change came, so it was not applied";
  EXPECT_EQ(fields_of(e, "y"), (Json{{"v", 2}}));
  EXPECT_TRUE(e.foreign().empty());
}

TEST(ForeignPending, OwnPendingWritesApplyOnTopOfForeignOnes) {
  Engine e(opts());
  e.add_foreign("tab-b", {mut(4, MutationOp::Insert, "b1", {{"a", 1}, {"b", 1}})}, 0);
  auto mids = e.mutate({MutationRequest{MutationOp::Update, "bills", "b1", {{"b", 2}}, std::nullopt}}, 0);
  ASSERT_TRUE(mids.ok());
  EXPECT_EQ(fields_of(e, "b1"), (Json{{"a", 1}, {"b", 2}}));
  e.set_transport_ready(true);
  auto batch = e.take_batch(0);
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->mutations.size(), 1u) << "another tab's write is never sent by this engine";
  EXPECT_EQ(batch->mutations[0].op, MutationOp::Update);
}

TEST(ForeignPending, ReplaceSetsTheWholeSetAndStaleSetsExpire) {
  Engine e(opts());
  e.add_foreign("tab-b", {mut(1, MutationOp::Insert, "x", {{"v", 1}}), mut(2, MutationOp::Insert, "y", {{"v", 2}})}, 0);
  e.replace_foreign("tab-b", {mut(2, MutationOp::Insert, "y", {{"v", 2}})}, 10'000);
  EXPECT_EQ(e.get("bills", "x"), nullptr);
  EXPECT_NE(e.get("bills", "y"), nullptr);
  e.tick(10'000 + ForeignPending::kTtlMs - 1);
  EXPECT_NE(e.get("bills", "y"), nullptr) << "refreshed recently";
  e.tick(10'000 + ForeignPending::kTtlMs);
  EXPECT_EQ(e.get("bills", "y"), nullptr) << "its tab stopped refreshing it: gone";
  EXPECT_TRUE(e.foreign().empty());
}

TEST(ForeignPending, OwnClientIdAndUnsubscribedCollectionsAreIgnored) {
  Engine e(opts());
  e.add_foreign("tab-a", {mut(1, MutationOp::Insert, "x", {{"v", 1}})}, 0);
  e.add_foreign("tab-b", {mut(1, MutationOp::Insert, "p1", {{"v", 1}}, "products")}, 0);
  EXPECT_EQ(e.get("bills", "x"), nullptr);
  EXPECT_EQ(e.get("products", "p1"), nullptr);
  EXPECT_TRUE(e.foreign().empty());
}

TEST(ForeignPending, AResentMidOnAnotherDocumentReplacesTheOldEntry) {
  // Found by fuzz_engine_ops: the old document kept an index entry pointing at the new mutation.
  Engine e(opts());
  e.add_foreign("tab-b", {mut(3, MutationOp::Insert, "x", {{"v", 1}})}, 0);
  e.add_foreign("tab-b", {mut(3, MutationOp::Insert, "y", {{"v", 2}})}, 0);
  EXPECT_EQ(e.get("bills", "x"), nullptr);
  EXPECT_FALSE(e.is_pending("bills", "x"));
  EXPECT_EQ(fields_of(e, "y"), (Json{{"v", 2}}));
  e.drop_foreign("tab-b", {3});
  EXPECT_TRUE(e.foreign().empty());
  EXPECT_EQ(e.get("bills", "y"), nullptr);
}

TEST(ForeignPending, LiveQueriesSeeForeignWrites) {
  Engine e(opts());
  QuerySpec spec;
  spec.collection = "bills";
  int q = e.add_query(spec);
  e.take_output();
  e.add_foreign("tab-b", {mut(1, MutationOp::Insert, "x", {{"v", 1}})}, 0);
  auto out = e.take_output();
  EXPECT_TRUE(out.queries_changed.count(q));
  auto r = e.query_result(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->at(0).id, "x");
}

}  // namespace
}  // namespace syncline
