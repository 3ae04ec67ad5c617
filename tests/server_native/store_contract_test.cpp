// Layer: server (native tests). The Store contract, run against every implementation: the
// SQLite store and the PostgreSQL store on a real, throwaway PostgreSQL cluster this binary
// starts itself (no mocks). What both must do the same: log order and read bounds, mid dedupe,
// client binding, atomic groups, unique keys, events, paged and scoped snapshots, a head that
// survives reopening, pruning. PostgreSQL only: several writers ("nodes") on one database get
// one contiguous seq space, and a lost connection is reported and replaced.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "log_sequencer.hpp"
#include "log_tailer.hpp"
#include "pg_store_util.hpp"
#include "store.hpp"
#include "writer.hpp"

using namespace syncline;
using namespace syncline::server;

namespace {

const char* kPgBin = "/usr/lib/postgresql/15/bin";

// The throwaway cluster: initdb + pg_ctl start once per test binary run, immediate stop and
// removal at the end. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
class PgCluster : public ::testing::Environment {
 public:
  static inline std::string error;  // non-empty: the cluster could not be started
  static inline int port = 0;
  static inline std::string dir;

  void SetUp() override {
    std::string bin = kPgBin;
    if (!std::filesystem::exists(bin + "/initdb") || !std::filesystem::exists(bin + "/pg_ctl")) {
      error = "PostgreSQL 15 server binaries not found in " + bin +
              " (scripts/bootstrap.sh installs the postgresql package)";
      return;
    }
    char tmpl[] = "/tmp/syncline-pg-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error = "mkdtemp failed";
      return;
    }
    dir = tmpl;
    ::chmod(dir.c_str(), 0777);
    port = free_port();
    const std::string as = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
    std::string initdb = as + bin + "/initdb -D " + dir + "/pg -A trust -U postgres --no-sync -E UTF8 >" + dir +
                         "/initdb.log 2>&1";
    if (std::system(initdb.c_str()) != 0) {
      error = "initdb failed: " + slurp(dir + "/initdb.log");
      return;
    }
    std::string start = as + bin + "/pg_ctl -D " + dir + "/pg -o \"-p " + std::to_string(port) + " -k " + dir +
                        " -c listen_addresses=127.0.0.1\" -l " + dir + "/pg.log -w start >/dev/null 2>&1";
    if (std::system(start.c_str()) != 0) {
      error = "pg_ctl start failed: " + slurp(dir + "/pg.log");
      return;
    }
    started_ = true;
    // A watchdog outlives a test binary killed before TearDown (a signal, a closed pipe): once
    // this process is gone it stops the cluster and removes the directory. After a normal
    // TearDown it finds nothing left to do.
    std::string watchdog = "nohup sh -c 'while kill -0 " + std::to_string(::getpid()) +
                           " 2>/dev/null; do sleep 1; done; " + as + bin + "/pg_ctl -D " + dir +
                           "/pg -m immediate stop; rm -rf " + dir + "' >/dev/null 2>&1 &";
    std::system(watchdog.c_str());
  }
  void TearDown() override {
    if (dir.empty()) return;
    if (started_) {
      const std::string as = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
      std::string stop = as + std::string(kPgBin) + "/pg_ctl -D " + dir + "/pg -m immediate stop >/dev/null 2>&1";
      std::system(stop.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  static std::string url(const std::string& db) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/" + db;
  }
  // A fresh database for one test.
  static std::string create_database() {
    static std::atomic<int> n{0};
    std::string name = "contract_" + std::to_string(::getpid()) + "_" + std::to_string(++n);
    PGconn* c = PQconnectdb(url("postgres").c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());  // a name this test generated
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    return name;
  }
  // Runs SQL on its own connection (the test's "administrator"); returns the first value.
  static std::string admin(const std::string& db, const std::string& sql) {
    PGconn* c = PQconnectdb(url(db).c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
        << PQresultErrorMessage(r);
    std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    PQfinish(c);
    return v;
  }

 private:
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    int p = ntohs(a.sin_port);
    ::close(fd);
    return p;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  bool started_ = false;
};

[[maybe_unused]] ::testing::Environment* const pg_env = ::testing::AddGlobalTestEnvironment(new PgCluster);

enum class Backend { Sqlite, Pg };

Config contract_config() {
  Json j = {{"jwt_secret", "s"},
            {"collections",
             {{"bookings",
               {{"read", {{"admin", "all"}, {"customer", "customer_id=eq.{sub}"}}},
                {"write", {{"admin", "all"}}},
                {"unique", Json::array({Json::array({"hall", "slot"})})}}},
              {"orders", {{"read", {{"admin", "all"}}}, {"write", {{"admin", "all"}}}}}}}};
  auto c = Config::from_json(j);
  EXPECT_TRUE(static_cast<bool>(c)) << c.error().message;
  return *c;
}

std::optional<Error> allow(const Mutation&, const Document*, const Json*) { return std::nullopt; }

Mutation insert(std::int64_t mid, const std::string& collection, const std::string& id, Json fields) {
  Mutation m;
  m.mid = mid;
  m.op = MutationOp::Insert;
  m.collection = collection;
  m.id = id;
  m.fields = std::move(fields);
  return m;
}

Mutation update(std::int64_t mid, const std::string& collection, const std::string& id, Json fields) {
  Mutation m = insert(mid, collection, id, std::move(fields));
  m.op = MutationOp::Update;
  return m;
}

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Pg) {
      ASSERT_TRUE(PgCluster::error.empty()) << "PostgreSQL test cluster unavailable: " << PgCluster::error;
      db_name_ = PgCluster::create_database();
      url_ = PgCluster::url(db_name_);
    } else {
      char tmpl[] = "/tmp/syncline-contract-XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
      url_ = "sqlite:" + dir_ + "/db/contract.db";
    }
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> open(StoreOptions options = {}) {
    auto s = Store::open(url_, options, config_);
    EXPECT_TRUE(static_cast<bool>(s)) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  std::unique_ptr<Store> reader() {
    auto s = Store::open_reader(url_, StoreOptions{}, config_);
    EXPECT_TRUE(static_cast<bool>(s)) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  // One request in a group of its own, committed.
  static BatchResult write(Store& s, const std::string& client, const std::string& subject, std::vector<Mutation> ms) {
    EXPECT_FALSE(s.begin_group());
    auto r = s.apply_batch(client, subject, ms, allow);
    EXPECT_TRUE(static_cast<bool>(r)) << r.error().message;
    EXPECT_FALSE(s.commit_group());
    return r ? *r : BatchResult{};
  }

  Config config_ = contract_config();
  std::string dir_, url_, db_name_;
};

TEST_P(StoreContract, BatchesTakeSeqsInOrderAndReadBackWithinBounds) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->head_seq(), 0);
  ASSERT_FALSE(s->begin_group());
  auto a = s->apply_batch("c1", "s1",
                          {insert(1, "orders", "o1", {{"n", 1}}), insert(2, "orders", "o2", {{"n", 2}}),
                           insert(3, "orders", "o3", {{"n", 3}})},
                          allow);
  ASSERT_TRUE(static_cast<bool>(a)) << a.error().message;
  EXPECT_EQ(a->results.seq, 3);
  auto b = s->apply_batch("c2", "s2", {update(1, "orders", "o1", {{"n", 10}})}, allow);
  ASSERT_TRUE(static_cast<bool>(b)) << b.error().message;
  EXPECT_EQ(b->results.seq, 4);
  EXPECT_EQ(s->head_seq(), 0);  // not moved by an open group
  ASSERT_FALSE(s->commit_group());
  EXPECT_EQ(s->head_seq(), 4);
  ASSERT_EQ(a->rows.size(), 3u);
  EXPECT_EQ(a->rows[2].seq, 3);

  auto r = reader();
  ASSERT_TRUE(r);
  bool reached = false;
  auto all = r->read_log(0, 4, 100, 0, &reached);
  ASSERT_TRUE(static_cast<bool>(all)) << all.error().message;
  ASSERT_EQ(all->size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*all)[i].seq, i + 1);
  EXPECT_TRUE(reached);
  const LogRow& up = (*all)[3];
  EXPECT_EQ(up.op, ChangeOp::Update);
  EXPECT_EQ(up.id, "o1");
  EXPECT_EQ(up.version, 4);  // a version is the seq of the change that made it
  EXPECT_EQ(up.fields, (Json{{"n", 10}}));
  EXPECT_EQ(up.prior, (Json{{"n", 1}}));
  ASSERT_TRUE(up.origin.has_value());
  EXPECT_EQ(up.origin->client, "c2");
  EXPECT_EQ(up.origin->mid, 1);

