// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// See json_reader.hpp for the contract (nlohmann-compatible acceptance and values).
#include "core/json_reader.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

namespace syncline {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0 when invalid.
// Same table as nlohmann's lexer (Unicode 3-7: no overlongs, no surrogates, <= U+10FFFF).
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) {
  auto in = [&](std::size_t i, unsigned char lo, unsigned char hi) {
    return p + i < end && p[i] >= lo && p[i] <= hi;
  };
  const unsigned char c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (c == 0xE0) return in(1, 0xA0, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (c == 0xED) return in(1, 0x80, 0x9F) && in(2, 0x80, 0xBF) ? 3 : 0;
  if (c == 0xF0) return in(1, 0x90, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  if (c == 0xF4) return in(1, 0x80, 0x8F) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// Clinger's fast path: a decimal with at most 15 significant digits is an exact double, and so
// is 10^k for k <= 22, so one IEEE multiply or divide gives the correctly rounded value, the
// same one strtod returns. Everything else (long mantissas, big exponents) goes to strtod.
// [p, end) is a grammatically valid JSON number.
bool exact_decimal(const char* p, const char* end, double& out) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const bool negative = *p == '-';
  if (negative) ++p;
  std::uint64_t mantissa = 0;
  int digits = 0;    // significant digits taken into the mantissa
  int exponent = 0;  // power of ten to apply to the mantissa
  auto take = [&](char c) {
    if (mantissa == 0 && c == '0') return true;  // leading zeros are not significant
    if (++digits > 15) return false;
    mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
    return true;
  };
  for (; p < end && is_digit(*p); ++p) {
    if (!take(*p)) return false;
  }
  if (p < end && *p == '.') {
    for (++p; p < end && is_digit(*p); ++p) {
      if (!take(*p)) return false;
      --exponent;
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool neg_exp = *p == '-';
    if (*p == '+' || *p == '-') ++p;
    int e = 0;
    for (; p < end && is_digit(*p); ++p) {
      if (e > 1000) return false;
      e = e * 10 + (*p - '0');
    }
    exponent += neg_exp ? -e : e;
  }
  if (exponent < -22 || exponent > 22) return false;
  double v = static_cast<double>(mantissa);
  v = exponent < 0 ? v / kPow10[-exponent] : v * kPow10[exponent];
  out = negative ? -v : v;
  return true;
}

}  // namespace

JsonReader::JsonReader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {
  // nlohmann skips a UTF-8 byte order mark at the very start of the input.
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) p_ += 3;
}

bool JsonReader::fail() {
  failed_ = true;
  return false;
}

void JsonReader::skip_ws() {
  while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
}

char JsonReader::peek() {
  skip_ws();
  return p_ < end_ ? *p_ : '\0';
}

bool JsonReader::consume(char c) {
  if (peek() != c || p_ == end_) return false;
  ++p_;
  return true;
}

// nlohmann's lexer reads a NUL byte outside a string as the end of the input, so text after
// one is ignored there; do the same.
bool JsonReader::at_end() {
  skip_ws();
  return !failed_ && (p_ == end_ || *p_ == '\0');
}

bool JsonReader::next_element(bool first) {
  if (failed_) return false;
  if (consume(']')) return false;
  if (!first && !consume(',')) return fail();
  return true;
}

bool JsonReader::next_member(bool first, std::string& key) {
  if (failed_) return false;
  if (first && consume('}')) return false;
  if (!first) {
    if (consume('}')) return false;
    if (!consume(',')) return fail();
  }
  if (peek() != '"') return fail();
  key.clear();
  if (!parse_string(key)) return false;
  if (!consume(':')) return fail();
  return true;
}

bool JsonReader::parse_string(std::string& out) {
  if (peek() != '"') return fail();
  ++p_;
  return string_body(&out);
}

// After the opening quote; appends the decoded text to *out (when not null).
bool JsonReader::string_body(std::string* out) {
  for (;;) {
    // Copy the longest run of plain printable ASCII in one go.
    const char* run = p_;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++p_;
    }
    if (out && p_ > run) out->append(run, static_cast<std::size_t>(p_ - run));
    if (p_ == end_) return fail();
    const auto c = static_cast<unsigned char>(*p_);
    if (c == '"') {
      ++p_;
      return true;
    }
    if (c < 0x20) return fail();
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                          reinterpret_cast<const unsigned char*>(end_));
      if (n == 0) return fail();
      if (out) out->append(p_, n);
      p_ += n;
      continue;
    }
    // A backslash escape.
    if (++p_ == end_) return fail();
    char e = *p_++;
    char plain = 0;
    switch (e) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': break;
      default: return fail();
    }
    if (e != 'u') {
      if (out) *out += plain;
      continue;
    }
    auto hex4 = [&](std::uint32_t& cp) {
      if (end_ - p_ < 4) return false;
      cp = 0;
      for (int i = 0; i < 4; ++i) {
        const int h = hex_value(p_[i]);
        if (h < 0) return false;
        cp = (cp << 4) | static_cast<std::uint32_t>(h);
      }
      p_ += 4;
      return true;
    };
    std::uint32_t cp = 0;
    if (!hex4(cp)) return fail();
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low surrogate.
      std::uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail();
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return fail();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail();
    }
    if (out) append_utf8(*out, cp);
  }
}

