// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Parsing untrusted JSON (text or CBOR) into a Json with a bound on nesting. nlohmann's text
// parser is iterative, but copying, comparing and dumping a value recurse once per level, and
// its binary readers recurse while parsing: a value nested 200,000 deep would exhaust the stack
// later, far from the parse. So the bound is enforced while building, and a parse that goes
// deeper stops there without building the rest.
#pragma once
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.hpp"

namespace syncline {

// DOM builder that refuses (returns false, i.e. a parse error) nesting deeper than max_depth and,
// for binary input, a declared array/map length larger than the whole input (every element takes
// at least one byte; without this nlohmann throws out_of_range.408 even with allow_exceptions off).
class BoundedDomParser : public nlohmann::detail::json_sax_dom_parser<Json> {
  using Base = nlohmann::detail::json_sax_dom_parser<Json>;

 public:
  BoundedDomParser(Json& root, std::size_t input_size, std::size_t max_depth)
      : Base(root, false), input_size_(input_size), max_depth_(max_depth) {}
  bool start_object(std::size_t len) { return enter(len) && Base::start_object(len); }
  bool end_object() { --depth_; return Base::end_object(); }
  bool start_array(std::size_t len) { return enter(len) && Base::start_array(len); }
  bool end_array() { --depth_; return Base::end_array(); }
  bool too_deep() const { return too_deep_; }

 private:
  bool enter(std::size_t len) {
    if (len != static_cast<std::size_t>(-1) && len > input_size_) return false;
    if (++depth_ > max_depth_) too_deep_ = true;
    return !too_deep_;
  }
  std::size_t input_size_;
  std::size_t max_depth_;
  std::size_t depth_ = 0;
  bool too_deep_ = false;
};

enum class JsonParseError { None, Syntax, TooDeep };

// Parses JSON text without throwing. On failure returns a discarded value and sets `error`.
inline Json parse_json_bounded(std::string_view text, std::size_t max_depth, JsonParseError* error = nullptr) {
  Json out;
  BoundedDomParser sax(out, text.size(), max_depth);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &sax, Json::input_format_t::json, true);
  if (!ok || out.is_discarded()) {
    if (error) *error = sax.too_deep() ? JsonParseError::TooDeep : JsonParseError::Syntax;
    return Json(Json::value_t::discarded);
  }
  if (error) *error = JsonParseError::None;
  return out;
}

// Whether a value built elsewhere (JsonReader, a saved state) nests at most `limit` levels.
// Iterative, for the same reason as above.
inline bool within_depth(const Json& root, std::size_t limit) {
  std::vector<std::pair<const Json*, std::size_t>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [j, depth] = stack.back();
    stack.pop_back();
    if (!j->is_structured()) continue;
    if (depth > limit) return false;
    for (const Json& child : *j) stack.emplace_back(&child, depth + 1);
  }
  return true;
}

}  // namespace syncline