  auto limited = r->read_log(0, 4, 3, 0, &reached);
  ASSERT_TRUE(static_cast<bool>(limited));
  EXPECT_EQ(limited->size(), 3u);
  EXPECT_FALSE(reached);  // stopped by the limit
  auto middle = r->read_log(1, 3, 100, 0, &reached);
  ASSERT_TRUE(static_cast<bool>(middle));
  ASSERT_EQ(middle->size(), 2u);
  EXPECT_EQ(middle->front().seq, 2);
  EXPECT_EQ(middle->back().seq, 3);
  EXPECT_TRUE(reached);
  auto bytes = r->read_log(0, 4, 100, 1, &reached);
  ASSERT_TRUE(static_cast<bool>(bytes));
  EXPECT_EQ(bytes->size(), 1u);  // the first row always, then the byte bound
  EXPECT_FALSE(reached);
  auto empty = r->read_log(4, 4, 100, 0, &reached);
  ASSERT_TRUE(static_cast<bool>(empty));
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(reached);
}

TEST_P(StoreContract, AResentMidIsADuplicateWithItsRecordedSeq) {
  auto s = open();
  ASSERT_TRUE(s);
  write(*s, "c1", "s1", {insert(1, "orders", "o1", Json::object()), insert(2, "orders", "o2", Json::object())});
  write(*s, "c1", "s1", {insert(3, "orders", "o3", Json::object())});
  auto again = write(*s, "c1", "s1", {insert(2, "orders", "o2", Json::object()), insert(3, "orders", "o3", Json::object())});
  ASSERT_EQ(again.results.results.size(), 2u);
  EXPECT_EQ(again.results.results[0].status, ResultStatus::Duplicate);
  EXPECT_EQ(again.results.results[0].seq, 2);
  EXPECT_EQ(again.results.results[1].status, ResultStatus::Duplicate);
  EXPECT_EQ(again.results.results[1].seq, 3);
  EXPECT_TRUE(again.rows.empty());
  EXPECT_EQ(s->head_seq(), 3);
}

TEST_P(StoreContract, AClientBoundToAnotherSubjectIsForbiddenAndTheGroupGoesOn) {
  auto s = open();
  ASSERT_TRUE(s);
  write(*s, "c1", "alice", {insert(1, "orders", "o1", Json::object())});
  ASSERT_FALSE(s->begin_group());
  auto ok = s->apply_batch("c2", "bob", {insert(1, "orders", "o2", Json::object())}, allow);
  ASSERT_TRUE(static_cast<bool>(ok));
  auto bad = s->apply_batch("c1", "bob", {insert(2, "orders", "o3", Json::object())}, allow);
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code, "forbidden");
  EXPECT_FALSE(s->transaction_lost());
  ASSERT_FALSE(s->commit_group());
  EXPECT_EQ(s->head_seq(), 2);
  EXPECT_TRUE(s->get_document("orders", "o2").has_value());
  EXPECT_FALSE(s->get_document("orders", "o3").has_value());
}

