// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Status values instead of exceptions: the wasm build must never abort on bad input, so every
// fallible core operation returns Result<T> carrying an Error with a stable code.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace syncline {

// Stable error codes shared by the core, the server (HTTP bodies) and JS (SyncError.code).
namespace codes {
inline constexpr const char* kInvalidJson = "invalid_json";
inline constexpr const char* kInvalidRequest = "invalid_request";
inline constexpr const char* kInvalidMessage = "invalid_message";
inline constexpr const char* kInvalidFilter = "invalid_filter";
inline constexpr const char* kInvalidQuery = "invalid_query";
inline constexpr const char* kInvalidMutation = "invalid_mutation";
inline constexpr const char* kInvalidSnapshot = "invalid_snapshot";
inline constexpr const char* kUnauthorized = "unauthorized";
inline constexpr const char* kForbidden = "forbidden";
inline constexpr const char* kNotFound = "not_found";
inline constexpr const char* kConflict = "conflict";
inline constexpr const char* kConstraint = "constraint";
inline constexpr const char* kPayloadTooLarge = "payload_too_large";
inline constexpr const char* kRateLimited = "rate_limited";
inline constexpr const char* kUnknownQuery = "unknown_query";
}  // namespace codes

struct Error {
  std::string code;
  std::string message;
  std::string field;  // JSON path of the offending input, e.g. "mutations[3].id"; may be empty

  bool operator==(const Error&) const = default;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

inline Error make_error(std::string code, std::string message, std::string field = {}) {
  return Error{std::move(code), std::move(message), std::move(field)};
}

}  // namespace syncline
