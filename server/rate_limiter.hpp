// Layer: server. Token-bucket rate limiter keyed by caller (token subject, else remote
// address). io thread only. Beast-free.
#pragma once
#include <string>
#include <unordered_map>

namespace syncline::server {

class RateLimiter {
 public:
  // per_sec <= 0 turns limiting off.
  RateLimiter(double per_sec, double burst) : rate_(per_sec), burst_(burst) {}
  // Returns 0 when allowed, else the seconds to wait.
  int take(const std::string& key, long long now_ms);

 private:
  struct Bucket {
    double tokens;
    long long last_ms;
  };
  double rate_, burst_;
  std::unordered_map<std::string, Bucket> buckets_;
  long long last_sweep_ms_ = 0;
};

}  // namespace syncline::server
