// Group commit at the Store/Writer level, where a request's failure can be injected: a write
// check that reports an internal error after the request has already written part of its batch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "store.hpp"
#include "writer.hpp"

using namespace syncline;
using namespace syncline::server;

namespace {

class GroupCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/syncline-writer-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = "sqlite:" + dir_ + "/db/syncline.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A writer whose completions are collected and run on the test thread by drain().
  std::unique_ptr<Writer> make_writer(std::size_t max_queued = 100) {
    auto store = Store::open(db_, StoreOptions{}, config_);
    EXPECT_TRUE(static_cast<bool>(store)) << store.error().message;
    return std::make_unique<Writer>(
        std::move(*store),
        [this](std::function<void()> f) {
          std::lock_guard<std::mutex> lk(mu_);
          posted_.push_back(std::move(f));
        },
        [this](const GroupStats& g) { groups_.push_back(g); }, max_queued);
  }
  void drain() {
    std::vector<std::function<void()>> fs;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fs.swap(posted_);
    }
    for (auto& f : fs) f();
  }
  static WriteRequest insert(const std::string& client, std::vector<std::pair<std::int64_t, std::string>> mids,
                             WriteCheck check = nullptr) {
    WriteRequest r;
    r.client = client;
    r.subject = "sub-" + client;
    for (auto& [mid, id] : mids) {
      Mutation m;
      m.mid = mid;
      m.op = MutationOp::Insert;
      m.collection = "orders";
      m.id = id;
      m.fields = Json{{"mid", mid}};
      r.mutations.push_back(std::move(m));
    }
    r.check = check ? check : [](const Mutation&, const Document*, const Json*) { return std::optional<Error>(); };
    return r;
  }

  std::string dir_, db_;
  Config config_ = Config::open_default();
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<GroupStats> groups_;
};

TEST_F(GroupCommit, FailedRequestRollsBackAloneAndGivesItsSeqsBack) {
  std::vector<WriteOutcome> out(3);
  {
    auto w = make_writer();
    // Submitted before start(): the first group takes all three.
    ASSERT_TRUE(w->submit(insert("a", {{1, "a1"}}), [&](WriteOutcome o) { out[0] = std::move(o); }));
    // b writes b1, then fails on its second mutation: its savepoint must take b1 back.
    auto fail_second = [](const Mutation& m, const Document*, const Json*) -> std::optional<Error> {
      if (m.mid == 2) return make_error(codes::kInternal, "injected failure");
      return std::nullopt;
    };
    ASSERT_TRUE(w->submit(insert("b", {{1, "b1"}, {2, "b2"}}, fail_second), [&](WriteOutcome o) { out[1] = std::move(o); }));
    ASSERT_TRUE(w->submit(insert("c", {{1, "c1"}}), [&](WriteOutcome o) { out[2] = std::move(o); }));
    w->start();
    w->stop();
    drain();
  }
  ASSERT_EQ(groups_.size(), 1u);
  EXPECT_EQ(groups_[0].requests, 3u);
  EXPECT_TRUE(groups_[0].committed);
  ASSERT_FALSE(out[0].error);
  EXPECT_EQ(out[0].batch.results.results.at(0).status, ResultStatus::Applied);
  EXPECT_EQ(out[0].batch.results.results.at(0).seq, 1);
  ASSERT_TRUE(out[1].error);
  EXPECT_EQ(out[1].error->code, codes::kInternal);
  EXPECT_TRUE(out[1].batch.rows.empty());
  ASSERT_FALSE(out[2].error);
  EXPECT_EQ(out[2].batch.results.results.at(0).seq, 2) << "the failed request's seq is handed out again";

  // Durable state after reopening: a1 and c1, no trace of b (its client is not even bound).
  auto reader = Store::open_reader(db_, StoreOptions{}, config_);
  ASSERT_TRUE(static_cast<bool>(reader));
  EXPECT_TRUE((*reader)->get_document("orders", "a1"));
  EXPECT_TRUE((*reader)->get_document("orders", "c1"));
  EXPECT_FALSE((*reader)->get_document("orders", "b1"));
  auto log = (*reader)->read_log(0, 100, 100);
  ASSERT_TRUE(static_cast<bool>(log));
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].id, "a1");
  EXPECT_EQ((*log)[1].id, "c1");
  reader->reset();

  // b's resend is applied (not answered duplicate): nothing of it was committed.
  WriteOutcome again;
  {
    auto w = make_writer();
    EXPECT_EQ(w->store().head_seq(), 2);
    ASSERT_TRUE(w->submit(insert("b", {{1, "b1"}, {2, "b2"}}), [&](WriteOutcome o) { again = std::move(o); }));
    w->start();
    w->stop();
    drain();
  }
  ASSERT_FALSE(again.error);
  ASSERT_EQ(again.batch.results.results.size(), 2u);
  EXPECT_EQ(again.batch.results.results[0].status, ResultStatus::Applied);
  EXPECT_EQ(again.batch.results.results[0].seq, 3);
  EXPECT_EQ(again.batch.results.results[1].seq, 4);
}

