// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The JSON value type used throughout the core. nlohmann::json keeps object keys in a
// std::map, so equal documents compare and serialise identically on every replica.
#pragma once
#include <nlohmann/json.hpp>

namespace syncline {
using Json = nlohmann::json;

// Parses without throwing; returns a discarded value on malformed input.
inline Json parse_json_nothrow(std::string_view text) {
  return Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}
}  // namespace syncline