TEST_P(StoreContract, AnAtomicGroupIsAllOrNoneAndGivesItsSeqsBack) {
  auto s = open();
  ASSERT_TRUE(s);
  write(*s, "c1", "s1", {insert(1, "orders", "o1", Json::object())});
  Mutation m1 = insert(2, "orders", "g1", {{"a", 1}});
  Mutation m2 = update(3, "orders", "missing", {{"a", 2}});  // fails: no such document
  m1.group = 2;
  m1.group_size = 2;
  m2.group = 2;
  m2.group_size = 2;
  auto r = write(*s, "c1", "s1", {m1, m2, insert(4, "orders", "o4", Json::object())});
  ASSERT_EQ(r.results.results.size(), 3u);
  EXPECT_EQ(r.results.results[0].status, ResultStatus::Rejected);
  EXPECT_EQ(r.results.results[0].failed_mid, 3);
  EXPECT_EQ(r.results.results[1].status, ResultStatus::Rejected);
  EXPECT_EQ(r.results.results[2].status, ResultStatus::Applied);
  EXPECT_EQ(r.results.results[2].seq, 2);  // the group's seqs were given back
  EXPECT_FALSE(s->get_document("orders", "g1").has_value());
  EXPECT_EQ(s->head_seq(), 2);
}

TEST_P(StoreContract, UniqueKeysRejectACollisionAndAreFreedByAChange) {
  auto s = open();
  ASSERT_TRUE(s);
  auto a = write(*s, "c1", "s1", {insert(1, "bookings", "b1", {{"hall", "A"}, {"slot", 1}})});
  EXPECT_EQ(a.results.results[0].status, ResultStatus::Applied);
  auto clash = write(*s, "c1", "s1", {insert(2, "bookings", "b2", {{"hall", "A"}, {"slot", 1}})});
  EXPECT_EQ(clash.results.results[0].status, ResultStatus::Rejected);
  EXPECT_EQ(clash.results.results[0].code, "constraint");
  auto other = write(*s, "c1", "s1", {insert(3, "bookings", "b3", {{"hall", "A"}, {"slot", 2}})});
  EXPECT_EQ(other.results.results[0].status, ResultStatus::Applied);
  auto moved = write(*s, "c1", "s1", {update(4, "bookings", "b1", {{"slot", 3}})});
  EXPECT_EQ(moved.results.results[0].status, ResultStatus::Applied);
  auto freed = write(*s, "c1", "s1", {insert(5, "bookings", "b4", {{"hall", "A"}, {"slot", 1}})});
  EXPECT_EQ(freed.results.results[0].status, ResultStatus::Applied);
  EXPECT_EQ(s->head_seq(), 4);
}

TEST_P(StoreContract, PublishTakesTheNextSeq) {
  auto s = open();
  ASSERT_TRUE(s);
  write(*s, "c1", "s1", {insert(1, "orders", "o1", {{"x", 1}})});
  ASSERT_FALSE(s->begin_group());
  PublishRequest p;
  p.name = "ping";
  p.collection = "orders";
  p.id = "o1";
  p.data = {{"hello", "world"}};
  std::optional<Document> seen;
  auto ev = s->publish(p, [&](const std::optional<Document>& d) -> std::optional<Error> {
    seen = d;
    return std::nullopt;
  });
  ASSERT_TRUE(static_cast<bool>(ev)) << ev.error().message;
  EXPECT_EQ(ev->seq, 2);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->id, "o1");
  auto refused = s->publish(p, [](const std::optional<Document>&) -> std::optional<Error> {
    return make_error(codes::kForbidden, "no");
  });
  EXPECT_FALSE(static_cast<bool>(refused));
  ASSERT_FALSE(s->commit_group());
  EXPECT_EQ(s->head_seq(), 2);
  auto r = reader();
  auto rows = r->read_log(1, 2, 10);
  ASSERT_TRUE(static_cast<bool>(rows));
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_TRUE((*rows)[0].is_event);
  EXPECT_EQ((*rows)[0].name, "ping");
  EXPECT_EQ((*rows)[0].data, (Json{{"hello", "world"}}));
  EXPECT_EQ((*rows)[0].visibility, (Json{{"x", 1}}));
}

TEST_P(StoreContract, SnapshotsPageInOrderAndAScopeKeyNarrowsTheRead) {
  auto s = open();
  ASSERT_TRUE(s);
  std::vector<Mutation> ms;
  for (int i = 0; i < 60; ++i) {
    Json owner = i % 3 == 0 ? Json("c1") : (i % 3 == 1 ? Json("c2") : Json(1));
    ms.push_back(insert(i + 1, "bookings", "b" + std::to_string(100 + i), {{"customer_id", owner}, {"slot", i}}));
  }
  for (int i = 0; i < 5; ++i) ms.push_back(insert(100 + i, "orders", "o" + std::to_string(i), Json::object()));
  write(*s, "admin", "admin", ms);
  // A delete leaves a tombstone the snapshot must not show.
  Mutation del;
  del.mid = 200;
  del.op = MutationOp::Delete;
  del.collection = "bookings";
  del.id = "b100";
  write(*s, "admin", "admin", {del});

  auto r = reader();
  ASSERT_TRUE(r);
  auto all = [](const Document&) { return true; };
  std::vector<std::pair<std::string, std::string>> seen;
  std::optional<std::pair<std::string, std::string>> after;
  for (int pages = 0; pages < 100; ++pages) {
    auto p = r->snapshot({"bookings", "orders"}, after, 7, all);
    ASSERT_TRUE(static_cast<bool>(p)) << p.error().message;
    EXPECT_LE(p->docs.size(), 7u);
    for (auto& d : p->docs) seen.emplace_back(d.collection, d.id);
    if (!p->next) break;
    after = p->next;
  }
  ASSERT_EQ(seen.size(), 64u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set(seen.begin(), seen.end()).size(), 64u);

  Claims c1;
  c1.sub = "c1";
  c1.role = "customer";
  c1.raw = Json{{"sub", "c1"}, {"role", "customer"}};
  Access a = config_.read_access("bookings", c1);
  auto visible = [&](const Document& d) { return a.matches(d.id, d.fields); };
  std::map<std::string, ScopeKey> keys{{"bookings", ScopeKey{{"customer_id"}, "c1"}}};
  std::atomic<std::int64_t> rows{0};
  auto page = r->snapshot({"bookings"}, std::nullopt, 1000, visible, keys, &rows);
  ASSERT_TRUE(static_cast<bool>(page)) << page.error().message;
  EXPECT_EQ(page->docs.size(), 19u);  // 20 owned by c1, one deleted
  EXPECT_EQ(rows.load(), 19);         // only c1's live rows were read
  EXPECT_FALSE(page->next.has_value());

  // The byte bound ends a page early, with a `next` to continue from.
  auto small = r->snapshot({"bookings"}, std::nullopt, 1000, all, {}, nullptr, 1);
  ASSERT_TRUE(static_cast<bool>(small));
  EXPECT_EQ(small->docs.size(), 1u);
  ASSERT_TRUE(small->next.has_value());
  EXPECT_EQ(small->next->second, "b101");
  EXPECT_EQ(r->document_count(), 64);
}

