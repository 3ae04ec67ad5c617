// Layer: tests/core. The engine and outbox with field operations, conditions and atomic groups:
// increments replay on the newest base, a rejected group leaves in one step, the
// outbox never splits a group, and the new members survive persistence.
#include <gtest/gtest.h>

#include "core/change_helpers.hpp"
#include "core/engine.hpp"

namespace syncline {
namespace {

using testing::change;
using testing::detail;

EngineOptions opts() {
  EngineOptions o;
  o.client_id = "c1";
  o.collections = {"bills", "products", "ledger"};
  return o;
}

FieldOp inc(Json by, std::optional<Json> min = std::nullopt) {
  FieldOp op;
  op.by = std::move(by);
  op.min = std::move(min);
  return op;
}

FieldOp server_time() {
  FieldOp op;
  op.kind = FieldOp::Kind::ServerTime;
  return op;
}

MutationRequest bump(std::string id, Json by, std::optional<Json> min = std::nullopt) {
  MutationRequest r;
  r.op = MutationOp::Update;
  r.collection = "products";
  r.id = std::move(id);
  r.ops["stock"] = inc(std::move(by), std::move(min));
  return r;
}

MutationRequest req(MutationOp op, std::string coll, std::string id, Json fields = Json::object()) {
  MutationRequest r;
  r.op = op;
  r.collection = std::move(coll);
  r.id = std::move(id);
  r.fields = std::move(fields);
  return r;
}

Json stock(const Engine& e, const std::string& id) {
  const Document* d = e.get("products", id);
  return d ? d->fields.value("stock", Json()) : Json();
}

MutationResult rejected(std::int64_t mid, std::string code, std::int64_t failed_mid = 0) {
  MutationResult r{mid, ResultStatus::Rejected, 0, std::move(code), "because"};
  r.failed_mid = failed_mid;
  return r;
}

MutationResult applied(std::int64_t mid, std::int64_t seq) { return {mid, ResultStatus::Applied, seq, "", ""}; }

// ---------------------------------------------------------------- increments in the view

TEST(EngineOps, APendingIncrementShowsTheNewBasePlusItsDeltaNeverAnAbsoluteValue) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "products", "p1", ChangeOp::Insert, {{"stock", 10}, {"name", "tea"}}), 0);
  ASSERT_TRUE(e.mutate({bump("p1", -1)}, 1).ok());
  EXPECT_EQ(stock(e, "p1"), 9);
  e.take_output();
  // Another client sold 3 meanwhile: the server's base is 7, ours shows 7 - 1.
  e.receive(change(2, "products", "p1", ChangeOp::Update, {{"stock", 7}, {"name", "tea"}}), 2);
  EXPECT_EQ(stock(e, "p1"), 6);
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(detail(out.changes[0].before)->at("stock"), 9);
  EXPECT_EQ(detail(out.changes[0].after)->at("stock"), 6);
  // A second pending increment stacks on the first.
  e.mutate({bump("p1", -2)}, 3);
  EXPECT_EQ(stock(e, "p1"), 4);
  // An absolute write from elsewhere: the pending increments still add to it.
  e.receive(change(3, "products", "p1", ChangeOp::Update, {{"stock", 100}, {"name", "tea"}}), 4);
  EXPECT_EQ(stock(e, "p1"), 97);
  // The server applies both (seqs 4 and 5): acks do not move the view, the changes land on it.
  auto batch = e.take_batch(5);
  ASSERT_TRUE(batch);
  e.take_output();
  e.receive(MutationResults{5, {applied(1, 4), applied(2, 5)}}, 6);
  EXPECT_EQ(stock(e, "p1"), 97);
  EXPECT_TRUE(e.take_output().changes.empty()) << "no flicker on ack";
  e.receive(change(4, "products", "p1", ChangeOp::Update, {{"stock", 99}, {"name", "tea"}}, Origin{"c1", 1}), 7);
  EXPECT_EQ(stock(e, "p1"), 97) << "the first is in the base, the second still replays";
  e.receive(change(5, "products", "p1", ChangeOp::Update, {{"stock", 97}, {"name", "tea"}}, Origin{"c1", 2}), 8);
  EXPECT_EQ(stock(e, "p1"), 97);
  EXPECT_FALSE(e.is_pending("products", "p1"));
  EXPECT_TRUE(e.outbox().empty());
  out = e.take_output();
  for (const auto& c : out.changes) EXPECT_EQ(detail(c.after)->at("stock"), 97) << "never a value in between";
}

