// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
#include "core/backoff.hpp"

#include <algorithm>
#include <limits>

namespace syncline {

std::int64_t backoff_ceiling(const BackoffPolicy& p, int attempt) {
  const std::int64_t cap = std::max<std::int64_t>(p.cap_ms, 0);
  const std::int64_t base = std::max<std::int64_t>(p.base_ms, 0);
  if (base == 0) return 0;
  if (attempt < 0) attempt = 0;
  if (attempt >= 62) return cap;
  const std::int64_t limit = std::numeric_limits<std::int64_t>::max() >> attempt;
  if (base > limit) return cap;
  return std::min(cap, base << attempt);
}

std::int64_t full_jitter_delay_ms(const BackoffPolicy& p, int attempt, Rng& rng) {
  const std::int64_t ceiling = backoff_ceiling(p, attempt);
  // (Compared as doubles first: casting a double >= 2^63 to int64 is undefined.)
  const double scaled = rng.uniform() * (static_cast<double>(ceiling) + 1.0);
  return scaled >= static_cast<double>(ceiling) ? ceiling : std::max<std::int64_t>(0, static_cast<std::int64_t>(scaled));
}

std::int64_t RetryBackoff::next_delay_ms() {
  const std::int64_t delay = full_jitter_delay_ms(policy_, failures_, rng_);
  if (failures_ < std::numeric_limits<int>::max()) ++failures_;
  return delay;
}

}  // namespace syncline