TEST_P(StoreContract, ASnapshotReportsTheHeadOfTheStateItWasReadFrom) {
  auto s = open();
  ASSERT_TRUE(s);
  write(*s, "c1", "s1", {insert(1, "orders", "o1", Json::object()), insert(2, "orders", "o2", Json::object())});
  auto r = reader();
  ASSERT_TRUE(r);
  auto all = [](const Document&) { return true; };
  auto p = r->snapshot({"orders"}, std::nullopt, 100, all);
  ASSERT_TRUE(static_cast<bool>(p)) << p.error().message;
  EXPECT_EQ(p->seq, 2);
  EXPECT_EQ(p->docs.size(), 2u);
  auto h = r->committed_head();
  ASSERT_TRUE(static_cast<bool>(h));
  EXPECT_EQ(*h, 2);
  // A group still open is not part of any reader's state.
  ASSERT_FALSE(s->begin_group());
  ASSERT_TRUE(static_cast<bool>(s->apply_batch("c1", "s1", {insert(3, "orders", "o3", Json::object())}, allow)));
  auto p2 = r->snapshot({"orders"}, std::nullopt, 100, all);
  ASSERT_TRUE(static_cast<bool>(p2)) << p2.error().message;
  EXPECT_EQ(p2->seq, 2);
  EXPECT_EQ(p2->docs.size(), 2u);
  ASSERT_FALSE(s->commit_group());
  auto p3 = r->snapshot({"orders"}, std::nullopt, 100, all);
  ASSERT_TRUE(static_cast<bool>(p3));
  EXPECT_EQ(p3->seq, 3);
  EXPECT_EQ(p3->docs.size(), 3u);
  EXPECT_EQ(*r->committed_head(), 3);
}

TEST_P(StoreContract, TheHeadSurvivesReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    write(*s, "c1", "s1", {insert(1, "orders", "o1", Json::object()), insert(2, "orders", "o2", Json::object())});
    EXPECT_EQ(s->head_seq(), 2);
  }
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->head_seq(), 2);
  auto r = write(*s, "c1", "s1", {insert(3, "orders", "o3", Json::object())});
  EXPECT_EQ(r.results.seq, 3);
  auto dup = write(*s, "c1", "s1", {insert(1, "orders", "o1", Json::object())});
  EXPECT_EQ(dup.results.results[0].status, ResultStatus::Duplicate);
}

TEST_P(StoreContract, PruningKeepsTheRetentionAndRaisesTheFloor) {
  StoreOptions o;
  o.log_retention = 5;
  auto s = open(o);
  ASSERT_TRUE(s);
  for (int i = 1; i <= 12; ++i) {
    write(*s, "c1", "s1", {insert(i, "orders", "o" + std::to_string(i), Json::object())});
    s->maintenance(true);
  }
  EXPECT_EQ(s->head_seq(), 12);
  // Pruned at heads 7, 9 and 11 (retention 5, slack 1): the last cut is 11 - 5.
  EXPECT_EQ(s->pruned_through(), 6);
  auto r = reader();
  auto rows = r->read_log(0, 12, 100);
  ASSERT_TRUE(static_cast<bool>(rows));
  ASSERT_EQ(rows->size(), 6u);
  EXPECT_EQ(rows->front().seq, 7);
  // The floor is durable: a reopened store knows it.
  s.reset();
  auto again = open(o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->pruned_through(), 6);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::Values(Backend::Sqlite, Backend::Pg),
                         [](const ::testing::TestParamInfo<Backend>& i) {
                           return i.param == Backend::Sqlite ? std::string("Sqlite") : std::string("Pg");
                         });

// --- PostgreSQL only: several nodes on one database ---

class PgNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PgCluster::error.empty()) << "PostgreSQL test cluster unavailable: " << PgCluster::error;
    db_name_ = PgCluster::create_database();
    url_ = PgCluster::url(db_name_);
  }
  std::unique_ptr<Store> open(StoreOptions o = {}) {
    auto s = Store::open(url_, o, config_);
    EXPECT_TRUE(static_cast<bool>(s)) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  // A Writer over `store` whose completions are kept for run_posted() and whose groups are
  // recorded in groups_.
  std::unique_ptr<Writer> writer(std::unique_ptr<Store> store) {
    return std::make_unique<Writer>(
        std::move(store),
        [this](std::function<void()> f) {
          std::lock_guard<std::mutex> lk(mu_);
          posted_.push_back(std::move(f));
        },
        [this](const GroupStats& g) { groups_.push_back(g); }, 100);
  }
  void run_posted() {
    for (auto& f : posted_) f();
  }
  static WriteRequest request(const std::string& client, const std::string& id, WriteCheck check = nullptr) {
    WriteRequest r;
    r.client = client;
    r.subject = client;
    r.mutations = {insert(1, "orders", id, Json::object())};
    r.check = check ? check : allow;
    return r;
  }
  Config config_ = contract_config();
  std::string db_name_, url_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<GroupStats> groups_;
};

