// Tests for src/core/live_query: orderBy parsing, the value order, incremental LiveQuery windows
// and GroupedAggregate. The randomised test compares against a brute-force recomputation and
// prints its seed; rerun one with SYNCLINE_SEED=<seed>.
#include "core/live_query.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace syncline {
namespace {

using Ids = std::vector<std::string>;

Filter where(std::string_view text) {
  auto r = Filter::parse(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : Filter{};
}

std::optional<OrderBy> order(std::string_view text) {
  auto r = parse_order_by(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? std::optional<OrderBy>(*r) : std::nullopt;
}

QuerySpec spec(std::string_view w, std::optional<std::string_view> order_by = std::nullopt,
               std::optional<std::size_t> limit = std::nullopt) {
  QuerySpec s;
  s.collection = "bills";
  s.where = where(w);
  if (order_by) s.order_by = order(*order_by);
  s.limit = limit;
  return s;
}

// A query plus the documents it has been told about, so tests pass honest `before` values.
struct Harness {
  explicit Harness(QuerySpec s) : q(std::move(s)) {}
  bool set(const std::string& id, Json fields) {
    auto it = docs.find(id);
    const Json* before = it == docs.end() ? nullptr : &it->second;
    Json old = before ? *before : Json();
    bool changed = q.on_change(id, before ? &old : nullptr, &fields);
    docs[id] = std::move(fields);
    return changed;
  }
  bool del(const std::string& id) {
    auto it = docs.find(id);
    if (it == docs.end()) return q.on_change(id, nullptr, nullptr);
    Json old = it->second;
    docs.erase(it);
    return q.on_change(id, &old, nullptr);
  }
  Ids ids() const { return q.result_ids(); }

  LiveQuery q;
  std::map<std::string, Json> docs;
};

// ------------------------------------------------------------------------------ parse_order_by

TEST(ParseOrderBy, Forms) {
  struct Case {
    const char* text;
    std::vector<std::string> path;
    bool desc;
  };
  for (const Case& c : {Case{"total", {"total"}, false}, Case{"total.asc", {"total"}, false},
                        Case{"total.desc", {"total"}, true}, Case{"-total", {"total"}, true},
                        Case{"a.b.desc", {"a", "b"}, true}, Case{"a.b", {"a", "b"}, false},
                        Case{"-a.b", {"a", "b"}, true}, Case{"desc", {"desc"}, false},
                        Case{"asc.desc", {"asc"}, true}, Case{"id", {"id"}, false},
                        Case{"_x9", {"_x9"}, false}}) {
    auto r = parse_order_by(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().message;
    EXPECT_EQ(r->path, c.path) << c.text;
    EXPECT_EQ(r->descending, c.desc) << c.text;
  }
}

TEST(ParseOrderBy, Errors) {
  for (const char* text : {"", "-", ".desc", ".asc", "-a.desc", "-a.asc", "a..b", "1a", "a-b",
                           "a b", "--a", "a.", ".a", "a.desc.", "a,b"}) {
    auto r = parse_order_by(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, "invalid_query");
    EXPECT_EQ(r.error().field, "orderBy");
    EXPECT_NE(r.error().message.find(std::string("\"") + text + "\""), std::string::npos)
        << r.error().message;
  }
}

// ------------------------------------------------------------------------------ compare_values

TEST(CompareValues, TotalOrder) {
  // Groups of equal values, in ascending order.
  const Json discarded(Json::value_t::discarded);
  std::vector<std::vector<Json>> groups = {
      {},  // missing: nullptr, see below
      {nullptr},
      {false},
      {true},
      {-1e300},
      {std::numeric_limits<std::int64_t>::min()},
      {-5, -5.0},
      {0, 0.0, -0.0, std::uint64_t{0}},
      {0.5},
      {1, 1.0, std::uint64_t{1}},
      {std::int64_t{9007199254740992}, 9007199254740992.0},
      {std::int64_t{9007199254740993}},  // not equal to the double 2^53 it rounds to
      {std::numeric_limits<std::int64_t>::max()},
      {std::uint64_t{9223372036854775808ull}, 9223372036854775808.0},
      {std::numeric_limits<std::uint64_t>::max()},
      {1e300},
      {""},
      {"A"},
      {"a"},
      {"ab"},
      {"\xC3\xA9"},
      // Arrays and objects compare by their serialised text, byte by byte: ',' < ']' < '{'.
      {Json::array({1, 2})},
      {Json::array({1})},
      {Json::array({2})},
      {Json::array()},
      {Json{{"a", 1}}},
      {Json::object()},
  };
  auto at = [&](std::size_t g, std::size_t k) -> const Json* {
    return g == 0 ? (k == 0 ? nullptr : &discarded) : &groups[g][k];
  };
  auto size = [&](std::size_t g) { return g == 0 ? std::size_t{2} : groups[g].size(); };
  for (std::size_t g1 = 0; g1 < groups.size(); ++g1) {
    for (std::size_t k1 = 0; k1 < size(g1); ++k1) {
      for (std::size_t g2 = 0; g2 < groups.size(); ++g2) {
        for (std::size_t k2 = 0; k2 < size(g2); ++k2) {
          const Json* a = at(g1, k1);
          const Json* b = at(g2, k2);
          int want = g1 < g2 ? -1 : (g1 > g2 ? 1 : 0);
          EXPECT_EQ(compare_values(a, b), want)
              << (a ? a->dump() : "missing") << " vs " << (b ? b->dump() : "missing");
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------- LiveQuery

TEST(LiveQuery, DefaultOrderIsIdAscending) {
  Harness h(spec(""));
  EXPECT_TRUE(h.set("c", {{"n", 1}}));
  EXPECT_TRUE(h.set("a", {{"n", 2}}));
  EXPECT_TRUE(h.set("b", {{"n", 3}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "b", "c"}));
  EXPECT_EQ(h.q.total_matches(), 3u);
}

TEST(LiveQuery, EqualSortKeysAreBrokenByIdAscending) {
  Harness h(spec("", "total"));
  h.set("d", {{"total", 5}});
  h.set("b", {{"total", 5}});
  h.set("c", {{"total", 1}});
  h.set("a", {{"total", 5.0}});  // 5 and 5.0 are equal keys
  EXPECT_EQ(h.ids(), (Ids{"c", "a", "b", "d"}));
}

TEST(LiveQuery, DescendingKeepsIdTieBreakAscending) {
  Harness h(spec("", "-total"));
  h.set("d", {{"total", 5}});
  h.set("b", {{"total", 5}});
  h.set("c", {{"total", 1}});
  h.set("a", {{"total", 9}});
  EXPECT_EQ(h.ids(), (Ids{"a", "b", "d", "c"}));
  Harness h2(spec("", "total.desc"));
  h2.set("x", {{"total", 1}});
  h2.set("y", {{"total", 2}});
  EXPECT_EQ(h2.ids(), (Ids{"y", "x"}));
}

TEST(LiveQuery, OrderByIdMeansDocumentId) {
  Harness asc(spec("", "id"));
  Harness desc(spec("", "id.desc"));
  for (auto* h : {&asc, &desc}) {
    h->set("b", {{"id", "zzz"}});  // a field named id does not matter
    h->set("a", {{"id", "yyy"}});
    h->set("c", Json::object());
  }
  EXPECT_EQ(asc.ids(), (Ids{"a", "b", "c"}));
  EXPECT_EQ(desc.ids(), (Ids{"c", "b", "a"}));
}

TEST(LiveQuery, LimitBoundary) {
  Harness h(spec("", "total", 3));
  EXPECT_TRUE(h.set("a", {{"total", 10}}));
  EXPECT_TRUE(h.set("b", {{"total", 20}}));
  EXPECT_TRUE(h.set("c", {{"total", 30}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "b", "c"}));

  // After the last member: stays outside.
  EXPECT_FALSE(h.set("e", {{"total", 100}}));
  // Same key as the last member but a larger id: sorts after it, outside.
  EXPECT_FALSE(h.set("z", {{"total", 30}}));
  // Same key, smaller id: sorts before the last member and pushes it out.
  EXPECT_TRUE(h.set("bb", {{"total", 30}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "b", "bb"}));
  // Entering in the middle pushes the last one out.
  EXPECT_TRUE(h.set("d", {{"total", 15}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "d", "b"}));
  EXPECT_EQ(h.q.total_matches(), 7u);

  // Changes outside the window are not changes of the result.
  EXPECT_FALSE(h.set("e", {{"total", 200}}));
  EXPECT_FALSE(h.set("e", {{"total", 200}, {"note", "x"}}));
  EXPECT_FALSE(h.del("e"));
  EXPECT_FALSE(h.set("z", {{"total", 25}}));  // moves inside rest_ only: ahead of bb, c
  EXPECT_EQ(h.q.total_matches(), 6u);

  // Removing a member pulls the next one in from the rest.
  EXPECT_TRUE(h.del("d"));
  EXPECT_EQ(h.ids(), (Ids{"a", "b", "z"}));
  EXPECT_TRUE(h.del("a"));
  EXPECT_EQ(h.ids(), (Ids{"b", "z", "bb"}));
  // A member moving out past the rest swaps with the first of the rest.
  EXPECT_TRUE(h.set("b", {{"total", 1000}}));
  EXPECT_EQ(h.ids(), (Ids{"z", "bb", "c"}));
  // A rest entry moving in.
  EXPECT_TRUE(h.set("b", {{"total", 0}}));
  EXPECT_EQ(h.ids(), (Ids{"b", "z", "bb"}));
  // Reordering inside the window.
  EXPECT_TRUE(h.set("bb", {{"total", -1}}));
  EXPECT_EQ(h.ids(), (Ids{"bb", "b", "z"}));
  EXPECT_EQ(h.q.total_matches(), 4u);
  // Drain everything.
  EXPECT_TRUE(h.del("bb"));
  EXPECT_TRUE(h.del("b"));
  EXPECT_TRUE(h.del("z"));
  EXPECT_EQ(h.ids(), (Ids{"c"}));
  EXPECT_TRUE(h.del("c"));
  EXPECT_TRUE(h.ids().empty());
  EXPECT_EQ(h.q.total_matches(), 0u);
}

TEST(LiveQuery, LimitOneAndFillingUp) {
  Harness h(spec("", "-total", 1));
  EXPECT_TRUE(h.set("a", {{"total", 1}}));
  EXPECT_FALSE(h.set("b", {{"total", 0}}));
  EXPECT_TRUE(h.set("c", {{"total", 2}}));
  EXPECT_EQ(h.ids(), (Ids{"c"}));
  EXPECT_TRUE(h.del("c"));
  EXPECT_EQ(h.ids(), (Ids{"a"}));
}

TEST(LiveQuery, LimitZeroNeverChanges) {
  Harness h(spec("", "total", 0));
  EXPECT_FALSE(h.set("a", {{"total", 1}}));
  EXPECT_FALSE(h.set("b", {{"total", 0}}));
  EXPECT_FALSE(h.set("a", {{"total", -5}}));
  EXPECT_FALSE(h.del("b"));
  EXPECT_TRUE(h.ids().empty());
  EXPECT_EQ(h.q.total_matches(), 1u);
}

TEST(LiveQuery, LimitLargerThanMatches) {
  Harness h(spec("status=eq.open", "total", 100));
  EXPECT_TRUE(h.set("a", {{"status", "open"}, {"total", 3}}));
  EXPECT_FALSE(h.set("b", {{"status", "paid"}, {"total", 1}}));
  EXPECT_TRUE(h.set("c", {{"status", "open"}, {"total", 2}}));
  EXPECT_EQ(h.ids(), (Ids{"c", "a"}));
  EXPECT_EQ(h.q.total_matches(), 2u);
  EXPECT_TRUE(h.set("a", {{"status", "open"}, {"total", 1}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "c"}));
}

TEST(LiveQuery, DocumentsMovingInAndOutOfTheFilter) {
  Harness h(spec("status=in.(open,overdue)", "total", 2));
  EXPECT_TRUE(h.set("a", {{"status", "open"}, {"total", 1}}));
  EXPECT_TRUE(h.set("b", {{"status", "open"}, {"total", 2}}));
  EXPECT_FALSE(h.set("c", {{"status", "overdue"}, {"total", 3}}));  // matches, outside
  EXPECT_FALSE(h.set("d", {{"status", "paid"}, {"total", 0}}));     // does not match
  EXPECT_EQ(h.q.total_matches(), 3u);

  EXPECT_FALSE(h.set("c", {{"status", "paid"}, {"total", 3}}));  // leaves from outside
  EXPECT_EQ(h.q.total_matches(), 2u);
  EXPECT_TRUE(h.set("c", {{"status", "open"}, {"total", 0}}));  // comes back at the top
  EXPECT_EQ(h.ids(), (Ids{"c", "a"}));
  EXPECT_TRUE(h.set("a", {{"status", "paid"}, {"total", 1}}));  // member leaves: b pulled in
  EXPECT_EQ(h.ids(), (Ids{"c", "b"}));
  EXPECT_TRUE(h.set("d", {{"status", "open"}, {"total", 0}}));  // non-match starts matching
  EXPECT_EQ(h.ids(), (Ids{"c", "d"}));
  EXPECT_TRUE(h.set("d", {{"status", "paid"}, {"total", 0}}));  // member leaves again
  EXPECT_EQ(h.ids(), (Ids{"c", "b"}));
}

TEST(LiveQuery, MissingSortFieldSortsFirstAscendingLastDescending) {
  Harness asc(spec("", "total"));
  Harness desc(spec("", "-total"));
  for (auto* h : {&asc, &desc}) {
    h->set("n", {{"total", nullptr}});
    h->set("m", {{"other", 1}});
    h->set("s", {{"total", "text"}});
    h->set("x", {{"total", 5}});
    h->set("f", {{"total", false}});
    h->set("a", {{"total", Json::array({1})}});
    h->set("m2", Json::object());
  }
  EXPECT_EQ(asc.ids(), (Ids{"m", "m2", "n", "f", "x", "s", "a"}));
  EXPECT_EQ(desc.ids(), (Ids{"a", "s", "x", "f", "n", "m", "m2"}));
}

TEST(LiveQuery, NestedSortPath) {
  Harness h(spec("", "customer.rank.desc", 2));
  h.set("a", {{"customer", {{"rank", 1}}}});
  h.set("b", {{"customer", {{"rank", 3}}}});
  h.set("c", {{"customer", 7}});  // path through a non-object: missing
  h.set("d", {{"customer", {{"rank", 2}}}});
  EXPECT_EQ(h.ids(), (Ids{"b", "d"}));
  EXPECT_EQ(h.q.total_matches(), 4u);
}

TEST(LiveQuery, WindowMemberFieldChangesAreChanges) {
  Harness h(spec("", "total", 2));
  h.set("a", {{"total", 1}, {"name", "x"}});
  h.set("b", {{"total", 2}, {"name", "y"}});
  h.set("c", {{"total", 3}, {"name", "z"}});
  // Same place, other field changed: the window's content changed.
  EXPECT_TRUE(h.set("a", {{"total", 1}, {"name", "x2"}}));
  // Identical update: nothing changed.
  EXPECT_FALSE(h.set("a", {{"total", 1}, {"name", "x2"}}));
  // Sort key changed to an equal number of another type: same place, and the fields compare
  // equal (nlohmann::json compares 1 and 1.0 as numbers), so no change.
  EXPECT_FALSE(h.set("a", {{"total", 1.0}, {"name", "x2"}}));
  // Sort key changed but order kept.
  EXPECT_TRUE(h.set("b", {{"total", 2.5}, {"name", "y"}}));
  EXPECT_EQ(h.ids(), (Ids{"a", "b"}));
  // Member outside the window: no change.
  EXPECT_FALSE(h.set("c", {{"total", 3}, {"name", "z2"}}));
  // A caller that does not know the old fields: assume a change.
  Json same = {{"total", 1.0}, {"name", "x2"}};
  EXPECT_TRUE(h.q.on_change("a", nullptr, &same));
}

TEST(LiveQuery, DeletesAndDiscardedValues) {
  Harness h(spec("", "total"));
  EXPECT_FALSE(h.del("nope"));
  h.set("a", {{"total", 1}});
  Json discarded(Json::value_t::discarded);
  Json before = {{"total", 1}};
  EXPECT_TRUE(h.q.on_change("a", &before, &discarded));  // discarded = absent
  EXPECT_TRUE(h.ids().empty());
  EXPECT_FALSE(h.q.on_change("a", nullptr, &discarded));
  Json not_object = Json::array({1});
  EXPECT_TRUE(h.q.on_change("b", nullptr, &not_object));  // matches the empty filter
  EXPECT_EQ(h.ids(), (Ids{"b"}));
}

TEST(LiveQuery, IsCopyableAndMovable) {
  std::map<int, LiveQuery> queries;
  {
    LiveQuery q(spec("", "-total", 2));
    Json a = {{"total", 1}}, b = {{"total", 2}};
    q.on_change("a", nullptr, &a);
    q.on_change("b", nullptr, &b);
    queries.emplace(1, std::move(q));
  }
  LiveQuery& q = queries.at(1);
  Json c = {{"total", 3}};
  EXPECT_TRUE(q.on_change("c", nullptr, &c));
  EXPECT_EQ(q.result_ids(), (Ids{"c", "b"}));
  LiveQuery copy = q;
  Json d = {{"total", 0}};
  EXPECT_FALSE(copy.on_change("d", nullptr, &d));
  EXPECT_TRUE(copy.on_change("c", &c, nullptr));
  EXPECT_EQ(copy.result_ids(), (Ids{"b", "a"}));
  EXPECT_EQ(q.result_ids(), (Ids{"c", "b"}));
  EXPECT_EQ(q.spec().collection, "bills");
}

// --------------------------------------------------------------------------- GroupedAggregate

struct AggHarness {
  explicit AggHarness(AggregateSpec s) : a(std::move(s)) {}
  bool set(const std::string& id, Json fields) {
    auto it = docs.find(id);
    bool changed = a.on_change(id, it == docs.end() ? nullptr : &it->second, &fields);
    docs[id] = std::move(fields);
    return changed;
  }
  bool del(const std::string& id) {
    auto it = docs.find(id);
    if (it == docs.end()) return a.on_change(id, nullptr, nullptr);
    Json old = it->second;
    docs.erase(it);
    return a.on_change(id, &old, nullptr);
  }
  GroupedAggregate a;
  std::map<std::string, Json> docs;
};

AggregateSpec agg_spec(std::string_view w, std::vector<std::string> group_by,
                       std::optional<std::vector<std::string>> sum_of) {
  AggregateSpec s;
  s.collection = "bills";
  s.where = where(w);
  s.group_by = std::move(group_by);
  s.sum_of = std::move(sum_of);
  return s;
}

using Groups = std::map<std::string, GroupTotals>;

TEST(GroupedAggregate, CountAndSumByStatus) {
  AggHarness h(agg_spec("", {"status"}, std::vector<std::string>{"total"}));
  EXPECT_TRUE(h.set("a", {{"status", "open"}, {"total", 10}}));
  EXPECT_TRUE(h.set("b", {{"status", "open"}, {"total", 5.5}}));
  EXPECT_TRUE(h.set("c", {{"status", "paid"}, {"total", 7}}));
  EXPECT_TRUE(h.set("d", {{"total", 1}}));                       // missing status: "null"
  EXPECT_TRUE(h.set("e", {{"status", nullptr}, {"total", "x"}}));  // non-number adds 0
  EXPECT_EQ(h.a.groups(), (Groups{{"\"open\"", {2, 15.5}},
                                  {"\"paid\"", {1, 7}},
                                  {"null", {2, 1}}}));
  EXPECT_EQ(h.a.total(), (GroupTotals{5, 23.5}));

  // A change that does not touch the totals.
  EXPECT_FALSE(h.set("a", {{"status", "open"}, {"total", 10}, {"note", "hi"}}));
  // Moving between groups.
  EXPECT_TRUE(h.set("b", {{"status", "paid"}, {"total", 5.5}}));
  EXPECT_EQ(h.a.groups(), (Groups{{"\"open\"", {1, 10}},
                                  {"\"paid\"", {2, 12.5}},
                                  {"null", {2, 1}}}));
  // Sum change within a group.
  EXPECT_TRUE(h.set("a", {{"status", "open"}, {"total", 11}}));
  EXPECT_EQ(h.a.groups().at("\"open\""), (GroupTotals{1, 11}));
  // The last member leaving erases the group.
  EXPECT_TRUE(h.del("a"));
  EXPECT_EQ(h.a.groups().count("\"open\""), 0u);
  EXPECT_FALSE(h.del("a"));
  EXPECT_EQ(h.a.total(), (GroupTotals{4, 13.5}));
}

TEST(GroupedAggregate, WhereFiltersAndGroupKeysAreJsonText) {
  AggHarness h(agg_spec("total=gt.0", {"kind"}, std::nullopt));
  EXPECT_TRUE(h.set("a", {{"kind", 42}, {"total", 1}}));
  EXPECT_TRUE(h.set("b", {{"kind", true}, {"total", 1}}));
  EXPECT_TRUE(h.set("c", {{"kind", Json::array({1, "x"})}, {"total", 1}}));
  EXPECT_FALSE(h.set("d", {{"kind", 42}, {"total", 0}}));  // filtered out
  EXPECT_TRUE(h.set("e", {{"kind", "\xff"}, {"total", 1}}));  // invalid UTF-8 must not throw
  EXPECT_EQ(h.a.groups().at("42"), (GroupTotals{1, 0}));
  EXPECT_EQ(h.a.groups().at("true"), (GroupTotals{1, 0}));
  EXPECT_EQ(h.a.groups().at("[1,\"x\"]"), (GroupTotals{1, 0}));
  EXPECT_EQ(h.a.groups().size(), 4u);
  EXPECT_TRUE(h.set("a", {{"kind", 42}, {"total", 0}}));  // leaves through the filter
  EXPECT_EQ(h.a.groups().count("42"), 0u);
}

TEST(GroupedAggregate, NoGroupByIsOneGroup) {
  AggHarness h(agg_spec("", {}, std::vector<std::string>{"n"}));
  EXPECT_TRUE(h.set("a", {{"n", 1}}));
  EXPECT_TRUE(h.set("b", {{"n", 2}}));
  EXPECT_EQ(h.a.groups(), (Groups{{"", {2, 3}}}));
  EXPECT_TRUE(h.set("b", {{"n", 0}}));
  EXPECT_FALSE(h.set("b", {{"n", 0.0}}));
  EXPECT_EQ(h.a.total(), (GroupTotals{2, 1}));
}

TEST(GroupedAggregate, SumsLeaveNoRoundingResidue) {
  AggHarness h(agg_spec("", {"g"}, std::vector<std::string>{"v"}));
  h.set("a", {{"g", 1}, {"v", 0.1}});
  h.set("b", {{"g", 1}, {"v", 0.2}});
  h.set("c", {{"g", 1}, {"v", 1e17}});
  h.del("c");
  h.del("a");
  EXPECT_EQ(h.a.groups().at("1").sum, 0.2);  // naive += / -= would leave 0.20000000000000004
  h.set("a", {{"g", 1}, {"v", 0.1}});
  EXPECT_EQ(h.a.groups().at("1").sum, 0.1 + 0.2);
  EXPECT_EQ(h.a.total().sum, 0.1 + 0.2);
}

// ------------------------------------------------------------------------ randomised vs brute

std::uint64_t base_seed() {
  if (const char* s = std::getenv("SYNCLINE_SEED")) return std::strtoull(s, nullptr, 10);
  return 7001;
}

Json random_doc(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  Json d = Json::object();
  switch (pick(5)) {
    case 0: d["status"] = "open"; break;
    case 1: d["status"] = "paid"; break;
    case 2: d["status"] = "void"; break;
    case 3: d["status"] = nullptr; break;
    default: break;  // missing
  }
  switch (pick(8)) {
    case 0: case 1: case 2: d["total"] = pick(10); break;
    case 3: case 4: d["total"] = pick(40) * 0.25; break;
    case 5: d["total"] = nullptr; break;
    case 6: d["total"] = pick(2) ? Json("7") : Json(true); break;
    default: break;
  }
  d["tag"] = pick(12);
  if (pick(3) != 0) d["n"] = {{"p", pick(5)}};
  return d;
}

struct Brute {
  const QuerySpec& s;
  std::vector<std::pair<std::string, Json>> window(const std::map<std::string, Json>& docs,
                                                   std::size_t* matches) const {
    std::vector<std::pair<std::string, Json>> out;
    for (const auto& [id, f] : docs) {
      if (s.where.matches(id, f)) out.emplace_back(id, f);
    }
    *matches = out.size();
    bool by_id = !s.order_by || s.order_by->path == std::vector<std::string>{"id"};
    bool desc = s.order_by && s.order_by->descending;
    std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
      int c = by_id ? a.first.compare(b.first)
                    : compare_values(lookup_field(a.second, s.order_by->path),
                                     lookup_field(b.second, s.order_by->path));
      if (desc) c = -c;
      if (c != 0) return c < 0;
      return a.first < b.first;
    });
    if (s.limit && out.size() > *s.limit) out.resize(*s.limit);
    return out;
  }
};

Groups brute_groups(const AggregateSpec& s, const std::map<std::string, Json>& docs) {
  Groups g;
  for (const auto& [id, f] : docs) {
    if (!s.where.matches(id, f)) continue;
    const Json* k = lookup_field(f, s.group_by);
    auto& t = g[k ? k->dump() : "null"];
    t.count += 1;
    const Json* v = lookup_field(f, *s.sum_of);
    if (v && v->is_number()) t.sum += v->get<double>();  // exact: ints and multiples of 1/4
  }
  return g;
}

TEST(LiveQueryRandomized, MatchesBruteForceRecomputation) {
  const std::vector<const char*> wheres = {"", "status=in.(open,paid)", "total=gte.3",
                                           "status=neq.void,tag=lt.8"};
  const std::vector<const char*> orders = {"", "total", "-total", "id.desc", "n.p",
                                           "status.desc"};
  const std::vector<std::optional<std::size_t>> limits = {std::nullopt, 0, 1, 3, 10};
  struct Config {
    const char* w;
    const char* o;
    std::optional<std::size_t> lim;
  };
  std::vector<Config> configs;
  for (const char* w : wheres) {
    for (const char* o : orders) {
      for (const auto& lim : limits) configs.push_back({w, o, lim});
    }
  }
  // The seed picks the configuration too, so SYNCLINE_SEED=<seed> reruns exactly one case.
  const std::uint64_t base = base_seed();
  const std::size_t runs = std::getenv("SYNCLINE_SEED") != nullptr ? 1 : configs.size();
  for (std::size_t run = 0; run < runs; ++run) {
    const std::uint64_t seed = base + run;
    const auto& [w, o, lim] = configs[seed % configs.size()];
    std::mt19937_64 rng(seed);
    SCOPED_TRACE("seed=" + std::to_string(seed) + " (rerun with SYNCLINE_SEED=" +
                 std::to_string(seed) + ") where=\"" + w + "\" orderBy=\"" + o +
                 "\" limit=" + (lim ? std::to_string(*lim) : "none"));
    QuerySpec qs = spec(w, *o ? std::optional<std::string_view>(o) : std::nullopt, lim);
    LiveQuery q(qs);
    AggregateSpec as = agg_spec(w, {"status"}, std::vector<std::string>{"total"});
    GroupedAggregate agg(as);
    Brute brute{qs};
    std::map<std::string, Json> docs;
    std::size_t matches = 0;
    auto old_window = brute.window(docs, &matches);
    Groups old_groups;

    for (int step = 0; step < 1500; ++step) {
      std::string id = "d" + std::to_string(rng() % 40);
      auto it = docs.find(id);
      std::optional<Json> before;
      if (it != docs.end()) before = it->second;
      std::optional<Json> after;
      int r = static_cast<int>(rng() % 10);
      if (r < 2) {
        // delete (or delete of an absent doc)
      } else if (r == 2 && before) {
        after = *before;  // no-op update
      } else if (r < 6 && before) {
        after = *before;  // change one field
        Json fresh = random_doc(rng);
        const char* keys[] = {"status", "total", "tag", "n"};
        const char* key = keys[rng() % 4];
        if (fresh.contains(key)) {
          (*after)[key] = fresh[key];
        } else {
          after->erase(key);
        }
      } else {
        after = random_doc(rng);
      }
      if (after) {
        docs[id] = *after;
      } else {
        docs.erase(id);
      }

      bool changed = q.on_change(id, before ? &*before : nullptr, after ? &*after : nullptr);
      bool agg_changed =
          agg.on_change(id, before ? &*before : nullptr, after ? &*after : nullptr);

      auto new_window = brute.window(docs, &matches);
      Ids want_ids;
      for (const auto& e : new_window) want_ids.push_back(e.first);
      ASSERT_EQ(q.result_ids(), want_ids) << "step " << step << " id " << id;
      ASSERT_EQ(q.total_matches(), matches) << "step " << step;
      ASSERT_EQ(changed, new_window != old_window) << "step " << step << " id " << id;
      old_window = std::move(new_window);

      Groups groups = brute_groups(as, docs);
      ASSERT_EQ(agg.groups(), groups) << "step " << step;
      ASSERT_EQ(agg_changed, groups != old_groups) << "step " << step;
      GroupTotals total;
      for (const auto& [k, t] : groups) total.count += t.count, total.sum += t.sum;
      ASSERT_EQ(agg.total(), total) << "step " << step;
      old_groups = std::move(groups);
    }
  }
}

}  // namespace
}  // namespace syncline
