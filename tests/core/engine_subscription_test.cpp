// The replica belongs to a subscription: a restore with other collections or another `where`
// re-bases (keeps the outbox, drops what is outside, needs a snapshot, records
// subscription_changed), and an engine following another subscription's stream (another tab's)
// never trusts it for completeness, nor applies what lies outside its own subscription.
#include <gtest/gtest.h>

#include "core/change_helpers.hpp"
#include "core/engine.hpp"

namespace syncline {
namespace {

using testing::change;

EngineOptions opts(std::vector<std::string> collections, std::string where = "") {
  EngineOptions o;
  o.client_id = "c1";
  o.collections = std::move(collections);
  o.where = std::move(where);
  o.now_ms = 1000;
  return o;
}

MutationRequest ins(std::string coll, std::string id, Json fields) {
  return MutationRequest{MutationOp::Insert, std::move(coll), std::move(id), std::move(fields), std::nullopt};
}

std::unique_ptr<Engine> restored(const Engine& from, EngineOptions o) {
  auto r = Engine::restore(from.snapshot_bytes(), std::move(o));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return std::move(*r);
}

std::optional<HistoryEntry> last_of(const Engine& e, const std::string& type) {
  std::optional<HistoryEntry> found;
  for (const auto& h : e.history().entries()) {
    if (h.type == type) found = h;
  }
  return found;
}

TEST(EngineSubscription, CanonicalFormSortsCollectionsAndWhere) {
  Engine a(opts({"b", "a", "b"}, "status=eq.open"));
  EXPECT_EQ(a.subscription(), (Json{{"collections", {"a", "b"}}, {"where", "status=eq.open"}}));
  auto c = Engine::canonical_subscription(Json{{"collections", {"b", "a"}}, {"where", "status=eq.open"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, a.subscription());
  EXPECT_FALSE(Engine::canonical_subscription(Json{{"collections", 3}}));
  EXPECT_FALSE(Engine::canonical_subscription(Json{{"collections", {"a"}}, {"where", "status=zz.1"}}));
}

TEST(EngineSubscription, SameSubscriptionResumesFromTheCursor) {
  Engine e(opts({"a"}));
  e.receive(change(5, "a", "x", ChangeOp::Insert, {{"n", 1}}), 0);
  auto r = restored(e, opts({"a"}));
  EXPECT_FALSE(r->needs_snapshot());
  EXPECT_EQ(r->cursor(), 5);
  EXPECT_FALSE(last_of(*r, "subscription_changed"));
  EXPECT_TRUE(r->take_output().empty());
}

TEST(EngineSubscription, NewCollectionNeedsASnapshotAndKeepsTheOutbox) {
  Engine e(opts({"a"}));
  e.receive(change(5, "a", "x", ChangeOp::Insert, {{"n", 1}}), 0);
  ASSERT_TRUE(e.mutate({ins("a", "p", {{"n", 2}})}, 10).ok());  // offline, not sent yet
  e.take_output();

  auto r = restored(e, opts({"a", "b"}));
  EXPECT_TRUE(r->needs_snapshot()) << "the stream after cursor 5 does not carry b's older documents";
  EXPECT_EQ(r->outbox(), e.outbox()) << "pending writes are never lost";
  EXPECT_NE(r->get("a", "x"), nullptr) << "a's documents stay visible until the snapshot";
  EXPECT_NE(r->get("a", "p"), nullptr);
  auto h = last_of(*r, "subscription_changed");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->at_ms, 1000);
  EXPECT_EQ(h->data.at("from"), (Json{{"collections", {"a"}}, {"where", ""}}));
  EXPECT_EQ(h->data.at("to"), (Json{{"collections", {"a", "b"}}, {"where", ""}}));
  auto out = r->take_output();
  EXPECT_TRUE(out.meta_dirty) << "the new subscription and need_snapshot are persisted";
  EXPECT_TRUE(out.history_dirty);

  // The snapshot fills b in; the cursor continues from its seq; the write is still sent once.
  r->apply_snapshot({"a", "b"},
                    {Document{"a", "x", 5, {{"n", 1}}, false}, Document{"b", "y", 3, {{"m", 1}}, false}}, 9, 20);
  EXPECT_FALSE(r->needs_snapshot());
  EXPECT_EQ(r->cursor(), 9);
  ASSERT_NE(r->get("b", "y"), nullptr);
  r->set_transport_ready(true);
  auto batch = r->take_batch(21);
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->mutations.size(), 1u);
  EXPECT_EQ(batch->mutations[0].mid, 1);

  // A crash before the snapshot: the stored need_snapshot and subscription bring it back.
  auto again = restored(*restored(e, opts({"a", "b"})), opts({"a", "b"}));
  EXPECT_TRUE(again->needs_snapshot());
}

TEST(EngineSubscription, DroppedCollectionLeavesTheReplica) {
  Engine e(opts({"a", "b"}));
  e.receive(change(4, "a", "x", ChangeOp::Insert, {{"n", 1}}), 0);
  e.receive(change(5, "b", "y", ChangeOp::Insert, {{"n", 1}}), 0);
  auto r = restored(e, opts({"a"}));
  EXPECT_EQ(r->get("b", "y"), nullptr);
  EXPECT_EQ(r->base().find("b", "y"), nullptr);
  EXPECT_NE(r->get("a", "x"), nullptr);
  EXPECT_TRUE(r->needs_snapshot());
  auto out = r->take_output();
  EXPECT_EQ(out.dirty_docs.count(DocKey{"b", "y"}), 1u) << "deleted from storage";
  EXPECT_EQ(last_of(*r, "subscription_changed")->data.at("dropped"), 1);
}

TEST(EngineSubscription, NarrowerWhereDropsNonMatchingDocumentsAtOnce) {
  Engine e(opts({"a"}));
  e.receive(change(4, "a", "x", ChangeOp::Insert, {{"branch", "north"}}), 0);
  e.receive(change(5, "a", "y", ChangeOp::Insert, {{"branch", "south"}}), 0);
  auto r = restored(e, opts({"a"}, "branch=eq.north"));
  EXPECT_NE(r->get("a", "x"), nullptr);
  EXPECT_EQ(r->get("a", "y"), nullptr);
  EXPECT_TRUE(r->needs_snapshot());
  // Wider again: nothing to drop, but y must come back from a snapshot.
  auto wider = restored(*r, opts({"a"}));
  EXPECT_TRUE(wider->needs_snapshot());
  EXPECT_EQ(last_of(*wider, "subscription_changed")->data.at("from"),
            (Json{{"collections", {"a"}}, {"where", "branch=eq.north"}}));
}

TEST(EngineSubscription, StateWithoutSubscriptionIsRebasedOnlyWhenItHoldsData) {
  Json empty = {{"v", 1}, {"client", "c1"}, {"cursor", 0}, {"docs", Json::array()},
                {"outbox", {{"next_mid", 1}, {"entries", Json::array()}}},
                {"history", EventHistory(10).to_json()}};
  auto fresh = Engine::restore_json(empty, opts({"a"}));
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE((*fresh)->needs_snapshot());
  Json old = empty;
  old["cursor"] = 7;
  auto legacy = Engine::restore_json(old, opts({"a"}));
  ASSERT_TRUE(legacy.ok());
  EXPECT_TRUE((*legacy)->needs_snapshot()) << "saved before subscriptions were stored: unknown";
  EXPECT_EQ(last_of(**legacy, "subscription_changed")->data.at("from"), nullptr);
}

TEST(EngineSubscription, FollowingAnotherSubscriptionNeverCountsAsComplete) {
  Engine e(opts({"a", "b"}));
  e.apply_snapshot({}, {Document{"a", "x", 1, {{"n", 1}}, false}}, 2, 0);
  ASSERT_FALSE(e.needs_snapshot());
  e.take_output();
  // The leader tab streams only a (an older version of the app).
  e.follow_subscription(Json{{"collections", {"a"}}, {"where", ""}}, 10);
  EXPECT_TRUE(e.needs_snapshot());
  EXPECT_FALSE(e.upstream_matches());
  ASSERT_TRUE(last_of(e, "subscription_mismatch"));
  // Its own snapshot fills b, but it stays incomplete while it follows the other stream.
  e.apply_snapshot({}, {Document{"a", "x", 1, {{"n", 1}}, false}, Document{"b", "y", 2, {{"m", 1}}, false}}, 3, 11);
  EXPECT_TRUE(e.needs_snapshot());
  ASSERT_NE(e.get("b", "y"), nullptr);
  e.take_output();
  // It becomes the leader: its own stream, after a snapshot that rewrites every document.
  e.follow_subscription(e.subscription(), 12);
  EXPECT_TRUE(e.needs_snapshot()) << "the frames it followed left gaps in b";
  e.apply_snapshot({}, {Document{"a", "x", 1, {{"n", 1}}, false}, Document{"b", "y", 2, {{"m", 1}}, false}}, 4, 13);
  EXPECT_FALSE(e.needs_snapshot());
  auto out = e.take_output();
  EXPECT_EQ(out.dirty_docs.size(), 2u) << "the shared store was the other subscription's: written again";
}

TEST(EngineSubscription, ChangesOutsideTheSubscriptionAreNotApplied) {
  Engine e(opts({"a"}, "branch=eq.north"));
  e.receive(change(1, "a", "x", ChangeOp::Insert, {{"branch", "north"}}), 0);
  ASSERT_NE(e.get("a", "x"), nullptr);
  // From a leader tab with a wider subscription: another collection, a non-matching document.
  e.follow_subscription(Json{{"collections", {"a", "c"}}, {"where", ""}}, 0);
  e.receive(change(2, "c", "z", ChangeOp::Insert, {{"branch", "north"}}), 0);
  e.receive(change(3, "a", "s", ChangeOp::Insert, {{"branch", "south"}}), 0);
  EXPECT_EQ(e.get("c", "z"), nullptr);
  EXPECT_EQ(e.base().find("c", "z"), nullptr);
  EXPECT_EQ(e.get("a", "s"), nullptr);
  EXPECT_EQ(e.base().find("a", "s"), nullptr) << "no tombstone for a document it never had";
  EXPECT_EQ(e.cursor(), 3);
  // A document it has moves out of the where: it leaves, as the server's scope-leave delete.
  e.receive(change(4, "a", "x", ChangeOp::Update, {{"branch", "south"}}), 0);
  EXPECT_EQ(e.get("a", "x"), nullptr);
  EXPECT_EQ(e.cursor(), 4);
}

}  // namespace
}  // namespace syncline