TEST_F(PgNodes, TwoWritersAlternatingGetOneContiguousSeqSpace) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  std::vector<std::int64_t> seqs;
  for (int i = 0; i < 10; ++i) {
    for (Store* s : {a.get(), b.get()}) {
      const std::string client = s == a.get() ? "ca" : "cb";
      ASSERT_FALSE(s->begin_group());
      auto r = s->apply_batch(client, client, {insert(i + 1, "orders", client + std::to_string(i), Json::object())}, allow);
      ASSERT_TRUE(static_cast<bool>(r)) << r.error().message;
      ASSERT_FALSE(s->commit_group());
      seqs.push_back(r->results.seq);
    }
  }
  ASSERT_EQ(seqs.size(), 20u);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<std::int64_t>(i + 1));
  EXPECT_EQ(a->head_seq(), 19);
  EXPECT_EQ(b->head_seq(), 20);
  auto rows = b->read_log(0, 100, 100);
  ASSERT_TRUE(static_cast<bool>(rows));
  ASSERT_EQ(rows->size(), 20u);
  for (std::size_t i = 0; i < rows->size(); ++i) EXPECT_EQ((*rows)[i].seq, static_cast<std::int64_t>(i + 1));
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT value FROM meta WHERE key='head_seq'"), "20");
}

// Two nodes writing at once, and a reader polling meanwhile: one contiguous seq space with no
// duplicate, and the reader never sees a seq before every lower one is visible.
TEST_F(PgNodes, ConcurrentWritersNeverLeaveAGapAReaderCanSee) {
  constexpr int kGroups = 40;
  auto a = open();
  auto b = open();
  auto r = Store::open_reader(url_, StoreOptions{}, config_);
  ASSERT_TRUE(a && b && static_cast<bool>(r));
  std::atomic<bool> done{false};
  std::atomic<int> gaps{0}, polls{0};
  std::thread reader([&] {
    while (!done) {
      auto rows = (*r)->read_log(0, 1 << 30, 1000);
      if (!rows) continue;
      for (std::size_t i = 0; i < rows->size(); ++i) {
        if ((*rows)[i].seq != static_cast<std::int64_t>(i + 1)) ++gaps;
      }
      ++polls;
    }
  });
  std::vector<std::int64_t> seqs_a, seqs_b;
  auto node = [&](Store* s, const std::string& client, std::vector<std::int64_t>* seqs) {
    for (int i = 0; i < kGroups; ++i) {
      if (s->begin_group()) return;
      auto res = s->apply_batch(client, client,
                                {insert(2 * i + 1, "orders", client + std::to_string(i), Json::object()),
                                 insert(2 * i + 2, "orders", client + "x" + std::to_string(i), Json::object())},
                                allow);
      if (!res || s->commit_group()) return;
      for (const auto& row : res->rows) seqs->push_back(row.seq);
    }
  };
  std::thread ta(node, a.get(), "na", &seqs_a);
  std::thread tb(node, b.get(), "nb", &seqs_b);
  ta.join();
  tb.join();
  done = true;
  reader.join();
  ASSERT_EQ(seqs_a.size(), 2u * kGroups);
  ASSERT_EQ(seqs_b.size(), 2u * kGroups);
  std::vector<std::int64_t> all(seqs_a);
  all.insert(all.end(), seqs_b.begin(), seqs_b.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<std::int64_t>(i + 1));
  EXPECT_EQ(gaps.load(), 0);
  EXPECT_GT(polls.load(), 0);
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT value FROM meta WHERE key='head_seq'"), std::to_string(4 * kGroups));
}

TEST_F(PgNodes, ASecondWritersGroupWaitsForTheFirstToCommit) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  ASSERT_FALSE(a->begin_group());
  auto ra = a->apply_batch("ca", "ca", {insert(1, "orders", "a1", Json::object())}, allow);
  ASSERT_TRUE(static_cast<bool>(ra));
  std::atomic<bool> began{false};
  std::int64_t b_seq = 0;
  std::thread t([&] {
    if (b->begin_group()) return;
    began = true;
    auto rb = b->apply_batch("cb", "cb", {insert(1, "orders", "b1", Json::object())}, allow);
    if (rb) b_seq = rb->results.seq;
    b->commit_group();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_FALSE(began.load());  // blocked on the head row
  ASSERT_FALSE(a->commit_group());
  t.join();
  EXPECT_TRUE(began.load());
  EXPECT_EQ(ra->results.seq, 1);
  EXPECT_EQ(b_seq, 2);  // B read the head A committed
}

TEST_F(PgNodes, APruneByAnotherNodeIsSeenByThisOne) {
  StoreOptions o;
  o.log_retention = 5;
  auto a = open(o);
  // Another spelling of the same database: in this process it does not share A's in-memory
  // floor, like a node in another process.
  auto other = Store::open(url_ + "?application_name=node_b", StoreOptions{}, config_);
  ASSERT_TRUE(static_cast<bool>(other)) << other.error().message;
  auto b = std::move(*other);
  auto c = Store::open(url_ + "?application_name=node_c", StoreOptions{}, config_);
  ASSERT_TRUE(static_cast<bool>(c));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->pruned_through(), 0);
  for (int i = 1; i <= 8; ++i) {
    ASSERT_FALSE(a->begin_group());
    ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(i, "orders", "a" + std::to_string(i), Json::object())}, allow)));
    ASSERT_FALSE(a->commit_group());
    a->maintenance(true);
  }
  EXPECT_EQ(a->pruned_through(), 2);
  EXPECT_EQ(b->pruned_through(), 0);  // not yet learnt
  // B's reader reading the log learns the floor, and B's pruned_through() (what a resume
  // checks after its read) shows it at once.
  auto b_reader = Store::open_reader(url_ + "?application_name=node_b", StoreOptions{}, config_);
  ASSERT_TRUE(static_cast<bool>(b_reader));
  auto rows = (*b_reader)->read_log(0, 8, 100);
  ASSERT_TRUE(static_cast<bool>(rows));
  ASSERT_FALSE(rows->empty());
  EXPECT_EQ(rows->front().seq, 3);
  EXPECT_EQ(b->pruned_through(), 2);
  // A third node, open since before the prune, learns it when it reads the head.
  EXPECT_EQ((*c)->pruned_through(), 0);
  ASSERT_FALSE((*c)->begin_group());
  (*c)->rollback_group();
  EXPECT_EQ((*c)->pruned_through(), 2);
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT value FROM meta WHERE key='pruned_through'"), "2");
}

