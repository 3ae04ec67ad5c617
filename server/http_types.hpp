// Layer: server. The transport-free HTTP request and response the App works on, the one error
// shape every refusal takes, and the one bounded entry point for JSON a client sends.
// Beast-free; the transport files convert Beast requests into HttpRequest and back.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "config.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace syncline::server {

struct HttpRequest {
  std::string method;
  std::string target;  // raw request target
  std::string path;    // decoded path without query
  std::map<std::string, std::string> query;    // decoded; last value wins
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;       // address:port, for logs
  std::string remote_addr;  // address only: what per-address limits are keyed by

  std::string header(const std::string& lname) const {
    auto it = headers.find(lname);
    return it == headers.end() ? std::string() : it->second;
  }
  const std::string* param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// An error answered with the {"error":{...}} body (docs/protocol.md). The HTTP status is the
// code's, from the registry (src/core/error_codes.def); a code that is never an HTTP answer
// reaching here is a server bug, answered 500.
struct ApiError {
  Error error;
  int retry_after_s = 0;  // 429

  int status() const {
    int s = http_status(error.code);
    return s != 0 ? s : 500;
  }
};

ApiError api_error(RegisteredCode code, std::string message, std::string field = {});
HttpResponse error_response(const ApiError& e);
HttpResponse json_response(int status, const Json& body);

// The one entry point for JSON a client sends (HTTP bodies, WebSocket frames, the snapshot
// cursor): nesting is bounded by limits.max_json_depth while parsing, so no later copy, check or
// dump of the value can recurse deeper. Errors are 400 `invalid_json` naming `field` and the limit.
std::variant<Json, ApiError> parse_client_json(std::string_view text, const Limits& limits, const std::string& field);

}  // namespace syncline::server
