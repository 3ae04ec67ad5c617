// The order a node broadcasts the log in, from its own writer and from the log tailer
// (server/log_sequencer.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "log_sequencer.hpp"

using namespace syncline;
using namespace syncline::server;

namespace {

LogRow row(std::int64_t seq) {
  LogRow r;
  r.seq = seq;
  r.collection = "orders";
  r.id = "o" + std::to_string(seq);
  return r;
}

std::vector<LogRow> rows(std::initializer_list<std::int64_t> seqs) {
  std::vector<LogRow> out;
  for (auto s : seqs) out.push_back(row(s));
  return out;
}

struct Broadcast {
  std::vector<std::int64_t> seqs;
  LogSequencer seq;
  explicit Broadcast(std::int64_t head) : seq(head, [this](LogRow r) { seqs.push_back(r.seq); }) {}
};

}  // namespace

TEST(LogSequencer, LocalRowsThatFollowTheHeadGoOutAtOnce) {
  Broadcast b(10);
  b.seq.offer_local(rows({11, 12}));
  b.seq.offer_local(rows({13}));
  EXPECT_EQ(b.seqs, (std::vector<std::int64_t>{11, 12, 13}));
  EXPECT_EQ(b.seq.head(), 13);
  EXPECT_EQ(b.seq.held(), 0u);
}

TEST(LogSequencer, ALocalGroupAfterAnotherNodesWaitsForTheLog) {
  Broadcast b(10);
  // Seqs 11-12 were another node's; this node's writer committed 13-14 after them.
  b.seq.offer_local(rows({13, 14}));
  EXPECT_TRUE(b.seqs.empty());
  EXPECT_EQ(b.seq.held(), 2u);
  // The tailer reads 11..13 (it sees this node's own row 13 as well).
  EXPECT_TRUE(b.seq.offer_log(rows({11, 12, 13})));
  EXPECT_EQ(b.seqs, (std::vector<std::int64_t>{11, 12, 13, 14}));
  EXPECT_EQ(b.seq.held(), 0u);
  // And later re-reads 14: nothing twice.
  EXPECT_TRUE(b.seq.offer_log(rows({14, 15})));
  EXPECT_EQ(b.seqs, (std::vector<std::int64_t>{11, 12, 13, 14, 15}));
}

TEST(LogSequencer, TheWritersAnswerArrivingAfterTheTailersRowsIsDropped) {
  Broadcast b(0);
  EXPECT_TRUE(b.seq.offer_log(rows({1, 2, 3})));
  b.seq.offer_local(rows({2, 3}));
  EXPECT_EQ(b.seqs, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(b.seq.held(), 0u);
}

TEST(LogSequencer, AJumpInTheLogIsReportedBeforeAnythingPastItGoesOut) {
  std::vector<std::string> events;
  LogSequencer seq(
      5, [&](LogRow r) { events.push_back("row " + std::to_string(r.seq)); },
      [&](std::int64_t head, std::int64_t next) {
        events.push_back("gap " + std::to_string(head) + ".." + std::to_string(next));
      });
  seq.offer_log(rows({6}));
  seq.offer_local(rows({9}));
  EXPECT_FALSE(seq.offer_log(rows({8})));  // 7 was pruned before the tailer read it
  EXPECT_EQ(events, (std::vector<std::string>{"row 6", "gap 6..8", "row 8", "row 9"}));
  EXPECT_TRUE(seq.offer_log(rows({10})));
  EXPECT_EQ(seq.head(), 10);
}

TEST(LogSequencer, WaitersRunOnceTheirSeqIsBroadcastInSeqOrder) {
  Broadcast b(0);
  std::vector<int> ran;
  b.seq.when_published(0, [&] { ran.push_back(0); });  // already out: runs now
  EXPECT_EQ(ran, (std::vector<int>{0}));
  b.seq.when_published(3, [&] { ran.push_back(3); });
  b.seq.when_published(2, [&] { ran.push_back(2); });
  b.seq.offer_local(rows({3}));  // held behind 1-2
  EXPECT_EQ(ran, (std::vector<int>{0}));
  b.seq.offer_log(rows({1}));
  EXPECT_EQ(ran, (std::vector<int>{0}));
  b.seq.offer_log(rows({2}));  // 2 and the held 3 go out
  EXPECT_EQ(ran, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(b.seqs, (std::vector<std::int64_t>{1, 2, 3}));
}