TEST_F(PgNodes, ALostConnectionIsReportedAndTheNextGroupReconnects) {
  auto a = open();
  ASSERT_TRUE(a);
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(1, "orders", "a1", Json::object())}, allow)));
  // Kill the store's backend from outside (every other connection to this database).
  PgCluster::admin(db_name_,
                   "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND pid <> pg_backend_pid()");
  auto r = a->apply_batch("ca", "ca", {insert(2, "orders", "a2", Json::object())}, allow);
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_TRUE(a->transaction_lost());
  a->rollback_group();
  // The lost group is not durable; the next one reconnects and starts from the committed head.
  ASSERT_FALSE(a->begin_group());
  auto again = a->apply_batch("ca", "ca", {insert(1, "orders", "a1", Json::object())}, allow);
  ASSERT_TRUE(static_cast<bool>(again)) << again.error().message;
  EXPECT_EQ(again->results.results[0].status, ResultStatus::Applied);
  EXPECT_EQ(again->results.seq, 1);
  ASSERT_FALSE(a->commit_group());
  EXPECT_EQ(a->head_seq(), 1);
}

// The Writer over PgStore: a request during which the connection dies fails alone; the group is
// redone on a new connection without it, and nothing of the lost attempt is durable.
TEST_F(PgNodes, TheWriterRedoesAGroupWhoseConnectionWasLost) {
  auto store = open();
  ASSERT_TRUE(store);
  std::vector<WriteOutcome> out(3);
  const std::string db = db_name_;
  {
    auto w = writer(std::move(store));
    bool killed = false;
    auto kill_connection = [&](const Mutation&, const Document*, const Json*) -> std::optional<Error> {
      if (!killed) {
        killed = true;
        PgCluster::admin(db, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()");
      }
      return std::nullopt;
    };
    ASSERT_TRUE(w->submit(request("a", "a1"), [&](WriteOutcome o) { out[0] = std::move(o); }));
    ASSERT_TRUE(w->submit(request("b", "b1", kill_connection), [&](WriteOutcome o) { out[1] = std::move(o); }));
    ASSERT_TRUE(w->submit(request("c", "c1"), [&](WriteOutcome o) { out[2] = std::move(o); }));
    w->start();
    w->stop();
  }
  run_posted();
  ASSERT_EQ(groups_.size(), 1u);
  EXPECT_TRUE(groups_[0].committed);
  ASSERT_FALSE(out[0].error);
  EXPECT_EQ(out[0].batch.results.results.at(0).seq, 1);
  ASSERT_TRUE(out[1].error);
  EXPECT_EQ(out[1].error->code, codes::kInternal);
  ASSERT_FALSE(out[2].error);
  EXPECT_EQ(out[2].batch.results.results.at(0).seq, 2);
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT string_agg(id, ',' ORDER BY seq) FROM log"), "a1,c1");
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT count(*) FROM clients WHERE client_id = 'b'"), "0");
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT value FROM meta WHERE key='head_seq'"), "2");
}

// While the Writer waits for the head row another node holds, what arrives joins the group it
// is about to run, so a busy cluster commits fewer, larger groups instead of queueing each
// arrival behind the lock once more.
TEST_F(PgNodes, RequestsArrivingWhileTheWriterWaitsForTheLockJoinItsGroup) {
  auto other = open();
  auto store = open();
  ASSERT_TRUE(other && store);
  ASSERT_FALSE(other->begin_group());
  ASSERT_TRUE(static_cast<bool>(other->apply_batch("o", "o", {insert(1, "orders", "o1", Json::object())}, allow)));
  std::vector<WriteOutcome> out(3);
  {
    auto w = writer(std::move(store));
    w->start();
    ASSERT_TRUE(w->submit(request("a", "a1"), [&](WriteOutcome o) { out[0] = std::move(o); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the writer now waits for the lock
    ASSERT_TRUE(w->submit(request("b", "b1"), [&](WriteOutcome o) { out[1] = std::move(o); }));
    ASSERT_TRUE(w->submit(request("c", "c1"), [&](WriteOutcome o) { out[2] = std::move(o); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_FALSE(other->commit_group());
    w->stop();
  }
  run_posted();
  ASSERT_EQ(groups_.size(), 1u);
  EXPECT_EQ(groups_[0].requests, 3u);
  EXPECT_TRUE(groups_[0].committed);
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_FALSE(out[i].error) << i;
    EXPECT_EQ(out[i].batch.results.results.at(0).seq, static_cast<std::int64_t>(i + 2)) << "arrival order";
  }
  EXPECT_EQ(PgCluster::admin(db_name_, "SELECT string_agg(id, ',' ORDER BY seq) FROM log"), "o1,a1,b1,c1");
}

TEST_F(PgNodes, TheDatabaseItselfRefusesADuplicateUniqueKey) {
  auto a = open();
  ASSERT_TRUE(a);
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(1, "bookings", "b1", {{"hall", "A"}, {"slot", 1}})}, allow)));
  ASSERT_FALSE(a->commit_group());
  PGconn* c = PQconnectdb(PgCluster::url(db_name_).c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK);
  PGresult* r = PQexec(c, "INSERT INTO unique_keys(collection, constraint_name, key, id) "
                          "SELECT collection, constraint_name, key, 'other' FROM unique_keys");
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");  // unique_violation
  PQclear(r);
  PQfinish(c);
}

TEST_F(PgNodes, TheScopeIndexServesTheSnapshotQuery) {
  auto a = open();
  ASSERT_TRUE(a);
  // The first plan line names the index when the expression matches the one created at open.
  PGconn* c = PQconnectdb(PgCluster::url(db_name_).c_str());
  PQclear(PQexec(c, "SET enable_seqscan = off"));
  // (The snapshot's condition, spelled by the same function the store uses.)
  const std::string sql = "EXPLAIN " + pg_util::scope_snapshot_sql({"customer_id"});
  const char* values[] = {"bookings", "c1", "", "10"};
  PGresult* r = PQexecParams(c, sql.c_str(), 4, nullptr, values, nullptr, nullptr, 0);
  std::string text;
  for (int i = 0; i < PQntuples(r); ++i) text += std::string(PQgetvalue(r, i, 0)) + "\n";
  PQclear(r);
  PQfinish(c);
  EXPECT_NE(text.find("documents_scope_key:customer_id"), std::string::npos) << text;
}

}  // namespace

// The LogTailer's signal: a commit on another node wakes a waiting reader at once; without one
// the wait runs to its timeout.
TEST_F(PgNodes, ACommitOnAnotherNodeWakesTheLogWaiter) {
  auto a = open();
  auto r = Store::open_reader(url_, StoreOptions{}, config_);
  ASSERT_TRUE(a && r);
  Store& reader = **r;
  EXPECT_TRUE(reader.wait_for_log(10));  // first call: starts listening, asks for a look
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(reader.wait_for_log(150));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(140));
  std::thread w([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_FALSE(a->begin_group());
    ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(1, "orders", "o1", Json::object())}, allow)));
    ASSERT_FALSE(a->commit_group());
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(reader.wait_for_log(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  w.join();
  // A group that rolls back notifies nobody.
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(2, "orders", "o2", Json::object())}, allow)));
  a->rollback_group();
  EXPECT_FALSE(reader.wait_for_log(150));
}

