// Layer: server. Token-bucket rate limiter (see rate_limiter.hpp).
#include "rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace syncline::server {

int RateLimiter::take(const std::string& key, long long now_ms) {
  if (rate_ <= 0) return 0;
  if (now_ms - last_sweep_ms_ > 60000) {
    // Forget buckets that have been full for a while so the map stays small.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      if (now_ms - it->second.last_ms > 60000) it = buckets_.erase(it);
      else ++it;
    }
    last_sweep_ms_ = now_ms;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now_ms});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + (now_ms - b.last_ms) * rate_ / 1000.0);
  b.last_ms = now_ms;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace syncline::server