TEST(EngineOps, AnIncrementBelowItsBoundStaysInvisibleUntilTheBaseAllowsIt) {
  Engine e(opts());
  e.receive(change(1, "products", "p1", ChangeOp::Insert, {{"stock", 0}}), 0);
  ASSERT_TRUE(e.mutate({bump("p1", -1, Json(0))}, 1).ok());
  EXPECT_EQ(stock(e, "p1"), 0) << "the server would refuse it as it stands";
  EXPECT_TRUE(e.is_pending("products", "p1"));
  e.receive(change(2, "products", "p1", ChangeOp::Update, {{"stock", 5}}), 2);
  EXPECT_EQ(stock(e, "p1"), 4) << "restocked: now it applies";
}

TEST(EngineOps, ServerTimeShowsTheLocalTimeUntilTheServersValueArrives) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"status", "unpaid"}}), 0);
  MutationRequest pay = req(MutationOp::Update, "bills", "b1", {{"status", "paid"}});
  pay.ops["paid_at"] = server_time();
  ASSERT_TRUE(e.mutate({pay}, 5000).ok());
  EXPECT_EQ(e.get("bills", "b1")->fields.at("paid_at"), 5000);
  // A later rebase keeps the time the write was made.
  e.receive(change(2, "bills", "b1", ChangeOp::Update, {{"status", "unpaid"}, {"note", "x"}}), 9000);
  EXPECT_EQ(e.get("bills", "b1")->fields.at("paid_at"), 5000);
  e.take_batch(9001);
  e.receive(change(3, "bills", "b1", ChangeOp::Update, {{"status", "paid"}, {"note", "x"}, {"paid_at", 5123}},
                   Origin{"c1", 1}),
            9002);
  EXPECT_EQ(e.get("bills", "b1")->fields.at("paid_at"), 5123);
}

TEST(EngineOps, AConditionalUpdateShowsOnlyWhileItsConditionHolds) {
  Engine e(opts());
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"status", "unpaid"}, {"total", 10}}), 0);
  MutationRequest pay = req(MutationOp::Update, "bills", "b1", {{"status", "paid"}});
  pay.condition = "status=eq.unpaid";
  ASSERT_TRUE(e.mutate({pay}, 1).ok());
  EXPECT_EQ(e.get("bills", "b1")->fields.at("status"), "paid");
  EXPECT_EQ(e.outbox().entries()[0].mutation.condition->to_string(), "status=eq.unpaid");
  // Another window marked it cancelled first: the local write would be refused, so it hides.
  e.receive(change(2, "bills", "b1", ChangeOp::Update, {{"status", "cancelled"}, {"total", 10}}), 2);
  EXPECT_EQ(e.get("bills", "b1")->fields.at("status"), "cancelled");
}

// ---------------------------------------------------------------- mutate: validation and groups

