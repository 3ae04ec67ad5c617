// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Status values instead of exceptions: the wasm build must never abort on bad input, so every
// fallible core operation returns Result<T> carrying an Error with a stable code, one of
// error_codes.def.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "error_codes.hpp"

namespace syncline {

struct Error {
  std::string code;  // a registered code (error_codes.def); one decoded from the wire may be any string
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

// The code is checked against the registry at compile time (RegisteredCode).
inline Error make_error(RegisteredCode code, std::string message, std::string field = {}) {
  return Error{std::string(code.wire()), std::move(message), std::move(field)};
}

}  // namespace syncline
