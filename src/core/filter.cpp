// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Parser, matcher and printer of the `where` grammar declared in filter.hpp. Nothing here
// throws on bad input: parse() reports errors as values and matching only uses the
// non-throwing parts of nlohmann::json (type checks before get<>, find() instead of at()).
#include "core/filter.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

namespace syncline {
namespace {

constexpr const char* kExpectedOps = "one of eq, neq, gt, gte, lt, lte, in, is";

// ---------------------------------------------------------------------------------------------
// Numbers: exact comparison across int64 / uint64 / double, so huge integers are not rounded.

struct Num {
  enum Kind { kInt, kUint, kDouble } kind = kInt;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
};

int sign_of(double x) { return x < 0 ? -1 : (x > 0 ? 1 : 0); }

// -1/0/1 for an integer (given as int64 or uint64) against a double. NaN sorts below every number.
int compare_int_double(const Num& a, double d) {
  if (std::isnan(d)) return 1;
  constexpr double kTwo63 = 9223372036854775808.0;
  constexpr double kTwo64 = 18446744073709551616.0;
  if (d >= kTwo64) return -1;
  if (d < -kTwo63) return 1;
  double t = std::trunc(d);
  double frac = d - t;
  if (a.kind == Num::kInt) {
    if (t >= kTwo63) return -1;
    auto ti = static_cast<std::int64_t>(t);
    if (a.i != ti) return a.i < ti ? -1 : 1;
  } else {
    if (d < 0) return 1;
    auto tu = static_cast<std::uint64_t>(t);
    if (a.u != tu) return a.u < tu ? -1 : 1;
  }
  return -sign_of(frac);
}

int compare_num(const Num& a, const Num& b) {
  if (a.kind == Num::kDouble && b.kind == Num::kDouble) {
    bool an = std::isnan(a.d), bn = std::isnan(b.d);
    if (an || bn) return an == bn ? 0 : (an ? -1 : 1);
    return a.d < b.d ? -1 : (a.d > b.d ? 1 : 0);
  }
  if (a.kind == Num::kDouble) return -compare_int_double(b, a.d);
  if (b.kind == Num::kDouble) return compare_int_double(a, b.d);
  if (a.kind == Num::kInt && b.kind == Num::kInt) return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  if (a.kind == Num::kUint && b.kind == Num::kUint) return a.u < b.u ? -1 : (a.u > b.u ? 1 : 0);
  if (a.kind == Num::kInt) return a.i < 0 ? -1 : -compare_num(b, a);  // b is uint
  if (b.i < 0) return 1;                                                // a uint, b int
  auto bu = static_cast<std::uint64_t>(b.i);
  return a.u < bu ? -1 : (a.u > bu ? 1 : 0);
}

Num num_of_json(const Json& j) {
  Num n;
  if (j.is_number_unsigned()) {
    n.kind = Num::kUint;
    n.u = j.get<std::uint64_t>();
  } else if (j.is_number_integer()) {
    n.kind = Num::kInt;
    n.i = j.get<std::int64_t>();
  } else {
    n.kind = Num::kDouble;
    n.d = j.get<double>();
  }
  return n;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Value text as a number: -?(digits[.digits]|.digits)([eE][+-]?digits)?. Anything else
// (including "inf", "nan", hex, spaces) is not a number.
std::optional<Num> parse_number(std::string_view t) {
  std::size_t p = 0;
  if (p < t.size() && t[p] == '-') ++p;
  std::size_t int_digits = 0, frac_digits = 0;
  while (p < t.size() && is_digit(t[p])) ++p, ++int_digits;
  bool integral = true;
  if (p < t.size() && t[p] == '.') {
    integral = false;
    ++p;
    while (p < t.size() && is_digit(t[p])) ++p, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (p < t.size() && (t[p] == 'e' || t[p] == 'E')) {
    integral = false;
    ++p;
    if (p < t.size() && (t[p] == '+' || t[p] == '-')) ++p;
    std::size_t exp_digits = 0;
    while (p < t.size() && is_digit(t[p])) ++p, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (p != t.size()) return std::nullopt;

  const char* first = t.data();
  const char* last = t.data() + t.size();
  Num n;
  if (integral) {
    auto [ptr, ec] = std::from_chars(first, last, n.i);
    if (ec == std::errc() && ptr == last) {
      n.kind = Num::kInt;
      return n;
    }
    if (t[0] != '-') {
      auto [uptr, uec] = std::from_chars(first, last, n.u);
      if (uec == std::errc() && uptr == last) {
        n.kind = Num::kUint;
        return n;
      }
    }
  }
  // std::from_chars for double is missing from the libc++ that emscripten ships; the syntax
  // was validated above, so strtod cannot stop early or read a locale-specific form.
  std::string copy(t);
  n.kind = Num::kDouble;
  n.d = std::strtod(copy.c_str(), nullptr);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Matching

// What a condition sees of a document field: the special `id` is a string.
struct FieldView {
  enum Kind { kMissing, kBool, kNumber, kString, kOther } kind = kMissing;
  bool b = false;
  Num n;
  std::string_view s;
};

FieldView view_of(const Json* j) {
  FieldView v;
  if (j == nullptr || j->is_null() || j->is_discarded()) return v;
  if (j->is_boolean()) {
    v.kind = FieldView::kBool;
    v.b = j->get<bool>();
  } else if (j->is_number()) {
    v.kind = FieldView::kNumber;
    v.n = num_of_json(*j);
  } else if (j->is_string()) {
    v.kind = FieldView::kString;
    v.s = j->get_ref<const std::string&>();
  } else {
    v.kind = FieldView::kOther;
  }
  return v;
}

// Field compared with the value text: -1/0/1, or nullopt when they are not comparable (a value
// that is not a number against a number field, anything but true/false against a boolean,
// arrays and objects against anything).
std::optional<int> compare_field(const FieldView& f, std::string_view text) {
  switch (f.kind) {
    case FieldView::kNumber: {
      auto n = parse_number(text);
      if (!n) return std::nullopt;
      return compare_num(f.n, *n);
    }
    case FieldView::kString: {
      int c = f.s.compare(text);  // char_traits<char>::compare orders bytes as unsigned char
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case FieldView::kBool: {
      bool v;
      if (text == "true") {
        v = true;
      } else if (text == "false") {
        v = false;
      } else {
        return std::nullopt;
      }
      return f.b == v ? 0 : (f.b ? 1 : -1);
    }
    default:
      return std::nullopt;
  }
}

bool equals(const FieldView& f, std::string_view text) {
  auto c = compare_field(f, text);
  return c && *c == 0;
}

bool match_condition(const Condition& c, std::string_view id, const Json& fields) {
  FieldView f;
  if (c.path.size() == 1 && c.path[0] == "id") {
    f.kind = FieldView::kString;
    f.s = id;
  } else {
    f = view_of(lookup_field(fields, c.path));
  }
  // A claim compares as the string it is: a number or boolean field is as foreign to it as an
  // array (matches neither eq nor gt/lt; neq is "not eq" and so matches).
  if (c.exact_string && (f.kind == FieldView::kNumber || f.kind == FieldView::kBool)) f.kind = FieldView::kOther;
  switch (c.op) {
    case FilterOp::IsNull:
      return f.kind == FieldView::kMissing;
    case FilterOp::IsTrue:
      return f.kind == FieldView::kBool && f.b;
    case FilterOp::IsFalse:
      return f.kind == FieldView::kBool && !f.b;
    case FilterOp::Neq:
      return c.values.empty() || !equals(f, c.values[0]);
    case FilterOp::In:
      for (const auto& v : c.values) {
        if (equals(f, v)) return true;
      }
      return false;
    default:
      break;
  }
  if (c.values.empty()) return false;
  auto cmp = compare_field(f, c.values[0]);
  if (!cmp) return false;
  switch (c.op) {
    case FilterOp::Eq: return *cmp == 0;
    case FilterOp::Gt: return *cmp > 0;
    case FilterOp::Gte: return *cmp >= 0;
    case FilterOp::Lt: return *cmp < 0;
    case FilterOp::Lte: return *cmp <= 0;
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

bool is_field_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_field_char(char c) { return is_field_start(c) || is_digit(c); }

std::optional<std::vector<std::string>> split_field(std::string_view text) {
  std::vector<std::string> path;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = text.find('.', start);
    std::string_view seg = text.substr(start, dot == std::string_view::npos ? text.npos : dot - start);
    if (seg.empty() || !is_field_start(seg[0])) return std::nullopt;
    for (char c : seg) {
      if (!is_field_char(c)) return std::nullopt;
    }
    path.emplace_back(seg);
    if (dot == std::string_view::npos) return path;
    start = dot + 1;
  }
}

// Extent of the condition starting at `start`, for error messages: up to the next ',' that is
// outside double quotes and parentheses (or the end when a quote or parenthesis never closes).
std::string_view condition_text(std::string_view s, std::size_t start) {
  int depth = 0;
  bool quoted = false;
  std::size_t i = start;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  return s.substr(start, std::min(i, s.size()) - start);
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<std::vector<Condition>> run() {
    std::vector<Condition> out;
    if (s_.empty()) return out;
    while (true) {
      std::size_t start = pos_;
      Condition c;
      if (!condition(c)) return fail(start);
      out.push_back(std::move(c));
      if (pos_ == s_.size()) return out;
      ++pos_;  // the ',' that condition() stopped at
    }
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  bool at_separator() const { return at_end() || s_[pos_] == ','; }

  bool error(std::string what) {
    problem_ = std::move(what);
    return false;
  }

  Error fail(std::size_t start) const {
    std::string text(condition_text(s_, start));
    std::string msg;
    if (text.empty()) {
      msg = "invalid filter: empty condition at position " + std::to_string(start) + ": " +
            problem_;
    } else {
      msg = "invalid filter condition \"" + text + "\" at position " + std::to_string(start) +
            ": " + problem_;
    }
    return make_error(codes::kInvalidFilter, std::move(msg), "where");
  }

  bool condition(Condition& c) {
    if (at_separator()) {
      return error(pos_ > 0 ? "expected a condition field=op.value after ',' (trailing or "
                              "doubled comma?)"
                            : "expected a condition field=op.value");
    }
    // field
    std::size_t field_start = pos_;
    while (!at_end() && s_[pos_] != '=' && s_[pos_] != ',') ++pos_;
    if (at_separator()) return error("missing '=' after the field; expected field=op.value");
    std::string_view field = s_.substr(field_start, pos_ - field_start);
    if (field.empty()) return error("empty field name before '='; expected field=op.value");
    auto path = split_field(field);
    if (!path) {
      return error("invalid field name \"" + std::string(field) +
                   "\"; expected names of letters, digits and '_' (not starting with a digit), "
                   "joined by '.'");
    }
    c.path = std::move(*path);
    ++pos_;  // '='

    // operator
    std::size_t op_start = pos_;
    while (!at_end() && s_[pos_] != '.' && s_[pos_] != ',') ++pos_;
    std::string_view op = s_.substr(op_start, pos_ - op_start);
    enum { kScalar, kIn, kIs } kind = kScalar;
    if (op == "eq") {
      c.op = FilterOp::Eq;
    } else if (op == "neq") {
      c.op = FilterOp::Neq;
    } else if (op == "gt") {
      c.op = FilterOp::Gt;
    } else if (op == "gte") {
      c.op = FilterOp::Gte;
    } else if (op == "lt") {
      c.op = FilterOp::Lt;
    } else if (op == "lte") {
      c.op = FilterOp::Lte;
    } else if (op == "in") {
      c.op = FilterOp::In;
      kind = kIn;
    } else if (op == "is") {
      kind = kIs;
    } else if (op.empty()) {
      return error(std::string("missing operator after '='; expected ") + kExpectedOps);
    } else {
      return error("unknown operator \"" + std::string(op) + "\"; expected " + kExpectedOps);
    }
    if (at_separator()) {
      return error("missing '.' after operator \"" + std::string(op) + "\"; expected " +
                   std::string(op) + ".value");
    }
    ++pos_;  // '.'

    switch (kind) {
      case kIs: return is_value(c);
      case kIn: return in_list(c);
      default: return scalar_value(c);
    }
  }

  bool is_value(Condition& c) {
    std::size_t start = pos_;
    while (!at_separator()) ++pos_;
    std::string_view v = s_.substr(start, pos_ - start);
    if (v == "null") {
      c.op = FilterOp::IsNull;
    } else if (v == "true") {
      c.op = FilterOp::IsTrue;
    } else if (v == "false") {
      c.op = FilterOp::IsFalse;
    } else {
      return error("invalid value \"" + std::string(v) + "\" after 'is.'; expected null, true or "
                   "false");
    }
    return true;
  }

  // pos_ is at the opening '"'. Backslash escapes the next character.
  bool quoted(std::string& out) {
    ++pos_;
    while (!at_end()) {
      char ch = s_[pos_++];
      if (ch == '"') return true;
      if (ch == '\\') {
        if (at_end()) break;
        ch = s_[pos_++];
      }
      out.push_back(ch);
    }
    return error("unterminated quoted value; expected a closing '\"'");
  }

  bool scalar_value(Condition& c) {
    std::string v;
    if (!at_end() && s_[pos_] == '"') {
      if (!quoted(v)) return false;
      if (!at_separator()) {
        return error("unexpected text after the closing '\"'; expected ',' or the end");
      }
    } else {
      std::size_t start = pos_;
      while (!at_separator()) ++pos_;
      v = s_.substr(start, pos_ - start);
    }
    c.values.push_back(std::move(v));
    return true;
  }

  bool in_list(Condition& c) {
    if (at_end() || s_[pos_] != '(') return error("expected '(' after 'in.', as in in.(a,b)");
    ++pos_;
    while (true) {
      std::string item;
      if (!at_end() && s_[pos_] == '"') {
        if (!quoted(item)) return false;
      } else {
        std::size_t start = pos_;
        while (!at_end() && s_[pos_] != ',' && s_[pos_] != ')') ++pos_;
        item = s_.substr(start, pos_ - start);
        if (at_end()) return error("unclosed '(' in the in list; expected ')'");
        if (item.empty()) {
          if (s_[pos_] == ')' && c.values.empty()) {
            return error("empty in list; expected at least one item, as in in.(a,b)");
          }
          return error("empty item in the in list (trailing or doubled comma?); write \"\" for "
                       "an empty string");
        }
      }
      if (at_end()) return error("unclosed '(' in the in list; expected ')'");
      c.values.push_back(std::move(item));
      char ch = s_[pos_++];
      if (ch == ')') break;
      if (ch != ',') {
        return error("unexpected text after a quoted item; expected ',' or ')'");
      }
    }
    if (!at_separator()) return error("unexpected text after ')'; expected ',' or the end");
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string problem_;
};

// ---------------------------------------------------------------------------------------------
// Printing

std::string quote(std::string_view v) {
  std::string out = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('"');
  return out;
}

std::string scalar_text(const std::string& v) {
  bool needs = (!v.empty() && v[0] == '"') || v.find(',') != std::string::npos;
  return needs ? quote(v) : v;
}

std::string item_text(const std::string& v) {
  bool needs = v.empty() || v[0] == '"' || v.find_first_of(",()") != std::string::npos;
  return needs ? quote(v) : v;
}

const char* op_name(FilterOp op) {
  switch (op) {
    case FilterOp::Eq: return "eq";
    case FilterOp::Neq: return "neq";
    case FilterOp::Gt: return "gt";
    case FilterOp::Gte: return "gte";
    case FilterOp::Lt: return "lt";
    case FilterOp::Lte: return "lte";
    case FilterOp::In: return "in";
    default: return "is";
  }
}

}  // namespace

const Json* lookup_field(const Json& fields, const std::vector<std::string>& path) {
  const Json* cur = &fields;
  for (const auto& seg : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(seg);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur->is_discarded() ? nullptr : cur;
}

Result<Filter> Filter::parse(std::string_view text) {
  auto conditions = Parser(text).run();
  if (!conditions) return conditions.error();
  Filter f;
  f.conditions_ = std::move(*conditions);
  return f;
}

bool Filter::matches(std::string_view id, const Json& fields) const {
  for (const auto& c : conditions_) {
    if (!match_condition(c, id, fields)) return false;
  }
  return true;
}

std::string Filter::to_string() const {
  std::string out;
  for (const auto& c : conditions_) {
    if (!out.empty()) out.push_back(',');
    for (std::size_t i = 0; i < c.path.size(); ++i) {
      if (i > 0) out.push_back('.');
      out += c.path[i];
    }
    out.push_back('=');
    out += op_name(c.op);
    out.push_back('.');
    switch (c.op) {
      case FilterOp::IsNull: out += "null"; break;
      case FilterOp::IsTrue: out += "true"; break;
      case FilterOp::IsFalse: out += "false"; break;
      case FilterOp::In:
        out.push_back('(');
        for (std::size_t i = 0; i < c.values.size(); ++i) {
          if (i > 0) out.push_back(',');
          out += item_text(c.values[i]);
        }
        out.push_back(')');
        break;
      default:
        if (!c.values.empty()) out += scalar_text(c.values[0]);
        break;
    }
  }
  return out;
}

Filter Filter::and_also(const Filter& other) const {
  Filter f = *this;
  f.conditions_.insert(f.conditions_.end(), other.conditions_.begin(), other.conditions_.end());
  return f;
}

}  // namespace syncline