namespace syncline {
namespace {

// Saving and restoring under the same subscription changes nothing, even when the replica holds
// documents the engine's own filter would not pick (on its own stream the server decides what
// arrives): snapshot_bytes -> restore -> snapshot_bytes is a fixpoint. Only a re-base drops them.
TEST(EngineSubscription, SameSubscriptionRestoreIsAFixpoint) {
  Engine e(opts({"a"}, "status=eq.open"));
  e.apply_snapshot({}, {Document{"a", "in", 1, Json{{"status", "open"}, {"n", 2}}, false},
                        Document{"a", "out", 2, Json{{"status", "paid"}}, false},
                        Document{"b", "other", 3, Json{{"status", "open"}}, false}},
                   3, 1000);
  e.take_output();
  const std::string bytes = e.snapshot_bytes();
  auto same = restored(e, opts({"a"}, "status=eq.open"));
  EXPECT_EQ(same->snapshot_bytes(), bytes);
  EXPECT_TRUE(same->take_output().empty());
  auto narrower = restored(e, opts({"a"}, "status=eq.open,n=gt.1"));
  EXPECT_TRUE(narrower->get("a", "in"));
  EXPECT_FALSE(narrower->get("a", "out"));
  EXPECT_FALSE(narrower->get("b", "other"));
  EXPECT_TRUE(narrower->needs_snapshot());
}

}  // namespace
}  // namespace syncline
