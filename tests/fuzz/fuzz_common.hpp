// Layer: tests/fuzz (fuzz harnesses over src/core). Must not depend on libFuzzer itself: every
// target is also linked with replay_main.cpp, which feeds saved inputs through the same entry
// point without libFuzzer (tests/fuzz/README.md).
//
// FUZZ_CHECK is the harnesses' assertion: a violated invariant prints what broke and aborts, which
// libFuzzer reports as a crash (and saves the input) and the replay runner reports as a failure.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/json.hpp"

#define FUZZ_CHECK(cond, what)                                                                   \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                                   \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

namespace syncline::fuzz {

// Reads fuzz bytes as small decisions; returns 0 once the input is used up, so every input is
// a valid (possibly short) script.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Uniform-ish in [0, n).
  std::uint32_t below(std::uint32_t n) { return n == 0 ? 0 : byte() % n; }
  std::int64_t small_int() { return static_cast<std::int64_t>(byte()); }
  std::string_view rest() {
    std::string_view r(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return r;
  }
  // Bytes up to the next `sep` (consumed, not returned) or the end.
  std::string_view until(char sep) {
    std::size_t start = pos_;
    while (pos_ < size_ && data_[pos_] != static_cast<std::uint8_t>(sep)) ++pos_;
    std::string_view r(reinterpret_cast<const char*>(data_) + start, pos_ - start);
    if (pos_ < size_) ++pos_;
    return r;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

inline std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace syncline::fuzz