TEST(EngineOps, MutateRefusesWhatTheServerWouldRefuseAsMalformed) {
  Engine e(opts());
  const auto field_of = [&](std::vector<MutationRequest> batch, bool atomic = false) {
    auto r = e.mutate(batch, 0, atomic);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::string();
    EXPECT_EQ(r.error().code, codes::kInvalidMutation) << r.error().message;
    return r.error().field;
  };
  MutationRequest del_ops = req(MutationOp::Delete, "products", "p1");
  del_ops.ops["stock"] = inc(1);
  EXPECT_EQ(field_of({bump("p1", 1), del_ops}), "mutations[1].ops");
  MutationRequest both = bump("p1", 1);
  both.fields = {{"stock", 3}};
  EXPECT_EQ(field_of({both}), "mutations[0].ops.stock");
  MutationRequest not_number = bump("p1", "1");
  EXPECT_EQ(field_of({not_number}), "mutations[0].ops.stock.increment");
  MutationRequest bad_bounds = bump("p1", 1, Json(5));
  bad_bounds.ops["stock"].max = 4;
  EXPECT_EQ(field_of({bad_bounds}), "mutations[0].ops.stock");
  MutationRequest unnamed = bump("p1", 1);
  unnamed.ops[""] = inc(1);
  EXPECT_EQ(field_of({unnamed}), "mutations[0].ops");
  MutationRequest bad_if = bump("p1", 1);
  bad_if.condition = "stock=zz.1";
  EXPECT_EQ(field_of({bad_if}), "mutations[0].if");
  MutationRequest insert_if = req(MutationOp::Insert, "products", "p2", {{"stock", 1}});
  insert_if.condition = "stock=eq.1";
  EXPECT_EQ(field_of({insert_if}), "mutations[0].if");
  std::vector<MutationRequest> too_many(e.options().max_batch + 1, bump("p1", 1));
  EXPECT_EQ(field_of(too_many, true), "mutations");
  EXPECT_TRUE(e.outbox().empty()) << "nothing of a refused batch is queued";
  EXPECT_EQ(e.outbox().next_mid(), 1);
}

TEST(EngineOps, AnAtomicBatchIsOneGroupWithConsecutiveMids) {
  Engine e(opts());
  e.mutate({bump("p0", 1)}, 0);
  auto mids = e.mutate({bump("p1", -1), req(MutationOp::Insert, "ledger", "l1", {{"amount", 5}})}, 1, true);
  ASSERT_TRUE(mids.ok());
  EXPECT_EQ(*mids, (std::vector<std::int64_t>{2, 3}));
  for (std::int64_t mid : *mids) {
    const Mutation& m = e.outbox().find(mid)->mutation;
    EXPECT_EQ(m.group, 2);
    EXPECT_EQ(m.group_size, 2);
  }
  EXPECT_FALSE(e.outbox().find(1)->mutation.group);
  auto one = e.mutate({bump("p1", 1)}, 2, true);
  EXPECT_FALSE(e.outbox().find(one->at(0))->mutation.group) << "a group of one needs no group";
}

TEST(EngineOps, ABatchChangesEachDocumentOnce) {
  Engine e(opts());
  e.receive(change(1, "products", "p1", ChangeOp::Insert, {{"stock", 10}}), 0);
  e.take_output();
  e.mutate({bump("p1", -1), bump("p1", -2), req(MutationOp::Insert, "ledger", "l1", {{"a", 1}})}, 1, true);
  auto out = e.take_output();
  ASSERT_EQ(out.changes.size(), 2u);
  EXPECT_EQ(out.changes[1].id, "p1");
  EXPECT_EQ(detail(out.changes[1].before)->at("stock"), 10);
  EXPECT_EQ(detail(out.changes[1].after)->at("stock"), 7);
}