// Two nodes write alternately; a third node's tailer, feeding a LogSequencer as the App does,
// broadcasts every seq once, in order, and a local group of its own that lands between the
// others' waits for the log instead of jumping ahead.
TEST_F(PgNodes, TheTailerBringsEveryNodesRowsInSeqOrder) {
  auto a = open();
  auto b = open();
  auto c = open();
  auto r = Store::open_reader(url_, StoreOptions{}, config_);
  ASSERT_TRUE(a && b && c && r);
  std::mutex mu;
  std::vector<std::function<void()>> io;  // the "io thread": run by this test
  std::atomic<std::int64_t> head{0};
  std::vector<std::int64_t> out;
  LogSequencer seq(0, [&](LogRow row) {
    out.push_back(row.seq);
    head = row.seq;
  });
  LogTailer tailer(
      std::move(*r), [&] { return head.load(); },
      [&](std::function<void()> f) {
        std::lock_guard<std::mutex> l(mu);
        io.push_back(std::move(f));
      },
      [&](std::vector<LogRow> rows) { EXPECT_TRUE(seq.offer_log(std::move(rows))); });
  tailer.start();
  auto run_io = [&] {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> l(mu);
      batch.swap(io);
    }
    for (auto& f : batch) f();
  };
  std::int64_t mid = 0;
  for (int i = 0; i < 15; ++i) {
    for (Store* s : {a.get(), b.get()}) {
      ASSERT_FALSE(s->begin_group());
      ASSERT_TRUE(static_cast<bool>(s->apply_batch(s == a.get() ? "ca" : "cb", "x", {insert(++mid, "orders", "o" + std::to_string(mid), Json::object())}, allow)));
      ASSERT_FALSE(s->commit_group());
    }
    if (i == 7) {
      // Node C's own group, handed to its sequencer at once, before the tailer has read the
      // others' rows.
      ASSERT_FALSE(c->begin_group());
      auto res = c->apply_batch("cc", "x", {insert(++mid, "orders", "o" + std::to_string(mid), Json::object())}, allow);
      ASSERT_TRUE(static_cast<bool>(res));
      ASSERT_FALSE(c->commit_group());
      seq.offer_local(res->rows);
    }
    run_io();
  }
  const std::int64_t total = 31;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (seq.head() < total && std::chrono::steady_clock::now() < deadline) {
    run_io();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  tailer.stop();
  run_io();
  ASSERT_EQ(out.size(), static_cast<std::size_t>(total));
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], static_cast<std::int64_t>(i + 1));
  EXPECT_EQ(seq.held(), 0u);
}

