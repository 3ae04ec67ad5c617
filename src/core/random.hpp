// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Deterministic randomness for the core: callers inject a seed (tests replay it; the browser
// seeds from crypto.getRandomValues).
#pragma once
#include <cstdint>

namespace syncline {

// SplitMix64: tiny, fast, and good enough for jitter and ids.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0x9E3779B97F4A7C15ULL) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  std::uint64_t state() const { return state_; }

 private:
  std::uint64_t state_;
};

}  // namespace syncline
