// Layer: server. The application: shared state (config, store, hub, metrics, rate limiter) and
// every HTTP route that is not a long-lived stream, as a pure function of a parsed request.
// Beast-free so it compiles quickly; the transport files (http_session, sse_session,
// ws_session) convert Beast requests into HttpRequest and call in here.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "core/protocol.hpp"
#include "hub.hpp"
#include "metrics.hpp"
#include "store.hpp"

namespace syncline::server {

struct HttpRequest {
  std::string method;
  std::string target;  // raw request target
  std::string path;    // decoded path without query
  std::map<std::string, std::string> query;    // decoded; last value wins
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;

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

// An error answered with the design's {"error":{...}} body.
struct ApiError {
  int status = 400;
  Error error;
  int retry_after_s = 0;  // 429
};

HttpResponse error_response(const ApiError& e);
HttpResponse json_response(int status, const Json& body);

// Token-bucket rate limiter keyed by caller (token subject, else remote address).
class RateLimiter {
 public:
  RateLimiter(double per_sec, double burst) : rate_(per_sec), burst_(burst) {}
  // Returns 0 when allowed, else the seconds to wait.
  int take(const std::string& key, long long now_ms);

 private:
  struct Bucket {
    double tokens;
    long long last_ms;
  };
  double rate_, burst_;
  std::unordered_map<std::string, Bucket> buckets_;
  long long last_sweep_ms_ = 0;
};

struct StreamRequest {
  Subscription sub;
  std::optional<std::int64_t> cursor;
  // SSE `?heartbeat=event`: heartbeats as `event: heartbeat` (EventSource cannot see comments).
  bool heartbeat_event = false;
};

struct ServerOptions {
  std::string static_dir;  // empty: no static files
};

class App {
 public:
  App(Config config, std::unique_ptr<Store> store, ServerOptions options);
  // The store keeps a reference to config(), so it is opened after the App and handed in.
  void set_store(std::unique_ptr<Store> store) { store_ = std::move(store); }

  // Any non-stream route (including static files and CORS preflight).
  HttpResponse handle(const HttpRequest& req);

  // Validates a stream request (SSE or WebSocket): auth, rate limit, collections, where,
  // cursor (Last-Event-ID header wins over ?cursor=), WebSocket Origin.
  std::variant<StreamRequest, ApiError> open_stream(const HttpRequest& req, Transport t);

  // Shared by HTTP and WebSocket: authenticate was done by the caller.
  std::variant<MutationResults, ApiError> mutate(const Claims& claims, const Json& body);
  std::variant<std::int64_t, ApiError> publish(const Claims& claims, const Json& body);

  std::variant<Claims, ApiError> authenticate(const HttpRequest& req);
  std::optional<ApiError> rate_limit(const std::string& key);

  // CORS headers for a response to `origin`.
  void add_cors(const HttpRequest& req, HttpResponse& res) const;

  const Config& config() const { return config_; }
  Store& store() { return *store_; }
  Hub& hub() { return hub_; }
  Metrics& metrics() { return metrics_; }
  bool shutting_down() const { return shutting_down_; }
  void set_shutting_down() { shutting_down_ = true; }

 private:
  HttpResponse route(const HttpRequest& req);
  HttpResponse health();
  HttpResponse snapshot(const HttpRequest& req);
  HttpResponse post_mutations(const HttpRequest& req);
  HttpResponse post_events(const HttpRequest& req);
  HttpResponse demo_token(const HttpRequest& req);
  HttpResponse metrics_text();
  std::variant<std::vector<std::string>, ApiError> parse_collections(const std::string* param,
                                                                     const Claims& claims);
  void fan_out(std::vector<LogRow> rows);

  Config config_;
  std::unique_ptr<Store> store_;
  ServerOptions options_;
  Hub hub_;
  Metrics metrics_;
  RateLimiter limiter_;
  bool shutting_down_ = false;
};

}  // namespace syncline::server
