// Layer: tests/core. The saved state as the engine writes and reads it (the outbox record, the
// history, the whole state): one casing for what the engine hands to JS, states saved by the
// previous spelling still load with the same meaning, and a malformed member is an
// invalid_snapshot error naming it instead of being skipped or defaulted.
#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "core/event_history.hpp"
#include "core/outbox.hpp"

namespace syncline {
namespace {

EngineOptions opts() {
  EngineOptions o;
  o.client_id = "c1";
  o.collections = {"bills"};
  o.now_ms = 1000;
  return o;
}

Json state_with(Json outbox) {
  return Json{{"v", 1}, {"client", "c1"}, {"cursor", 0}, {"docs", Json::array()},
              {"outbox", std::move(outbox)}, {"history", EventHistory(10).to_json()}};
}

void expect_invalid(const Json& state, const std::string& field) {
  auto r = Engine::restore_json(state, opts());
  ASSERT_FALSE(r.ok()) << "accepted; expected an error at " << field;
  EXPECT_EQ(r.error().code, "invalid_snapshot");
  EXPECT_EQ(r.error().field, field) << r.error().message;
}

TEST(SavedState, TheOutboxRecordIsCamelCaseBesideTheWireMutation) {
  Engine e(opts());
  auto mids = e.mutate({MutationRequest{MutationOp::Insert, "bills", "b1", Json{{"n", 1}}, std::nullopt}}, 500);
  ASSERT_TRUE(mids.ok());
  const Json j = e.outbox().to_json();
  EXPECT_EQ(j.at("nextMid"), 2);
  EXPECT_FALSE(j.contains("next_mid"));
  const Json& entry = j.at("entries").at(0);
  EXPECT_EQ(entry.at("queuedMs"), 500);
  EXPECT_FALSE(entry.contains("queued_ms"));
  EXPECT_EQ(entry.at("mid"), 1);
  EXPECT_EQ(entry.at("op"), "insert");
}

TEST(SavedState, AnOutboxRecordOfThePreviousSpellingLoadsTheSame) {
  const Json old = Json::parse(R"({"next_mid":4,"entries":[
    {"mid":1,"op":"update","collection":"bills","id":"b1","fields":{"a":1},"base_version":2,"queued_ms":70},
    {"mid":3,"op":"delete","collection":"bills","id":"b2","applied_seq":9}]})");
  auto loaded = Outbox::from_json(old);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->next_mid(), 4);
  EXPECT_EQ(loaded->entries()[0].queued_ms, 70);
  EXPECT_EQ(loaded->entries()[0].mutation.base_version, 2);
  EXPECT_EQ(loaded->entries()[1].applied_seq, 9);
  // Written back in the current spelling, and that reads back to the same outbox.
  const Json now = loaded->to_json();
  EXPECT_EQ(now.at("nextMid"), 4);
  EXPECT_EQ(now.at("entries")[1].at("appliedSeq"), 9);
  auto again = Outbox::from_json(now);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *loaded);
}

TEST(SavedState, MalformedOutboxMembersAreErrorsNamingThem) {
  const Json good = Json::parse(R"({"nextMid":3,"entries":[
    {"mid":1,"op":"update","collection":"bills","id":"b1","fields":{"a":1}},
    {"mid":2,"op":"delete","collection":"bills","id":"b2"}]})");
  ASSERT_TRUE(Engine::restore_json(state_with(good), opts()).ok());

  Json bad = good;
  bad["entries"][1]["appliedSeq"] = "7";
  expect_invalid(state_with(bad), "outbox.entries[1].appliedSeq");
  bad = good;
  bad["entries"][1]["applied_seq"] = -1;
  expect_invalid(state_with(bad), "outbox.entries[1].appliedSeq");
  bad = good;
  bad["entries"][0]["queuedMs"] = 1.5;
  expect_invalid(state_with(bad), "outbox.entries[0].queuedMs");
  bad = good;
  bad.erase("nextMid");
  expect_invalid(state_with(bad), "outbox.nextMid");
  bad = good;
  bad["nextMid"] = "3";
  expect_invalid(state_with(bad), "outbox.nextMid");
  bad = good;
  bad["entries"] = Json::object();
  expect_invalid(state_with(bad), "outbox.entries");
}

TEST(SavedState, HistoryEntriesSayAtMsAndOldOnesStillLoad) {
  EventHistory h(4);
  h.push(HistoryEntry{1234, "status", 0, {}, {}, Json{{"state", "connected"}}});
  const Json j = h.to_json();
  EXPECT_EQ(j.at("entries")[0].at("atMs"), 1234);
  EXPECT_FALSE(j.at("entries")[0].contains("at_ms"));
  Json old = j;
  old["entries"][0].erase("atMs");
  old["entries"][0]["at_ms"] = 1234;
  auto back = EventHistory::from_json(old);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->entries()[0].at_ms, 1234);
}

TEST(SavedState, TheWholeStateSaysNeedSnapshotAndReadsTheOldSpelling) {
  Json s = state_with(Json{{"nextMid", 1}, {"entries", Json::array()}});
  s["need_snapshot"] = true;
  auto r = Engine::restore_json(s, opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE((*r)->needs_snapshot());
  const std::string bytes = (*r)->snapshot_bytes();
  const Json saved = Json::from_cbor(bytes);
  EXPECT_EQ(saved.at("needSnapshot"), true);
  EXPECT_FALSE(saved.contains("need_snapshot"));
}

TEST(SavedState, MalformedStateMembersAreErrorsNamingThem) {
  const Json good = state_with(Json{{"nextMid", 1}, {"entries", Json::array()}});
  Json bad = good;
  bad["needSnapshot"] = "yes";
  expect_invalid(bad, "needSnapshot");
  bad = good;
  bad["subscription"] = 5;
  expect_invalid(bad, "subscription");
  bad = good;
  bad["subscription"] = Json{{"collections", {"bills", 3}}, {"where", ""}};
  expect_invalid(bad, "subscription.collections");
  bad = good;
  bad["subscription"] = Json{{"collections", {"bills"}}, {"where", 1}};
  expect_invalid(bad, "subscription.where");
  bad = good;
  bad["docs"] = Json::array({Json{{"collection", "bills"}, {"id", "b1"}, {"version", 1}, {"fields", Json::object()},
                                  {"deleted", "no"}}});
  expect_invalid(bad, "docs[0].deleted");

  // Null counts as absent; a `where` of another grammar is a compatibility case, not an error:
  // the replica is re-based (it needs a snapshot).
  Json ok = good;
  ok["subscription"] = nullptr;
  EXPECT_TRUE(Engine::restore_json(ok, opts()).ok());
  ok = good;
  ok["cursor"] = 5;
  ok["subscription"] = Json{{"collections", {"bills"}}, {"where", "status=?weird"}};
  auto r = Engine::restore_json(ok, opts());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE((*r)->needs_snapshot());
}

}  // namespace
}  // namespace syncline
