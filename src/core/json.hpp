// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The JSON value type used throughout the core. nlohmann::json keeps object keys in a
// std::map, so equal documents compare and serialise identically on every replica.
#pragma once
#include <cstdint>
#include <limits>

#include <nlohmann/json.hpp>

namespace syncline {
using Json = nlohmann::json;

// An integer as nlohmann holds it (int64, or uint64 for non-negative literals) that fits int64;
// false for anything else (1.0 is not an integer here).
inline bool json_as_int64(const Json& v, std::int64_t& out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return true;
  }
  return false;
}

// A member of saved state that was renamed: states written before the engine used one casing
// for what it hands to JS spell some members in snake_case (next_mid, applied_seq, queued_ms,
// at_ms, need_snapshot). They are still on users' disks, so both spellings are read; the
// current one wins when an object has both. Returns the member, or j.end().
inline Json::const_iterator find_renamed(const Json& j, const char* name, const char* old_name) {
  auto it = j.find(name);
  return it != j.end() ? it : j.find(old_name);
}

// Compact text that never throws: a string holding invalid UTF-8 (possible in state restored
// from CBOR) is written with U+FFFD in place of the bad bytes instead of throwing.
inline std::string dump_nothrow(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Parses without throwing; returns a discarded value on malformed input.
inline Json parse_json_nothrow(std::string_view text) {
  return Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}
}  // namespace syncline
