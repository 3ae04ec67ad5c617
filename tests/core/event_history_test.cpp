// Layer: tests/core. The bounded event history ring and its snapshot format.
#include "core/event_history.hpp"

#include <gtest/gtest.h>

namespace syncline {
namespace {

HistoryEntry entry(std::int64_t n, std::string type = "change") {
  HistoryEntry e;
  e.at_ms = 1000 + n;
  e.type = std::move(type);
  e.seq = n;
  e.collection = "bills";
  e.id = "b" + std::to_string(n);
  e.data = Json{{"n", n}};
  return e;
}

std::vector<std::int64_t> seqs(const EventHistory& h) {
  std::vector<std::int64_t> out;
  for (const HistoryEntry& e : h.entries()) out.push_back(e.seq);
  return out;
}

TEST(EventHistory, DefaultCapacityIs100) {
  EventHistory h;
  EXPECT_EQ(h.capacity(), 100u);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_TRUE(h.entries().empty());
  EXPECT_EQ(h.total(), 0);
}

TEST(EventHistory, KeepsOrderBeforeWrap) {
  EventHistory h(5);
  for (int i = 1; i <= 3; ++i) h.push(entry(i));
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(h.entries().front(), entry(1));
}

TEST(EventHistory, WrapAroundKeepsNewestInOrder) {
  EventHistory h(4);
  for (int i = 1; i <= 11; ++i) {
    h.push(entry(i));
    const std::int64_t first = std::max(1, i - 3);
    std::vector<std::int64_t> want;
    for (std::int64_t s = first; s <= i; ++s) want.push_back(s);
    ASSERT_EQ(seqs(h), want) << "after " << i;
  }
  EXPECT_EQ(h.size(), 4u);
}

TEST(EventHistory, CountersSurviveWrap) {
  EventHistory h(3);
  for (int i = 1; i <= 10; ++i) h.push(entry(i, i % 2 == 0 ? "change" : "event"));
  h.push(entry(11, "reset"));
  EXPECT_EQ(h.total(), 11);
  EXPECT_EQ(h.counts().at("change"), 5);
  EXPECT_EQ(h.counts().at("event"), 5);
  EXPECT_EQ(h.counts().at("reset"), 1);
  EXPECT_EQ(h.size(), 3u);
}

TEST(EventHistory, CapacityZeroKeepsNothingButCounts) {
  EventHistory h(0);
  for (int i = 1; i <= 5; ++i) h.push(entry(i));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_TRUE(h.entries().empty());
  EXPECT_EQ(h.total(), 5);
  EXPECT_EQ(h.counts().at("change"), 5);
  auto back = EventHistory::from_json(h.to_json());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, h);
}

TEST(EventHistory, ShrinkKeepsNewest) {
  EventHistory h(5);
  for (int i = 1; i <= 7; ++i) h.push(entry(i));  // wrapped: 3..7
  h.set_capacity(2);
  EXPECT_EQ(h.capacity(), 2u);
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{6, 7}));
  h.push(entry(8));
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{7, 8}));
  EXPECT_EQ(h.total(), 8);
}

TEST(EventHistory, GrowKeepsAllAndAcceptsMore) {
  EventHistory h(3);
  for (int i = 1; i <= 5; ++i) h.push(entry(i));  // 3,4,5
  h.set_capacity(6);
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{3, 4, 5}));
  for (int i = 6; i <= 9; ++i) h.push(entry(i));
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{4, 5, 6, 7, 8, 9}));
  h.set_capacity(0);
  EXPECT_EQ(h.size(), 0u);
  h.push(entry(10));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.total(), 10);
  h.set_capacity(2);
  h.push(entry(11));
  EXPECT_EQ(seqs(h), (std::vector<std::int64_t>{11}));
}

TEST(EventHistory, SerialisationRoundTrip) {
  EventHistory h(4);
  for (int i = 1; i <= 9; ++i) h.push(entry(i, i % 3 == 0 ? "status" : "change"));
  HistoryEntry odd;
  odd.type = "rejected";
  odd.data = "a string payload";
  h.push(odd);
  const Json j = h.to_json();
  auto back = EventHistory::from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, h);
  EXPECT_EQ(back->to_json(), j);
  // Through text, as persistence stores it.
  auto from_text = EventHistory::from_json(parse_json_nothrow(j.dump()));
  ASSERT_TRUE(from_text.ok());
  EXPECT_EQ(*from_text, h);
  // The restored ring keeps working.
  back->push(entry(20));
  h.push(entry(20));
  EXPECT_EQ(*back, h);
}

void expect_invalid(const Json& j, const std::string& field) {
  auto r = EventHistory::from_json(j);
  ASSERT_FALSE(r.ok()) << j.dump();
  EXPECT_EQ(r.error().code, "invalid_snapshot");
  EXPECT_EQ(r.error().field, field) << r.error().message;
}

TEST(EventHistory, BadJsonIsRejected) {
  EventHistory h(3);
  for (int i = 1; i <= 4; ++i) h.push(entry(i));
  const Json good = h.to_json();
  ASSERT_TRUE(EventHistory::from_json(good).ok());

  expect_invalid(Json::array(), "");
  expect_invalid(parse_json_nothrow("not json"), "");  // a discarded value
  expect_invalid(Json(nullptr), "");

  auto with = [&](const char* key, Json v) {
    Json j = good;
    j[key] = std::move(v);
    return j;
  };
  auto without = [&](const char* key) {
    Json j = good;
    j.erase(key);
    return j;
  };
  expect_invalid(with("capacity", -1), "capacity");
  expect_invalid(with("capacity", "3"), "capacity");
  expect_invalid(with("capacity", 1e9), "capacity");
  expect_invalid(with("capacity", 1'000'000'000'000LL), "capacity");
  expect_invalid(without("capacity"), "capacity");
  expect_invalid(with("capacity", 2), "entries");  // 3 entries do not fit
  expect_invalid(with("total", 99), "total");       // counts add up to 4
  expect_invalid(without("total"), "total");
  expect_invalid(with("counts", Json::array()), "counts");
  expect_invalid(with("counts", Json{{"change", -4}}), "counts.change");
  expect_invalid(with("counts", Json{{"change", 2}, {"event", 2}}), "entries[2].type");
  expect_invalid(with("entries", Json::object()), "entries");
  expect_invalid(with("version", 2), "version");

  Json bad_entry = good;
  bad_entry["entries"][1]["seq"] = "x";
  expect_invalid(bad_entry, "entries[1].seq");
  bad_entry = good;
  bad_entry["entries"][2].erase("type");
  expect_invalid(bad_entry, "entries[2].type");
  bad_entry = good;
  bad_entry["entries"][0]["atMs"] = 1.5;
  expect_invalid(bad_entry, "entries[0].atMs");
  bad_entry = good;
  bad_entry["entries"][0]["collection"] = 5;
  expect_invalid(bad_entry, "entries[0].collection");
  bad_entry = good;
  bad_entry["entries"][0] = 7;
  expect_invalid(bad_entry, "entries[0]");
}

}  // namespace
}  // namespace syncline