TEST_F(GroupCommit, SameClientTwiceInOneGroupIsAppliedInArrivalOrder) {
  std::vector<WriteOutcome> out(3);
  auto w = make_writer();
  ASSERT_TRUE(w->submit(insert("a", {{1, "x1"}, {2, "x2"}}), [&](WriteOutcome o) { out[0] = std::move(o); }));
  // A resend overlapping the first batch, plus one new mid.
  ASSERT_TRUE(w->submit(insert("a", {{1, "x1"}, {2, "x2"}, {3, "x3"}}), [&](WriteOutcome o) { out[1] = std::move(o); }));
  // A different subject presenting client a: refused as a whole, the others unaffected.
  WriteRequest thief = insert("a", {{4, "x4"}});
  thief.subject = "someone-else";
  ASSERT_TRUE(w->submit(std::move(thief), [&](WriteOutcome o) { out[2] = std::move(o); }));
  w->start();
  w->stop();
  drain();
  ASSERT_EQ(groups_.size(), 1u);
  ASSERT_FALSE(out[0].error);
  ASSERT_FALSE(out[1].error);
  const auto& first = out[0].batch.results.results;
  const auto& second = out[1].batch.results.results;
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0].status, ResultStatus::Duplicate);
  EXPECT_EQ(second[0].seq, first[0].seq);
  EXPECT_EQ(second[1].status, ResultStatus::Duplicate);
  EXPECT_EQ(second[1].seq, first[1].seq);
  EXPECT_EQ(second[2].status, ResultStatus::Applied);
  EXPECT_EQ(second[2].seq, 3);
  EXPECT_EQ(out[1].batch.results.seq, 3);
  ASSERT_TRUE(out[2].error);
  EXPECT_EQ(out[2].error->code, codes::kForbidden);
}

TEST_F(GroupCommit, EventsShareTheSeqSpaceInQueueOrder) {
  std::vector<std::int64_t> seqs;
  auto w = make_writer();
  ASSERT_TRUE(w->submit(insert("a", {{1, "e1"}}), [&](WriteOutcome o) { seqs.push_back(o.batch.results.seq); }));
  WriteRequest ev;
  ev.kind = WriteRequest::Kind::Publish;
  ev.event.name = "x:y";
  ev.event.data = Json::object();
  ASSERT_TRUE(w->submit(std::move(ev), [&](WriteOutcome o) { seqs.push_back(o.event->seq); }));
  // A publish refused by its check (scoped caller, document absent) takes no seq.
  WriteRequest refused;
  refused.kind = WriteRequest::Kind::Publish;
  refused.event.name = "x:y";
  refused.event.collection = "orders";
  refused.event.id = "missing";
  refused.event_check = [](const std::optional<Document>& doc) -> std::optional<Error> {
    if (!doc) return make_error(codes::kForbidden, "no document", "id");
    return std::nullopt;
  };
  ASSERT_TRUE(w->submit(std::move(refused), [&](WriteOutcome o) { seqs.push_back(o.error ? -1 : o.event->seq); }));
  ASSERT_TRUE(w->submit(insert("a", {{2, "e2"}}), [&](WriteOutcome o) { seqs.push_back(o.batch.results.seq); }));
  w->start();
  w->stop();
  drain();
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{1, 2, -1, 3}));
}

TEST_F(GroupCommit, FullQueueRefusesAndPendingCountsUntilCompletionsRan) {
  auto w = make_writer(2);
  int done = 0;
  EXPECT_TRUE(w->submit(insert("a", {{1, "q1"}}), [&](WriteOutcome) { ++done; }));
  EXPECT_TRUE(w->submit(insert("a", {{2, "q2"}}), [&](WriteOutcome) { ++done; }));
  EXPECT_FALSE(w->submit(insert("a", {{3, "q3"}}), [&](WriteOutcome) { ++done; }));
  EXPECT_EQ(w->pending(), 2u);
  w->start();
  w->stop();
  EXPECT_EQ(w->pending(), 2u) << "committed, but not answered until the io thread ran the completions";
  drain();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(w->pending(), 0u);
}

TEST_F(GroupCommit, StoppedWriterRefusesNewRequests) {
  auto w = make_writer();
  w->start();
  w->stop();
  EXPECT_FALSE(w->submit(insert("a", {{1, "z"}}), [](WriteOutcome) {}));
  EXPECT_EQ(w->pending(), 0u);
}

}  // namespace
