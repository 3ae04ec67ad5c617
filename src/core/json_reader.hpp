// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// A pull parser for JSON text, for the receive hot path: the caller walks arrays and objects
// itself and builds a Json only for the members it keeps (a change's `fields`), so a batch of
// frames never becomes one DOM that is then copied and destroyed.
//
// It accepts exactly what nlohmann::json::parse (strict, no comments) accepts and builds the
// same values: a UTF-8 BOM at the very start is skipped; strings must be valid UTF-8 without
// control characters, \u escapes must pair surrogates; integers become uint64 (no sign) or
// int64 (negative) when they fit and double otherwise; a number that overflows double is an
// error; a duplicate object key keeps the last value; a NUL byte after the top-level value ends
// the input. tests/core/json_reader_test.cpp checks
// this against nlohmann on a table of inputs, and the protocol fuzz target checks it on every
// corpus input.
//
// Nesting is walked with an explicit stack, not recursion: nlohmann's parser has no depth
// limit either, and the wasm stack is small.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.hpp"

namespace syncline {

class JsonReader {
 public:
  explicit JsonReader(std::string_view text);

  bool failed() const { return failed_; }
  // Skips whitespace and returns the next byte, or 0 at the end of the text.
  char peek();
  // Consumes `c` (after whitespace) if it is next.
  bool consume(char c);

  // Array walk, after '[' was consumed: true when there is another element (consumes a ','
  // between elements), false at ']' (consumed) or on a syntax error (failed() is then set).
  bool next_element(bool first);
  // Object walk, after '{' was consumed: reads the next key into `key` (consumes ':').
  bool next_member(bool first, std::string& key);

  // Parses one value into `out` (any type).
  bool parse_value(Json& out);
  // Validates and skips one value.
  bool skip_value();
  // Parses a string value (after whitespace) into `out`.
  bool parse_string(std::string& out);

  // True when only whitespace is left; call after the top-level value.
  bool at_end();

 private:
  bool fail();
  void skip_ws();
  bool string_body(std::string* out);
  bool literal(std::string_view word);
  bool number(Json* out);
  bool scalar(Json* out);
  bool value(Json* out);

  const char* p_;
  const char* end_;
  bool failed_ = false;
};

// Whole-text parse with the reader (same contract as parse_json_nothrow: discarded on error).
Json parse_json_fast(std::string_view text);

}  // namespace syncline