TEST(EngineOps, ARejectedGroupDisappearsInOneStep) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "products", "p1", ChangeOp::Insert, {{"stock", 1}}), 0);
  e.receive(change(2, "bills", "b1", ChangeOp::Insert, {{"status", "unpaid"}}), 0);
  const int q = e.add_query(QuerySpec{"ledger", Filter{}, std::nullopt, std::nullopt});
  MutationRequest pay = req(MutationOp::Update, "bills", "b1", {{"status", "paid"}});
  pay.condition = "status=eq.unpaid";
  auto mids = e.mutate({pay, req(MutationOp::Insert, "ledger", "l1", {{"amount", 5}}), bump("p1", -1, Json(0)),
                        bump("p1", -1, Json(0))},
                       1, true);
  ASSERT_TRUE(mids.ok());
  EXPECT_EQ(stock(e, "p1"), 0) << "the second decrement below 0 is invisible, the first shows";
  ASSERT_EQ(e.query_result(q)->size(), 1u);
  auto batch = e.take_batch(2);
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->mutations.size(), 4u);
  e.take_output();
  // The server: member 4 went below 0, so nothing applied; every member is answered.
  MutationResults res{2, {rejected(1, "constraint", 4), rejected(2, "constraint", 4), rejected(3, "constraint", 4),
                          rejected(4, "constraint", 4)}};
  res.results[3].message = "stock would be -1, below min 0";
  e.receive(res, 3);
  auto out = e.take_output();
  EXPECT_TRUE(e.outbox().empty());
  ASSERT_EQ(out.settled.size(), 4u);
  for (const auto& s : out.settled) {
    EXPECT_FALSE(s.applied);
    EXPECT_EQ(s.code, "constraint");
    EXPECT_EQ(s.failed_mid, 4);
  }
  // One change per document, straight from the optimistic view to the base.
  ASSERT_EQ(out.changes.size(), 3u);
  std::map<std::string, int> per_doc;
  for (const auto& c : out.changes) per_doc[c.id]++;
  EXPECT_EQ(per_doc, (std::map<std::string, int>{{"b1", 1}, {"l1", 1}, {"p1", 1}}));
  EXPECT_EQ(stock(e, "p1"), 1);
  EXPECT_EQ(e.get("bills", "b1")->fields.at("status"), "unpaid");
  EXPECT_EQ(e.get("ledger", "l1"), nullptr);
  EXPECT_TRUE(e.query_result(q)->empty());
  EXPECT_EQ(out.queries_changed, std::set<int>{q});
  EXPECT_FALSE(e.in_flight());
}

TEST(EngineOps, OneRejectedMemberTakesTheWholeGroupEvenIfTheAnswerLeftOthersOut) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({bump("p1", 1), bump("p2", 1), bump("p3", 1)}, 0, true);
  e.mutate({bump("p4", 1)}, 0);
  e.take_batch(1);
  MutationResult conflict = rejected(2, "conflict");
  conflict.current = Json{{"version", 9}, {"fields", {{"stock", "many"}}}};
  e.receive(MutationResults{3, {conflict}}, 2);
  auto out = e.take_output();
  ASSERT_EQ(out.settled.size(), 3u);
  for (const auto& s : out.settled) EXPECT_EQ(s.failed_mid, 2) << "the member that failed, not the answered one";
  EXPECT_EQ(out.settled[0].mid, 1);
  ASSERT_TRUE(out.settled[1].current);
  EXPECT_EQ(out.settled[1].current->at("version"), 9);
  EXPECT_FALSE(out.settled[0].current) << "current belongs to the member it was sent for";
  ASSERT_EQ(e.outbox().size(), 1u) << "the ungrouped mutation stays";
  EXPECT_EQ(e.outbox().entries()[0].mutation.mid, 4);
  EXPECT_EQ(e.history().to_json().dump().find("failed_mid") != std::string::npos, true);
}

