// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The error codes of src/core/error_codes.def as C++: the ErrorCode enum, its wire string, its
// HTTP status, and the codes::k* names the sources use. Nothing here is written by hand per
// code: add a code to the .def file and it appears here, in the TypeScript union and in the
// docs table (tools/gen-error-codes.mjs).
//
//   make_error(codes::kConflict, "base_version 3 does not match 4", "base_version");
//   http_status("conflict");  // 0: a per-write outcome, never an HTTP status
//   make_error("no_such_code", "...");  // does not compile: not in the registry
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace syncline {

enum class ErrorCode : std::uint8_t {
#define SYNCLINE_ERROR_CODE(name, wire, status, raised_by, where, meaning) name,
#include "error_codes.def"
#undef SYNCLINE_ERROR_CODE
};

namespace detail {
struct ErrorCodeInfo {
  ErrorCode code;
  std::string_view wire;
  int http_status;
};
inline constexpr std::array kErrorCodes = {
#define SYNCLINE_ERROR_CODE(name, wire, status, raised_by, where, meaning) \
  ErrorCodeInfo{ErrorCode::name, wire, status},
#include "error_codes.def"
#undef SYNCLINE_ERROR_CODE
};
// Only reached while evaluating a consteval call with a code that is not registered: the call
// is then not a constant expression, which is a compile error naming this function.
inline void error_code_not_in_registry_see_error_codes_def() {}
}  // namespace detail

inline constexpr std::size_t kErrorCodeCount = detail::kErrorCodes.size();

// Every registered code, in registry order.
constexpr std::array<ErrorCode, kErrorCodeCount> all_error_codes() {
  std::array<ErrorCode, kErrorCodeCount> out{};
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) out[i] = detail::kErrorCodes[i].code;
  return out;
}

constexpr std::string_view to_string(ErrorCode c) { return detail::kErrorCodes[static_cast<std::size_t>(c)].wire; }

// The status of an HTTP answer carrying this code; 0 when the code is never an HTTP answer
// (a per-write outcome, a stream close, or the browser runtime's own).
constexpr int http_status(ErrorCode c) { return detail::kErrorCodes[static_cast<std::size_t>(c)].http_status; }

constexpr std::optional<ErrorCode> parse_error_code(std::string_view wire) {
  for (const auto& e : detail::kErrorCodes) {
    if (e.wire == wire) return e.code;
  }
  return std::nullopt;
}

// For an Error's string code: 0 for an unregistered code as for one that is never an HTTP answer.
constexpr int http_status(std::string_view wire) {
  auto c = parse_error_code(wire);
  return c ? http_status(*c) : 0;
}

// A code checked against the registry at compile time: make_error and the decoders take this,
// so a string literal that is not a registered code does not compile.
class RegisteredCode {
 public:
  constexpr RegisteredCode(ErrorCode c) : code_(c) {}  // NOLINT(google-explicit-constructor)
  consteval RegisteredCode(const char* wire) : code_(lookup(wire)) {}  // NOLINT(google-explicit-constructor)
  constexpr ErrorCode code() const { return code_; }
  constexpr std::string_view wire() const { return to_string(code_); }

 private:
  static consteval ErrorCode lookup(const char* wire) {
    auto c = parse_error_code(wire);
    if (!c) detail::error_code_not_in_registry_see_error_codes_def();
    return *c;
  }
  ErrorCode code_;
};

// The wire strings under the names the sources use (codes::kInvalidRequest == "invalid_request").
namespace codes {
#define SYNCLINE_ERROR_CODE(name, wire, status, raised_by, where, meaning) inline constexpr const char* k##name = wire;
#include "error_codes.def"
#undef SYNCLINE_ERROR_CODE
}  // namespace codes

}  // namespace syncline
