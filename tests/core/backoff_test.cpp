// Layer: tests/core. RetryBackoff and the full-jitter delay it shares with the connection
// machine: bounds per attempt, growth up to the cap, reset, determinism for a seed, and that the
// machine's delays are exactly the shared computation's.
#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/connection.hpp"

namespace syncline {
namespace {

BackoffPolicy policy() {
  BackoffPolicy p;
  p.base_ms = 500;
  p.cap_ms = 30'000;
  return p;
}

TEST(Backoff, CeilingDoublesUpToTheCap) {
  const BackoffPolicy p = policy();
  EXPECT_EQ(backoff_ceiling(p, 0), 500);
  EXPECT_EQ(backoff_ceiling(p, 1), 1000);
  EXPECT_EQ(backoff_ceiling(p, 5), 16'000);
  EXPECT_EQ(backoff_ceiling(p, 6), 30'000);
  EXPECT_EQ(backoff_ceiling(p, 1000), 30'000);
  EXPECT_EQ(backoff_ceiling(p, -3), 500);
  BackoffPolicy zero = p;
  zero.base_ms = 0;
  EXPECT_EQ(backoff_ceiling(zero, 4), 0);
  BackoffPolicy huge = p;
  huge.base_ms = std::int64_t{1} << 62;
  huge.cap_ms = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(backoff_ceiling(huge, 3), huge.cap_ms);  // no overflow
}

TEST(Backoff, RetryDelaysStayWithinTheGrowingCeilingAcrossSeeds) {
  const BackoffPolicy p = policy();
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    RetryBackoff b(p, seed);
    for (int n = 0; n < 12; ++n) {
      ASSERT_EQ(b.failures(), n);
      const std::int64_t d = b.next_delay_ms();
      ASSERT_GE(d, 0) << "seed " << seed << " failure " << n;
      ASSERT_LE(d, backoff_ceiling(p, n)) << "seed " << seed << " failure " << n;
    }
  }
}

TEST(Backoff, DelaysGrowOnAverageAndSpreadOverTheRange) {
  // Full jitter: across seeds the first delay covers [0, base]; the mean of the n-th delay is
  // about half its ceiling, so it doubles with each failure until the cap.
  const BackoffPolicy p = policy();
  constexpr int kSeeds = 500;
  std::vector<double> mean(8, 0.0);
  std::int64_t lo = p.base_ms, hi = 0;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    RetryBackoff b(p, seed);
    for (int n = 0; n < 8; ++n) {
      const std::int64_t d = b.next_delay_ms();
      mean[n] += static_cast<double>(d) / kSeeds;
      if (n == 0) {
        lo = std::min(lo, d);
        hi = std::max(hi, d);
      }
    }
  }
  EXPECT_LT(lo, p.base_ms / 10);
  EXPECT_GT(hi, p.base_ms * 9 / 10);
  for (int n = 0; n < 8; ++n) {
    const double half = static_cast<double>(backoff_ceiling(p, n)) / 2;
    EXPECT_NEAR(mean[n], half, half * 0.15) << "failure " << n;
  }
}

TEST(Backoff, ResetStartsAgainAtBase) {
  const BackoffPolicy p = policy();
  RetryBackoff b(p, 42);
  for (int n = 0; n < 9; ++n) b.next_delay_ms();
  EXPECT_EQ(b.failures(), 9);
  b.reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_LE(b.next_delay_ms(), p.base_ms);
  EXPECT_EQ(b.failures(), 1);
}

TEST(Backoff, SameSeedSameDelays) {
  RetryBackoff a(policy(), 7), b(policy(), 7), c(policy(), 8);
  std::vector<std::int64_t> da, db, dc;
  for (int n = 0; n < 10; ++n) {
    da.push_back(a.next_delay_ms());
    db.push_back(b.next_delay_ms());
    dc.push_back(c.next_delay_ms());
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(Backoff, TheConnectionMachineDrawsTheSameDelays) {
  // One computation: a machine failing n times in a row waits what a RetryBackoff with the same
  // policy and seed returns for its n-th failure.
  const BackoffPolicy p = policy();
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    ConnectionMachine m(p, seed);
    RetryBackoff b(p, seed);
    m.start(0);
    for (int n = 0; n < 10; ++n) {
      ASSERT_EQ(m.on_failure(0, "down"), ConnectionAction::Close);
      ASSERT_EQ(m.backoff_delay_ms(), b.next_delay_ms()) << "seed " << seed << " failure " << n;
      ASSERT_EQ(m.retry_now(0), ConnectionAction::Open);
    }
  }
}

}  // namespace
}  // namespace syncline