bool JsonReader::literal(std::string_view word) {
  if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
    return fail();
  }
  p_ += word.size();
  return true;
}

// Grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, converted the way nlohmann does:
// uint64 / int64 when the integer fits, otherwise strtod (a non-finite result is an error).
bool JsonReader::number(Json* out) {
  const char* start = p_;
  const bool negative = *p_ == '-';
  if (negative) ++p_;
  if (p_ == end_) return fail();
  std::uint64_t mag = 0;
  bool overflow = false;
  if (*p_ == '0') {
    ++p_;
  } else if (*p_ >= '1' && *p_ <= '9') {
    while (p_ < end_ && is_digit(*p_)) {
      const auto d = static_cast<std::uint64_t>(*p_ - '0');
      if (mag > (std::numeric_limits<std::uint64_t>::max() - d) / 10) overflow = true;
      mag = mag * 10 + d;
      ++p_;
    }
  } else {
    return fail();
  }
  bool is_float = false;
  if (p_ < end_ && *p_ == '.') {
    ++p_;
    if (p_ == end_ || !is_digit(*p_)) return fail();
    while (p_ < end_ && is_digit(*p_)) ++p_;
    is_float = true;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || !is_digit(*p_)) return fail();
    while (p_ < end_ && is_digit(*p_)) ++p_;
    is_float = true;
  }
  if (!is_float && !overflow) {
    if (!negative) {
      if (out) *out = mag;
      return true;
    }
    constexpr auto kMinMagnitude = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1;
    if (mag <= kMinMagnitude) {
      if (out) *out = mag == kMinMagnitude ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(mag);
      return true;
    }
  }
  double fast = 0;
  if (exact_decimal(start, p_, fast)) {
    if (out) *out = fast;
    return true;
  }
  // strtod needs a terminated copy; number tokens are short.
  const std::string token(start, p_);
  const double d = std::strtod(token.c_str(), nullptr);
  if (!std::isfinite(d)) return fail();
  if (out) *out = d;
  return true;
}

bool JsonReader::scalar(Json* out) {
  switch (peek()) {
    case '"':
      ++p_;
      if (!out) return string_body(nullptr);
      *out = Json::value_t::string;
      return string_body(out->get_ptr<std::string*>());
    case 't':
      if (!literal("true")) return false;
      if (out) *out = true;
      return true;
    case 'f':
      if (!literal("false")) return false;
      if (out) *out = false;
      return true;
    case 'n':
      if (!literal("null")) return false;
      if (out) *out = nullptr;
      return true;
    default:
      if (p_ < end_ && (*p_ == '-' || is_digit(*p_))) return number(out);
      return fail();
  }
}

// One value of any shape into *out (or skipped when out is null), walking nested arrays and
// objects with an explicit stack. Containers on the stack stay put: a parent array only grows
// after the child it holds is complete, and std::map nodes never move.
bool JsonReader::value(Json* out) {
  if (failed_) return false;
  struct Level {
    Json* container;
    bool object;
  };
  std::vector<Level> stack;
  std::string key;
  Json* target = out;
  for (;;) {
    const char c = peek();
    bool open = false;
    if (c == '[' || c == '{') {
      ++p_;
      const bool object = c == '{';
      if (target) *target = object ? Json::value_t::object : Json::value_t::array;
      stack.push_back(Level{target, object});
      open = true;
    } else if (!scalar(target)) {
      return false;
    }
    // Find where the next value goes: into the container just opened, or, after a value, into
    // the innermost container that has more; close the ones that end here.
    bool first = open;
    for (;;) {
      if (stack.empty()) return true;
      Level& l = stack.back();
      const bool more = l.object ? next_member(first, key) : next_element(first);
      if (failed_) return false;
      if (more) {
        if (!l.container) {
          target = nullptr;
        } else if (l.object) {
          auto* obj = l.container->get_ptr<Json::object_t*>();
          target = &obj->insert_or_assign(key, Json()).first->second;
        } else {
          auto* arr = l.container->get_ptr<Json::array_t*>();
          target = &arr->emplace_back();
        }
        break;
      }
      stack.pop_back();
      first = false;
    }
  }
}

bool JsonReader::parse_value(Json& out) { return value(&out); }

bool JsonReader::skip_value() { return value(nullptr); }

Json parse_json_fast(std::string_view text) {
  JsonReader r(text);
  Json out;
  if (!r.parse_value(out) || !r.at_end()) return Json(Json::value_t::discarded);
  return out;
}

}  // namespace syncline
