// Layer: tests/core. The connection state machine: full-jitter backoff, heartbeats, online and
// offline, fatal errors. Time is a plain integer; nothing sleeps.
#include "core/connection.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace syncline {
namespace {

using A = ConnectionAction;
using S = ConnectionState;

BackoffPolicy policy() {
  BackoffPolicy p;
  p.base_ms = 500;
  p.cap_ms = 30'000;
  p.heartbeat_timeout_ms = 45'000;
  p.connect_timeout_ms = 15'000;
  return p;
}

std::int64_t ceiling_for(const BackoffPolicy& p, int attempt) {
  std::int64_t c = p.base_ms;
  for (int i = 0; i < attempt && c < p.cap_ms; ++i) c *= 2;
  return std::min(c, p.cap_ms);
}

TEST(Connection, StartOpensWhenOnline) {
  ConnectionMachine m(policy(), 1);
  EXPECT_EQ(m.state(), S::Disconnected);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.start(100), A::Open);
  EXPECT_EQ(m.state(), S::Connecting);
  EXPECT_EQ(m.next_deadline(), 100 + 15'000);
  EXPECT_EQ(m.start(101), A::None);  // already connecting
  EXPECT_EQ(m.on_open(200), A::None);
  EXPECT_EQ(m.state(), S::Connected);
  EXPECT_EQ(m.connected_since_ms(), 200);
  EXPECT_EQ(m.next_deadline(), 200 + 45'000);
  EXPECT_EQ(m.on_message(300), A::None);
  EXPECT_EQ(m.next_deadline(), 300 + 45'000);
  EXPECT_STREQ(to_string(m.state()), "connected");
}

TEST(Connection, FullJitterBoundsAcrossSeeds) {
  const BackoffPolicy p = policy();
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    ConnectionMachine m(p, seed);
    std::int64_t now = 0;
    ASSERT_EQ(m.start(now), A::Open);
    for (int attempt = 0; attempt < 12; ++attempt) {
      ASSERT_EQ(m.attempt(), attempt);
      ASSERT_EQ(m.on_failure(now, "refused"), A::Close);
      ASSERT_EQ(m.state(), S::BackingOff);
      const std::int64_t delay = m.backoff_delay_ms();
      ASSERT_GE(delay, 0) << "seed " << seed << " attempt " << attempt;
      ASSERT_LE(delay, ceiling_for(p, attempt)) << "seed " << seed << " attempt " << attempt;
      ASSERT_EQ(m.next_deadline(), now + delay);
      if (delay > 0) {
        ASSERT_EQ(m.tick(now + delay - 1), A::None);
      }
      now += delay;
      ASSERT_EQ(m.tick(now), A::Open) << "seed " << seed;
      ASSERT_EQ(m.state(), S::Connecting);
    }
  }
}

TEST(Connection, JitterSpreadsOverTheWholeRange) {
  // Full jitter: across seeds the first delay covers [0, base] rather than clustering.
  const BackoffPolicy p = policy();
  std::int64_t lo = p.base_ms, hi = 0;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    ConnectionMachine m(p, seed);
    m.start(0);
    m.on_failure(0, "x");
    lo = std::min(lo, m.backoff_delay_ms());
    hi = std::max(hi, m.backoff_delay_ms());
  }
  EXPECT_LT(lo, p.base_ms / 10);
  EXPECT_GT(hi, p.base_ms * 9 / 10);
}

TEST(Connection, CapRespectedAndNoOverflow) {
  BackoffPolicy p = policy();
  p.cap_ms = 10'000;
  ConnectionMachine m(p, 7);
  m.start(0);
  std::int64_t now = 0;
  std::int64_t max_seen = 0;
  for (int i = 0; i < 200; ++i) {  // 2^200 would overflow anything
    ASSERT_EQ(m.on_failure(now, "down"), A::Close);
    ASSERT_LE(m.backoff_delay_ms(), p.cap_ms);
    ASSERT_GE(m.backoff_delay_ms(), 0);
    max_seen = std::max(max_seen, m.backoff_delay_ms());
    now += m.backoff_delay_ms();
    ASSERT_EQ(m.tick(now), A::Open);
  }
  EXPECT_EQ(m.attempt(), 200);
  EXPECT_GT(max_seen, p.cap_ms / 2);  // late attempts draw from the capped range

  BackoffPolicy huge = policy();
  huge.base_ms = std::int64_t{1} << 62;
  huge.cap_ms = std::numeric_limits<std::int64_t>::max();
  ConnectionMachine h(huge, 3);
  h.start(0);
  for (int i = 0; i < 70; ++i) {
    h.on_failure(0, "down");
    ASSERT_GE(h.backoff_delay_ms(), 0);
    h.retry_now(0);
  }
}

TEST(Connection, AttemptResetsAfterOpen) {
  ConnectionMachine m(policy(), 11);
  m.start(0);
  for (int i = 0; i < 5; ++i) {
    m.on_failure(0, "down");
    m.retry_now(0);
  }
  EXPECT_EQ(m.attempt(), 5);
  EXPECT_EQ(m.last_error(), "down");
  EXPECT_EQ(m.on_open(10), A::None);
  EXPECT_EQ(m.attempt(), 0);
  EXPECT_EQ(m.last_error(), "");
  m.on_failure(20, "dropped");
  EXPECT_LE(m.backoff_delay_ms(), policy().base_ms);  // back to the first step
  EXPECT_EQ(m.attempt(), 1);
}

TEST(Connection, HeartbeatTimeout) {
  ConnectionMachine m(policy(), 5);
  m.start(0);
  m.on_open(0);
  EXPECT_EQ(m.tick(44'999), A::None);
  m.on_message(40'000);  // a heartbeat comment
  EXPECT_EQ(m.tick(84'999), A::None);
  EXPECT_EQ(m.state(), S::Connected);
  EXPECT_EQ(m.tick(85'000), A::Close);
  EXPECT_EQ(m.state(), S::BackingOff);
  EXPECT_EQ(m.last_error(), "heartbeat_timeout");
  EXPECT_EQ(m.attempt(), 1);
  const std::int64_t due = *m.next_deadline();
  EXPECT_EQ(m.tick(due), A::Open);  // the backoff reopens
}

TEST(Connection, ConnectTimeout) {
  ConnectionMachine m(policy(), 5);
  m.start(1000);
  EXPECT_EQ(m.tick(1000 + 14'999), A::None);
  EXPECT_EQ(m.tick(1000 + 15'000), A::Close);
  EXPECT_EQ(m.state(), S::BackingOff);
  EXPECT_EQ(m.last_error(), "connect_timeout");
}

TEST(Connection, OnlineShortCircuitsBackoff) {
  BackoffPolicy p = policy();
  p.base_ms = 1'000'000;
  p.cap_ms = 1'000'000;
  ConnectionMachine m(p, 99);
  m.start(0);
  m.on_failure(0, "down");
  ASSERT_EQ(m.state(), S::BackingOff);
  EXPECT_EQ(m.set_online(false, 5), A::None);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.set_online(true, 10), A::Open);
  EXPECT_EQ(m.state(), S::Connecting);
}

TEST(Connection, RetryNowShortCircuitsBackoff) {
  ConnectionMachine m(policy(), 4);
  m.start(0);
  m.on_failure(0, "down");
  EXPECT_EQ(m.retry_now(1), A::Open);
  EXPECT_EQ(m.retry_now(2), A::None);  // already connecting
  m.on_open(3);
  EXPECT_EQ(m.retry_now(4), A::None);  // already connected
  m.stop(5);
  EXPECT_EQ(m.retry_now(6), A::None);  // stopped
}

TEST(Connection, OfflineStopsAttempts) {
  ConnectionMachine m(policy(), 8);
  m.start(0);
  m.on_open(10);
  EXPECT_EQ(m.set_online(false, 20), A::Close);
  EXPECT_EQ(m.state(), S::BackingOff);
  EXPECT_FALSE(m.online());
  EXPECT_EQ(m.attempt(), 0);  // going offline is not a failed attempt
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  for (std::int64_t t = 20; t < 10'000'000; t += 50'000) ASSERT_EQ(m.tick(t), A::None);
  EXPECT_EQ(m.retry_now(10'000'000), A::None);  // nothing to do without a network
  EXPECT_EQ(m.set_online(true, 10'000'001), A::Open);
  EXPECT_EQ(m.on_open(10'000'002), A::None);
  EXPECT_EQ(m.state(), S::Connected);
}

TEST(Connection, OfflineWhileConnectingAndDuplicateOnline) {
  ConnectionMachine m(policy(), 8);
  m.start(0);
  EXPECT_EQ(m.set_online(false, 1), A::Close);
  EXPECT_EQ(m.set_online(false, 2), A::None);
  // A late failure report for the transport that was closed is ignored.
  EXPECT_EQ(m.on_failure(3, "closed"), A::None);
  EXPECT_EQ(m.attempt(), 0);
  EXPECT_EQ(m.set_online(true, 4), A::Open);
  EXPECT_EQ(m.set_online(true, 5), A::None);  // not a transition
}

TEST(Connection, StartWhileOfflineWaitsForNetwork) {
  ConnectionMachine m(policy(), 2);
  EXPECT_EQ(m.set_online(false, 0), A::None);
  EXPECT_EQ(m.state(), S::Disconnected);  // not started: nothing to wait for
  EXPECT_EQ(m.start(1), A::None);
  EXPECT_EQ(m.state(), S::BackingOff);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.tick(1'000'000), A::None);
  EXPECT_EQ(m.set_online(true, 1'000'001), A::Open);
}

TEST(Connection, OnlineWhenNotStartedDoesNothing) {
  ConnectionMachine m(policy(), 2);
  m.set_online(false, 0);
  EXPECT_EQ(m.set_online(true, 1), A::None);
  EXPECT_EQ(m.state(), S::Disconnected);
}

TEST(Connection, FatalErrorStopsRetrying) {
  ConnectionMachine m(policy(), 3);
  m.start(0);
  EXPECT_EQ(m.on_failure(5, "unauthorized", /*fatal=*/true), A::Close);
  EXPECT_EQ(m.state(), S::Error);
  EXPECT_EQ(m.last_error(), "unauthorized");
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  for (std::int64_t t = 0; t < 1'000'000; t += 10'000) ASSERT_EQ(m.tick(t), A::None);
  m.set_online(false, 1'000'000);
  EXPECT_EQ(m.set_online(true, 1'000'001), A::None);
  EXPECT_EQ(m.state(), S::Error);
  EXPECT_EQ(m.on_failure(1'000'002, "again"), A::None);
  EXPECT_EQ(m.last_error(), "unauthorized");
  // start() (e.g. with a new token) tries again.
  EXPECT_EQ(m.start(1'000'003), A::Open);
  EXPECT_EQ(m.state(), S::Connecting);
  EXPECT_EQ(m.last_error(), "");
}

TEST(Connection, RetryNowFromErrorReconnects) {
  ConnectionMachine m(policy(), 3);
  m.start(0);
  m.on_open(1);
  EXPECT_EQ(m.on_failure(2, "forbidden", true), A::Close);
  EXPECT_EQ(m.retry_now(3), A::Open);
  EXPECT_EQ(m.attempt(), 0);
}

TEST(Connection, StopClosesAndStaysDown) {
  ConnectionMachine m(policy(), 6);
  m.start(0);
  m.on_open(1);
  EXPECT_EQ(m.stop(2), A::Close);
  EXPECT_EQ(m.state(), S::Disconnected);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.on_failure(3, "closed"), A::None);  // the close we asked for
  EXPECT_EQ(m.state(), S::Disconnected);
  EXPECT_EQ(m.tick(1'000'000), A::None);
  EXPECT_EQ(m.stop(1'000'001), A::None);  // nothing open
  // A transport that opens after stop is unwanted.
  EXPECT_EQ(m.on_open(1'000'002), A::Close);
  EXPECT_EQ(m.state(), S::Disconnected);

  ConnectionMachine b(policy(), 6);
  b.start(0);
  b.on_failure(0, "down");
  EXPECT_EQ(b.stop(1), A::None);
  EXPECT_EQ(b.next_deadline(), std::nullopt);
  EXPECT_EQ(b.tick(10'000'000), A::None);
}

TEST(Connection, MessageWhileConnectingCountsAsOpen) {
  ConnectionMachine m(policy(), 6);
  m.start(0);
  m.on_failure(0, "x");
  m.retry_now(1);
  EXPECT_EQ(m.on_message(2), A::None);
  EXPECT_EQ(m.state(), S::Connected);
  EXPECT_EQ(m.attempt(), 0);
}

std::vector<std::int64_t> delays_for(std::uint64_t seed) {
  ConnectionMachine m(policy(), seed);
  std::vector<std::int64_t> out;
  std::int64_t now = 0;
  m.start(now);
  for (int i = 0; i < 20; ++i) {
    m.on_failure(now, "x");
    out.push_back(m.backoff_delay_ms());
    now += m.backoff_delay_ms();
    m.tick(now);
  }
  return out;
}

TEST(Connection, DeterministicForEqualSeeds) {
  EXPECT_EQ(delays_for(12345), delays_for(12345));
  EXPECT_NE(delays_for(12345), delays_for(54321));
}

TEST(Connection, DisabledTimeouts) {
  BackoffPolicy p = policy();
  p.heartbeat_timeout_ms = 0;
  p.connect_timeout_ms = 0;
  ConnectionMachine m(p, 1);
  m.start(0);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.tick(1'000'000'000), A::None);
  m.on_open(1);
  EXPECT_EQ(m.next_deadline(), std::nullopt);
  EXPECT_EQ(m.tick(std::numeric_limits<std::int64_t>::max()), A::None);
  EXPECT_EQ(m.state(), S::Connected);
}

TEST(Connection, StateNames) {
  EXPECT_STREQ(to_string(S::Disconnected), "disconnected");
  EXPECT_STREQ(to_string(S::Connecting), "connecting");
  EXPECT_STREQ(to_string(S::Connected), "connected");
  EXPECT_STREQ(to_string(S::BackingOff), "backing_off");
  EXPECT_STREQ(to_string(S::Error), "error");
}

}  // namespace
}  // namespace syncline