TEST(EngineOps, AGroupMemberSeenOnTheStreamWaitsForItsSiblingsAndAResendCarriesTheWholeGroup) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.receive(change(1, "products", "p1", ChangeOp::Insert, {{"stock", 5}}), 0);
  e.receive(change(2, "products", "p2", ChangeOp::Insert, {{"stock", 5}}), 0);
  e.mutate({bump("p1", -1), bump("p2", 1)}, 1, true);
  ASSERT_TRUE(e.take_batch(2));
  // The first member's change arrives on the stream; the reply is lost.
  e.receive(change(3, "products", "p1", ChangeOp::Update, {{"stock", 4}}, Origin{"c1", 1}), 3);
  EXPECT_EQ(e.outbox().size(), 2u) << "member 1 is seen but stays while member 2 waits";
  EXPECT_EQ(stock(e, "p1"), 4) << "and does not replay on the base that holds it";
  EXPECT_EQ(stock(e, "p2"), 6);
  e.on_batch_failed();
  auto again = e.take_batch(4);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->mutations.size(), 2u) << "never a partial group";
  EXPECT_EQ(again->mutations[0].mid, 1);
  e.receive(MutationResults{4, {MutationResult{1, ResultStatus::Duplicate, 3, "", ""},
                                MutationResult{2, ResultStatus::Duplicate, 4, "", ""}}},
            5);
  e.receive(change(4, "products", "p2", ChangeOp::Update, {{"stock", 6}}, Origin{"c1", 2}), 6);
  EXPECT_TRUE(e.outbox().empty());
  auto out = e.take_output();
  EXPECT_EQ(out.settled.size(), 2u) << "each member settles once";
}

TEST(EngineOps, AGroupMemberWaitingForItsSiblingsNeverReplaysWhatTheStreamDelivered) {
  Engine e(opts());
  e.set_transport_ready(true);
  e.mutate({req(MutationOp::Insert, "ledger", "l1", {{"amount", 5}}), bump("p1", 1)}, 1, true);
  ASSERT_TRUE(e.take_batch(2));
  e.receive(change(1, "ledger", "l1", ChangeOp::Insert, {{"amount", 5}}, Origin{"c1", 1}), 3);
  // A snapshot at seq 2 that no longer holds l1 (deleted and compacted, or out of this reader's
  // scope now): member 1 still waits in the outbox for member 2, but the replica has seen it,
  // so it must not bring l1 back.
  e.apply_snapshot({"ledger"}, {}, 2, 5);
  EXPECT_EQ(e.outbox().size(), 2u);
  EXPECT_EQ(e.get("ledger", "l1"), nullptr);
}

// ---------------------------------------------------------------- outbox: group boundaries

Outbox outbox_with(std::initializer_list<std::int64_t> group_sizes) {
  // 0: an ungrouped mutation; n >= 2: a group of n.
  Outbox ob;
  for (std::int64_t size : group_sizes) {
    const std::int64_t first = ob.next_mid();
    for (std::int64_t k = 0; k < std::max<std::int64_t>(size, 1); ++k) {
      Mutation m;
      m.op = MutationOp::Update;
      m.collection = "products";
      m.id = "p" + std::to_string(first + k);
      if (size >= 2) {
        m.group = first;
        m.group_size = size;
      }
      ob.push(m, 100);
    }
  }
  return ob;
}

std::vector<std::int64_t> mids_of(const std::vector<Mutation>& ms) {
  std::vector<std::int64_t> out;
  for (const auto& m : ms) out.push_back(m.mid);
  return out;
}

using Mids = std::vector<std::int64_t>;

TEST(OutboxGroups, ABatchNeverSplitsAGroup) {
  Outbox ob = outbox_with({0, 3, 0});  // 1 | 2 3 4 | 5
  EXPECT_EQ(mids_of(ob.unacknowledged(1)), (Mids{1}));
  EXPECT_EQ(mids_of(ob.unacknowledged(2)), (Mids{1})) << "stop before the group";
  EXPECT_EQ(mids_of(ob.unacknowledged(3)), (Mids{1}));
  EXPECT_EQ(mids_of(ob.unacknowledged(4)), (Mids{1, 2, 3, 4}));
  EXPECT_EQ(mids_of(ob.unacknowledged(5)), (Mids{1, 2, 3, 4, 5}));
  ob.remove(1);
  EXPECT_EQ(mids_of(ob.unacknowledged(1)), (Mids{2, 3, 4})) << "a group first goes whole, above n";
  EXPECT_EQ(mids_of(ob.unacknowledged(2)), (Mids{2, 3, 4}));
}

