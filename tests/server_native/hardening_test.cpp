// Server hardening (docs/reliability-security.md) at the lowest layers that show it: claims compare
// as exact strings in rules, who may publish dataset-wide events, the one bounded JSON entry point,
// the catch-up memory budget's arithmetic, scoped snapshots narrowed by an index, and the static
// route's containment.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "api.hpp"
#include "config.hpp"
#include "hub.hpp"
#include "static_files.hpp"
#include "store.hpp"
#include "writer.hpp"

using namespace syncline;
using namespace syncline::server;

namespace {

Config demo_like_config(Json extra = Json::object()) {
  Json j = {{"jwt_secret", "s"},
            {"collections",
             {{"bookings", {{"read", {{"admin", "all"}, {"customer", "customer_id=eq.{sub}"}}}, {"write", {{"admin", "all"}}}}},
              {"customers", {{"read", {{"customer", "id=eq.{sub}"}}}}}}}};
  j.update(extra);
  auto c = Config::from_json(j);
  EXPECT_TRUE(static_cast<bool>(c)) << c.error().message;
  return *c;
}

Claims claims(const std::string& sub, const std::string& role) {
  Claims c;
  c.sub = sub;
  c.role = role;
  c.raw = Json{{"sub", sub}, {"role", role}};
  return c;
}

TEST(RuleClaims, ASubstitutedClaimComparesAsTheExactString) {
  Config config = demo_like_config();
  const Json numeric = {{"customer_id", 4242}};
  const Json text = {{"customer_id", "4242"}};
  for (const char* sub : {"4242", "04242", "4.242e3"}) {
    Access a = config.read_access("bookings", claims(sub, "customer"));
    ASSERT_EQ(a.kind, Access::Kind::Where);
    EXPECT_FALSE(a.matches("b1", numeric)) << sub;
    EXPECT_EQ(a.matches("b1", text), std::string(sub) == "4242") << sub;
  }
  // A claim with characters outside the safe set denies instead of building a filter.
  EXPECT_EQ(config.read_access("bookings", claims("a,b", "customer")).kind, Access::Kind::None);
  EXPECT_EQ(config.read_access("bookings", claims("x", "admin")).kind, Access::Kind::All);
}

TEST(RuleClaims, ScopePathsAreTheFieldsRulesCompareWithAClaim) {
  auto paths = Store::scope_paths(demo_like_config());
  ASSERT_EQ(paths.size(), 1u);  // `id=eq.{sub}` is served by the primary key
  EXPECT_EQ(paths[0], std::vector<std::string>{"customer_id"});
}

TEST(EventRules, DatasetWideEventsFollowTheConfig) {
  Config none = demo_like_config();
  EXPECT_FALSE(none.events.may_publish("admin"));
  EXPECT_FALSE(none.events.may_publish("customer"));
  EXPECT_TRUE(none.events.may_read("customer"));
  Config some = demo_like_config({{"events", {{"publish", {{"admin", "all"}}}, {"read", {{"admin", "all"}, {"*", "none"}}}}}});
  EXPECT_TRUE(some.events.may_publish("admin"));
  EXPECT_FALSE(some.events.may_publish("customer"));
  EXPECT_TRUE(some.events.may_read("admin"));
  EXPECT_FALSE(some.events.may_read("customer"));
  Config open = Config::open_default();
  EXPECT_TRUE(open.events.may_publish("anyone"));
  EXPECT_TRUE(open.events.may_read("anyone"));
  auto bad = Config::from_json(Json{{"collections", Json::object()}, {"events", {{"publish", {{"admin", "yes"}}}}}});
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().field, "events.publish.admin");
}

TEST(ClientJson, NestingIsBoundedWhileParsing) {
  Limits limits;
  limits.max_json_depth = 8;
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(std::holds_alternative<Json>(parse_client_json(nested(8), limits, "body")));
  auto deep = parse_client_json(nested(9), limits, "body");
  ASSERT_TRUE(std::holds_alternative<ApiError>(deep));
  EXPECT_EQ(std::get<ApiError>(deep).status(), 400);
  EXPECT_EQ(std::get<ApiError>(deep).error.code, "invalid_json");
  EXPECT_EQ(std::get<ApiError>(deep).error.field, "body");
  EXPECT_NE(std::get<ApiError>(deep).error.message.find("limits.max_json_depth"), std::string::npos);
  // 200,000 levels: refused without building them (this would overflow the stack if copied).
  EXPECT_TRUE(std::holds_alternative<ApiError>(parse_client_json(std::string(200000, '['), limits, "frame")));
  auto broken = parse_client_json("{\"a\":", limits, "frame");
  ASSERT_TRUE(std::holds_alternative<ApiError>(broken));
  EXPECT_EQ(std::get<ApiError>(broken).error.field, "frame");
  limits.max_body_bytes = 4;
  EXPECT_EQ(std::get<ApiError>(parse_client_json("[1,2,3]", limits, "body")).status(), 413);
}

TEST(CatchupBudgetTest, TotalAndPerUserSharesBound) {
  CatchupBudget b(4u << 20, 1u << 20);
  EXPECT_EQ(b.chunk_bytes(), 256u << 10);  // a quarter of the per-user share
  EXPECT_TRUE(b.try_take("a", 1u << 20));
  EXPECT_FALSE(b.try_take("a", 1));  // a's share is full
  EXPECT_TRUE(b.try_take("b", 1u << 20));
  EXPECT_TRUE(b.try_take("c", 1u << 20));
  EXPECT_TRUE(b.try_take("d", 1u << 20));
  EXPECT_FALSE(b.try_take("e", 1));  // the total is full
  b.give_back("a", 1u << 20);
  EXPECT_TRUE(b.try_take("e", 512u << 10));
  b.force_take("e", 1u << 20);  // a chunk's overshoot is counted, not refused
  EXPECT_EQ(b.used(), (4u << 20) + (1u << 20) - (512u << 10));
}

class ScopedSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/syncline-hardening-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ScopedSnapshot, AScopeKeyReadsOnlyTheCallersRowsThroughTheIndex) {
  Config config = demo_like_config();
  const std::string db = "sqlite:" + dir_ + "/db/s.db";
  auto store = Store::open(db, StoreOptions{}, config);
  ASSERT_TRUE(static_cast<bool>(store)) << store.error().message;
  ASSERT_FALSE((*store)->begin_group());
  std::vector<Mutation> ms;
  for (int i = 0; i < 300; ++i) {
    Mutation m;
    m.mid = i + 1;
    m.collection = "bookings";
    m.id = "b" + std::to_string(1000 + i);
    Json owner = i % 3 == 0 ? Json("c1") : (i % 3 == 1 ? Json("c2") : Json(1));  // 1 is a number
    m.fields = Json{{"customer_id", owner}};
    ms.push_back(m);
  }
  auto ok = [](const Mutation&, const Document*, const Json*) { return std::optional<Error>(); };
  ASSERT_TRUE(static_cast<bool>((*store)->apply_batch("admin-client", "admin", ms, ok)));
  ASSERT_FALSE((*store)->commit_group());
  auto reader = Store::open_reader(db, StoreOptions{}, config);
  ASSERT_TRUE(static_cast<bool>(reader));
  Access a = config.read_access("bookings", claims("c1", "customer"));
  auto visible = [&](const Document& d) { return a.matches(d.id, d.fields); };
  std::map<std::string, ScopeKey> keys{{"bookings", ScopeKey{{"customer_id"}, "c1"}}};
  std::atomic<std::int64_t> rows{0};
  auto page = (*reader)->snapshot({"bookings"}, std::nullopt, 1000, visible, keys, &rows);
  ASSERT_TRUE(static_cast<bool>(page));
  EXPECT_EQ(page->docs.size(), 100u);
  EXPECT_EQ(rows.load(), 100);  // only c1's rows were read
  // Paging through the key keeps order and loses nothing.
  std::vector<std::string> ids;
  std::optional<std::pair<std::string, std::string>> after;
  for (;;) {
    auto p = (*reader)->snapshot({"bookings"}, after, 7, visible, keys, &rows);
    ASSERT_TRUE(static_cast<bool>(p));
    for (auto& d : p->docs) ids.push_back(d.id);
    if (!p->next) break;
    after = p->next;
  }
  ASSERT_EQ(ids.size(), 100u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  // Sub "1" never sees the numeric owner 1, and the key reads none of those rows.
  Access one = config.read_access("bookings", claims("1", "customer"));
  rows = 0;
  auto none = (*reader)->snapshot(
      {"bookings"}, std::nullopt, 1000, [&](const Document& d) { return one.matches(d.id, d.fields); },
      {{"bookings", ScopeKey{{"customer_id"}, "1"}}}, &rows);
  ASSERT_TRUE(static_cast<bool>(none));
  EXPECT_TRUE(none->docs.empty());
  EXPECT_EQ(rows.load(), 0);
}

TEST_F(ScopedSnapshot, StaticFilesStayUnderTheRoot) {
  namespace fs = std::filesystem;
  fs::create_directories(dir_ + "/www/assets");
  fs::create_directories(dir_ + "/secret");
  std::ofstream(dir_ + "/www/index.html") << "INDEX";
  std::ofstream(dir_ + "/www/assets/app.js") << "APP";
  std::ofstream(dir_ + "/secret/key.txt") << "SECRET";
  fs::create_symlink(dir_ + "/secret/key.txt", dir_ + "/www/key.txt");
  fs::create_symlink(dir_ + "/secret", dir_ + "/www/out");
  auto get = [&](const std::string& path) {
    HttpRequest r;
    r.method = "GET";
    r.path = path;
    return serve_static(dir_ + "/www", r);
  };
  ASSERT_TRUE(get("/assets/app.js"));
  EXPECT_EQ(get("/assets/app.js")->body, "APP");
  EXPECT_EQ(get("/")->body, "INDEX");
  EXPECT_EQ(get("/some/app/route")->body, "INDEX");  // SPA fallback
  for (const std::string& p : std::vector<std::string>{"/key.txt", "/out/key.txt", dir_ + "/secret/key.txt", "/" + dir_ + "/secret/key.txt",
                        "/../secret/key.txt", "/assets/../../secret/key.txt", "//etc/passwd.txt", "/out/"}) {
    auto r = get(p);
    EXPECT_TRUE(!r || r->body == "INDEX") << p;
  }
  EXPECT_FALSE(get("/../secret/key"));  // no fallback for a path that climbs out
}

}  // namespace

// A subject is database text (the client ids it owns): one holding U+0000 is refused, never cut
// into another subject.
TEST(Auth, ASubjectHoldingUPlus0000IsRefused) {
  const long long now = 1700000000;
  std::string sub("ann");
  sub += '\0';
  sub += "x";
  auto bad = verify_jwt(sign_jwt(Json{{"sub", sub}, {"role", "customer"}}, "secret"), "secret", now);
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code, "unauthorized");
  EXPECT_NE(bad.error().message.find("U+0000"), std::string::npos);
  EXPECT_TRUE(static_cast<bool>(verify_jwt(sign_jwt(Json{{"sub", "ann"}, {"role", "customer"}}, "secret"), "secret", now)));
}