// A node that hangs inside its group (here: a group opened and never finished) holds the
// cluster-wide writer lock; the others wait at most group_lock_timeout_ms for it, and the
// database ends the hung session after as long, so writing resumes without that node.
TEST_F(PgNodes, AHungNodeHoldsTheWriterLockOnlyUntilTheTimeout) {
  StoreOptions o;
  o.group_lock_timeout_ms = 300;
  auto hung = open(o);
  auto b = open(o);
  ASSERT_TRUE(hung && b);
  ASSERT_FALSE(hung->begin_group());
  ASSERT_TRUE(static_cast<bool>(hung->apply_batch("ch", "x", {insert(1, "orders", "h1", Json::object())}, allow)));
  auto t0 = std::chrono::steady_clock::now();
  // Either the database ends the hung session first and B gets the lock, or B's wait times out
  // first and it tries again; never blocked for long.
  bool ok = !b->begin_group();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  if (!ok) b->rollback_group();
  for (int i = 0; i < 20 && !ok; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!b->begin_group()) ok = true;
    else b->rollback_group();
  }
  ASSERT_TRUE(ok);
  auto r = b->apply_batch("cb", "x", {insert(1, "orders", "b1", Json::object())}, allow);
  ASSERT_TRUE(static_cast<bool>(r));
  ASSERT_FALSE(b->commit_group());
  EXPECT_EQ(r->results.seq, 1);  // the hung group's seq was never committed
  EXPECT_TRUE(hung->commit_group().has_value());  // its session is gone: nothing acknowledged
}

// A reader whose connection the database closed between two reads (a restart, an
// administrator) answers the next read on a new connection instead of failing it.
TEST_F(PgNodes, AReaderWhoseConnectionWasClosedReadsOnANewOne) {
  auto a = open();
  auto r = Store::open_reader(url_, StoreOptions{}, config_);
  ASSERT_TRUE(a && r);
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(1, "orders", "a1", Json::object())}, allow)));
  ASSERT_FALSE(a->commit_group());
  ASSERT_TRUE(static_cast<bool>((*r)->read_log(0, 10, 10)));
  PgCluster::admin(db_name_,
                   "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND pid <> pg_backend_pid()");
  auto rows = (*r)->read_log(0, 10, 10);
  ASSERT_TRUE(static_cast<bool>(rows)) << rows.error().message;
  EXPECT_EQ(rows->size(), 1u);
  auto all = [](const Document&) { return true; };
  PgCluster::admin(db_name_,
                   "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND pid <> pg_backend_pid()");
  auto page = (*r)->snapshot({"orders"}, std::nullopt, 10, all);
  ASSERT_TRUE(static_cast<bool>(page)) << page.error().message;
  EXPECT_EQ(page->docs.size(), 1u);
  EXPECT_EQ(page->seq, 1);
  // The writer too, between groups.
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(2, "orders", "a2", Json::object())}, allow)));
  ASSERT_FALSE(a->commit_group());
}

// Values past what a btree entry holds (~2,700 bytes) in a unique key and in a field a read
// rule scopes by: stored, enforced and read back like short ones.
TEST_F(PgNodes, LongUniqueKeysAndScopedValuesAreStoredAndEnforced) {
  auto a = open();
  ASSERT_TRUE(a);
  const std::string big(8000, 'x');
  ASSERT_FALSE(a->begin_group());
  auto r1 = a->apply_batch("ca", "ca", {insert(1, "bookings", "b1", {{"hall", big}, {"slot", 1}, {"customer_id", big}})}, allow);
  ASSERT_TRUE(static_cast<bool>(r1)) << r1.error().message;
  EXPECT_EQ(r1->results.results[0].status, ResultStatus::Applied);
  auto r2 = a->apply_batch("ca", "ca", {insert(2, "bookings", "b2", {{"hall", big}, {"slot", 1}})}, allow);
  ASSERT_TRUE(static_cast<bool>(r2)) << r2.error().message;
  EXPECT_EQ(r2->results.results[0].status, ResultStatus::Rejected);
  EXPECT_EQ(r2->results.results[0].code, "constraint");
  ASSERT_FALSE(a->commit_group());
  auto r = Store::open_reader(url_, StoreOptions{}, config_);
  ASSERT_TRUE(static_cast<bool>(r));
  auto all = [](const Document&) { return true; };
  std::map<std::string, ScopeKey> keys{{"bookings", ScopeKey{{"customer_id"}, big}}};
  auto page = (*r)->snapshot({"bookings"}, std::nullopt, 10, all, keys);
  ASSERT_TRUE(static_cast<bool>(page)) << page.error().message;
  ASSERT_EQ(page->docs.size(), 1u);
  EXPECT_EQ(page->docs[0].fields["customer_id"], big);
  // A value sharing the indexed prefix but not equal is narrowed in by the index; the caller's
  // rule (here: exact equality) is what leaves it out.
  std::map<std::string, ScopeKey> other{{"bookings", ScopeKey{{"customer_id"}, big + "y"}}};
  auto near = (*r)->snapshot({"bookings"}, std::nullopt, 10,
                             [&](const Document& d) { return d.fields.value("customer_id", "") == big + "y"; }, other);
  ASSERT_TRUE(static_cast<bool>(near));
  EXPECT_TRUE(near->docs.empty());
}

// A node joining a running cluster runs no DDL (the schema and its scope indexes are there):
// DDL would wait for the open groups of the other nodes, and could deadlock with them.
TEST_F(PgNodes, ANodeJoiningWhileAGroupIsOpenStartsWithoutWaitingForIt) {
  auto a = open();
  ASSERT_TRUE(a);
  ASSERT_FALSE(a->begin_group());
  ASSERT_TRUE(static_cast<bool>(a->apply_batch("ca", "ca", {insert(1, "bookings", "b1", {{"customer_id", "c1"}})}, allow)));
  std::atomic<bool> committed{false};
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::seconds(4));
    committed = true;
    EXPECT_FALSE(a->commit_group());
  });
  auto t0 = std::chrono::steady_clock::now();
  auto b = open();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(b != nullptr);
  EXPECT_FALSE(committed.load()) << "the new node waited for the open group";
  EXPECT_LT(took, std::chrono::seconds(2));
  finisher.join();
}
