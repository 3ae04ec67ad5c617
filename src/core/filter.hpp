// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The `where` grammar (PostgREST operators; docs/protocol.md, Common query parameters), one
// implementation for the client's live queries and the server's rules and subscriptions.
//
//   filter     := condition ("," condition)*          -- comma means AND
//   condition  := field "=" op "." value
//   op         := eq | neq | gt | gte | lt | lte | in | is
//   in value   := "(" item ("," item)* ")"            -- items may be "double-quoted"
//   is value   := null | true | false
//   field      := [A-Za-z_][A-Za-z0-9_]* ("." ...)?   -- dots reach into nested objects
//
// Values arrive as text (they come from URLs). A value is compared with the document field
// according to the field's JSON type: numbers numerically (value parsed as a number; a value
// that is not a number never matches), strings lexicographically by bytes, booleans as
// true/false. A missing field or null matches only `is.null` (and `neq`, which is "not eq").
// The special field `id` refers to the document id.
//
// Details of the contract (parse, matches and to_string keep to these):
// - The empty string is the empty filter, which matches everything. Nothing is trimmed:
//   spaces are part of field names (and so invalid) or of values.
// - Any value may be written "double-quoted" (backslash escapes the next character); that is
//   how a value holds a ',' (or an in item a ')'), or starts with a quote. Unquoted, a value
//   runs to the next ',' (an in item to the next ',' or ')'), quotes inside it are literal.
//   An unquoted in item may not be empty: write "" for the empty string.
// - Numbers: the value must look like -?(digits[.digits]|.digits)([eE][+-]?digits)? ; it is
//   read with std::from_chars (integers) or strtod. Integers compare exactly (also against
//   doubles), so 9007199254740993 does not equal 9007199254740992.
// - Booleans order false < true for gt/gte/lt/lte; a value other than true/false never
//   matches a boolean field. Array and object fields never match eq/gt/gte/lt/lte/in.
// - `neq` is exactly "not eq": it matches a missing or null field and a field whose type
//   cannot be compared with the value. `id` alone is special; `id.x` is a nested field.
// - to_string() is canonical: fields joined by '.', `is` values lowercase, values quoted only
//   where needed. and_also() concatenates the conditions (this first).
//
//   auto f = Filter::parse("status=in.(open,\"on hold\"),total=gte.100");
//   f->matches("b1", Json{{"status", "open"}, {"total", 120}});  // true
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"

namespace syncline {

enum class FilterOp { Eq, Neq, Gt, Gte, Lt, Lte, In, IsNull, IsTrue, IsFalse };

struct Condition {
  std::vector<std::string> path;    // field split on '.'
  FilterOp op = FilterOp::Eq;
  std::vector<std::string> values;  // one value, several for `in`, none for `is`
  // Set by the server on conditions whose value came from a token claim ({sub} in a rule): the
  // value is a string, never a number, so it matches only a string field holding exactly those
  // bytes (a claim "04242" must not match the number 4242). Not part of the text grammar.
  bool exact_string = false;
  bool operator==(const Condition&) const = default;
};

class Filter {
 public:
  Filter() = default;  // matches everything
  explicit Filter(std::vector<Condition> conditions) : conditions_(std::move(conditions)) {}
  // Errors carry code "invalid_filter", a message naming the offending condition and its
  // position, and field "where".
  static Result<Filter> parse(std::string_view text);

  bool matches(std::string_view id, const Json& fields) const;
  bool empty() const { return conditions_.empty(); }
  const std::vector<Condition>& conditions() const { return conditions_; }
  // Canonical text form; parse(to_string()) == *this.
  std::string to_string() const;
  // Conjunction of two filters (used by the server: subscription AND read rule).
  Filter and_also(const Filter& other) const;

  bool operator==(const Filter&) const = default;

 private:
  std::vector<Condition> conditions_;
};

// Value of a (possibly nested) field, or nullptr when absent.
const Json* lookup_field(const Json& fields, const std::vector<std::string>& path);

}  // namespace syncline
