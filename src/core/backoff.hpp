// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Retry delays with "full jitter": the delay before retry n (n = 0 after the first failure) is
// uniform in [0, min(cap, base * 2^n)]. One computation shared by the connection machine (stream
// reconnects) and RetryBackoff (any other retry loop, e.g. the runtime's send loop), so every
// retry in the runtime spreads the same way and is tested once.
#pragma once
#include <cstdint>

#include "core/random.hpp"

namespace syncline {

struct BackoffPolicy {
  std::int64_t base_ms = 500;
  std::int64_t cap_ms = 30'000;
  // The two timeouts are the connection machine's (RetryBackoff reads only base and cap).
  std::int64_t heartbeat_timeout_ms = 45'000;  // 3 missed 15 s heartbeats
  std::int64_t connect_timeout_ms = 15'000;
};

// min(cap, base * 2^attempt), without overflow; negative base or cap count as 0.
std::int64_t backoff_ceiling(const BackoffPolicy& p, int attempt);
// A delay uniform over the closed range [0, backoff_ceiling(p, attempt)], drawn from rng.
std::int64_t full_jitter_delay_ms(const BackoffPolicy& p, int attempt, Rng& rng);

// The delays of one retry loop: next_delay_ms() after each failure (the ceiling doubles with
// every failure up to the cap), reset() after a success (the next failure starts at base again).
// Deterministic for a given seed.
class RetryBackoff {
 public:
  RetryBackoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {}

  std::int64_t next_delay_ms();
  void reset() { failures_ = 0; }
  // Failures since the last reset(): the attempt number of the next delay.
  int failures() const { return failures_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  Rng rng_;
  int failures_ = 0;
};

}  // namespace syncline