TEST(OutboxGroups, AGroupNotDurableToItsLastMemberWaits) {
  Outbox ob = outbox_with({0, 2, 0});  // 1 | 2 3 | 4
  EXPECT_EQ(mids_of(ob.unacknowledged(10, 3)), (Mids{1})) << "member 3 is not on disk yet";
  EXPECT_EQ(mids_of(ob.unacknowledged(10, 2)), (Mids{1}));
  EXPECT_EQ(mids_of(ob.unacknowledged(10, 4)), (Mids{1, 2, 3}));
}

TEST(OutboxGroups, SettledMembersTravelWithTheirWaitingSiblingsAndSettledGroupsStayHome) {
  Outbox ob = outbox_with({2, 2, 0});  // 1 2 | 3 4 | 5
  ob.find(1)->applied_seq = 10;
  ob.find(3)->applied_seq = 11;
  ob.find(4)->applied_seq = 12;
  EXPECT_TRUE(ob.group_unacknowledged(1));
  EXPECT_FALSE(ob.group_unacknowledged(3));
  EXPECT_EQ(mids_of(ob.unacknowledged(10)), (Mids{1, 2, 5}));
  EXPECT_EQ(ob.unacknowledged_count(), 2u);
}

TEST(OutboxGroups, PersistenceKeepsTheNewMembersAndLoadsOldStates) {
  Outbox ob = outbox_with({2, 0});
  ob.find(1)->mutation.ops["stock"] = inc(-1, Json(0));
  ob.find(1)->mutation.fields = {{"note", "sale"}};
  ob.find(2)->mutation.ops["at"] = server_time();
  ob.find(3)->mutation.condition = *Filter::parse("stock=gte.1");
  ob.find(3)->applied_seq = 7;
  auto back = Outbox::from_json(ob.to_json());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, ob);
  EXPECT_EQ(back->entries()[0].queued_ms, 100);

  // A state saved by a version without field operations, conditions and groups (before protocol
  // revision 1.1) still loads: no ops, if, group or queued_ms.
  Json old = Json::parse(R"({"next_mid":3,"entries":[
    {"mid":1,"op":"update","collection":"bills","id":"b1","fields":{"a":1}},
    {"mid":2,"op":"delete","collection":"bills","id":"b2","applied_seq":4}]})");
  auto loaded = Outbox::from_json(old);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->entries()[0].queued_ms, 0);
  EXPECT_FALSE(loaded->entries()[0].mutation.group);
}

TEST(OutboxGroups, ASavedStateWithAPartialWaitingGroupIsRefused) {
  Outbox ob = outbox_with({3});
  Json j = ob.to_json();
  j["entries"].erase(1);
  auto r = Outbox::from_json(j);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kInvalidSnapshot);
  // Every member settled: what is left of the group is never sent, so it may be partial.
  ob.find(1)->applied_seq = 1;
  ob.find(3)->applied_seq = 3;
  j = ob.to_json();
  j["entries"].erase(1);
  EXPECT_TRUE(Outbox::from_json(j).ok());
}

TEST(EngineOps, SnapshotBytesRoundTripKeepsGroupsOpsAndConditions) {
  Engine e(opts());
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"status", "unpaid"}}), 0);
  MutationRequest pay = req(MutationOp::Update, "bills", "b1", {{"status", "paid"}});
  pay.condition = "status=eq.unpaid";
  pay.ops["paid_at"] = server_time();
  MutationRequest credit = req(MutationOp::Insert, "ledger", "l1", {{"amount", 10}});
  e.mutate({pay, credit}, 777, true);
  auto restored = Engine::restore(e.snapshot_bytes(), opts());
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ((*restored)->outbox(), e.outbox());
  EXPECT_EQ((*restored)->get("bills", "b1")->fields, e.get("bills", "b1")->fields);
  EXPECT_EQ((*restored)->get("bills", "b1")->fields.at("paid_at"), 777);
}

}  // namespace
}  // namespace syncline
