// Layer: server. The application: shared state (config, stores, writer, hub, metrics, rate
// limiter) and every HTTP route that is not a long-lived stream, as a function of a parsed
// request. Beast-free so it compiles quickly; the transport files (http_session, sse_session,
// ws_session) convert Beast requests into HttpRequest and call in here.
//
// Threads: everything here runs on the io thread except the Writer's thread, which owns the
// writer connection and commits writes in groups. Reads use a second (reader) connection on the
// io thread. The io thread's idea of the head is `head_seq()`: the highest seq it has
// broadcast. Every seq up to it is committed (commit happens before the completion is posted),
// which is what stream resume and snapshots rely on.
#pragma once
#include <cstdint>
#include <functional>
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
#include "read_pool.hpp"
#include "store.hpp"
#include "writer.hpp"

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

HttpResponse error_response(const ApiError& e);

// The one entry point for JSON a client sends (HTTP bodies, WebSocket frames, the snapshot
// cursor): nesting is bounded by limits.max_json_depth while parsing, so no later copy, check or
// dump of the value can recurse deeper. Errors are 400 `invalid_json` naming `field` and the limit.
std::variant<Json, ApiError> parse_client_json(std::string_view text, const Limits& limits, const std::string& field);
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
  // The accepted connection's slot (App::connection_slot), kept by the stream session.
  std::shared_ptr<void> connection;
};

struct ServerOptions {
  std::string static_dir;  // empty: no static files
};

class App {
 public:
  App(Config config, ServerOptions options);
  ~App();
  // The stores keep a reference to config(), so they are opened after the App and handed in
  // (one reader connection per reader thread: limits.read_threads). `post` schedules a function
  // on the io thread (the writer and the readers hand their results back with it). Starts the
  // writer and reader threads.
  void set_stores(std::unique_ptr<Store> writer_store, std::vector<std::unique_ptr<Store>> readers, Writer::Post post);

  using Reply = std::function<void(HttpResponse)>;
  // Any non-stream route (including static files and CORS preflight). Most routes reply before
  // returning; POST /v1/mutations and POST /v1/events reply once the writer has committed.
  void handle(const HttpRequest& req, Reply reply);

  // Validates a stream request (SSE or WebSocket): auth, rate limit, collections, where,
  // cursor (Last-Event-ID header wins over ?cursor=), WebSocket Origin.
  std::variant<StreamRequest, ApiError> open_stream(const HttpRequest& req, Transport t);

  // Shared by HTTP and WebSocket: authenticate was done by the caller. `done` runs on the io
  // thread, at once for a refused request, else after the commit and after the resulting
  // changes were broadcast. Returns true when the request was valid and handed to the writer
  // (`done` has not run yet), false when it was answered at once.
  using MutateDone = std::function<void(std::variant<MutationResults, ApiError>)>;
  bool mutate(const Claims& claims, const Json& body, MutateDone done);
  using PublishDone = std::function<void(std::variant<std::int64_t, ApiError>)>;
  bool publish(const Claims& claims, const Json& body, PublishDone done);

  // Verifies the bearer token (or ?access_token=). A failure is 401, or 429 once the caller's
  // address has failed too often (see auth_failed).
  std::variant<Claims, ApiError> authenticate(const HttpRequest& req);
  // Every route with a token starts here: the token checked, then its subject's rate limit.
  std::variant<Claims, ApiError> admit(const HttpRequest& req);
  std::optional<ApiError> rate_limit(const std::string& key);

  // CORS headers for a response to `origin`.
  void add_cors(const HttpRequest& req, HttpResponse& res) const;

  const Config& config() const { return config_; }
  // The highest seq broadcast to streams (see the threads note above).
  std::int64_t head_seq() const { return published_seq_; }
  // Rows up to this seq may be gone from the log (thread-safe, raised before a prune).
  std::int64_t pruned_through() const { return writer_->pruned_through(); }
  // Reads off the io thread (catch-up, snapshots, counts).
  ReadPool& reads() { return *reads_; }
  CatchupBudget& catchup_budget() { return catchup_budget_; }
  // What a stream session may use of the App (after set_stores).
  StreamContext stream_context();
  Writer& writer() { return *writer_; }
  Hub& hub() { return hub_; }
  Metrics& metrics() { return metrics_; }
  // Accepted TCP connections still open, of any kind. A slot counts one until it is destroyed
  // (with the session that owns the socket).
  std::size_t open_connections() const { return open_connections_; }
  std::size_t connections_from(const std::string& address) const {
    auto it = connections_by_address_.find(address);
    return it == connections_by_address_.end() ? 0 : it->second;
  }
  std::shared_ptr<void> connection_slot(const std::string& address) {
    ++open_connections_;
    ++connections_by_address_[address];
    return std::shared_ptr<void>(nullptr, [this, address](void*) {
      --open_connections_;
      auto it = connections_by_address_.find(address);
      if (it != connections_by_address_.end() && --it->second == 0) connections_by_address_.erase(it);
    });
  }
  bool shutting_down() const { return shutting_down_; }
  void set_shutting_down() { shutting_down_ = true; }

 private:
  void route(const HttpRequest& req, const Reply& reply);
  HttpResponse health();
  HttpResponse ping(const HttpRequest& req);
  void snapshot(const HttpRequest& req, const Reply& reply);
  std::optional<HttpResponse> snapshot_request(const HttpRequest& req, const Reply& reply);
  void post_mutations(const HttpRequest& req, const Reply& reply);
  void post_events(const HttpRequest& req, const Reply& reply);
  HttpResponse demo_token(const HttpRequest& req);
  HttpResponse metrics_text();
  std::variant<std::vector<std::string>, ApiError> parse_collections(const std::string* param,
                                                                     const Claims& claims);
  // Refusal for a write the writer cannot take (queue full, stopping).
  ApiError writer_unavailable();
  ApiError auth_failed(const HttpRequest& req, ApiError e);
  // ?where= of a stream or snapshot, bounded by limits.max_where_conditions.
  std::variant<Filter, ApiError> parse_where(const HttpRequest& req) const;
  void fan_out(std::vector<LogRow> rows);

  Config config_;
  std::unique_ptr<Writer> writer_;  // owns the writer Store
  std::unique_ptr<ReadPool> reads_;  // owns the reader Stores
  ServerOptions options_;
  Hub hub_;
  Metrics metrics_;
  RateLimiter limiter_;
  RateLimiter auth_failures_;  // per address, for requests without a valid token
  CatchupBudget catchup_budget_;
  std::int64_t published_seq_ = 0;
  std::size_t open_connections_ = 0;
  std::unordered_map<std::string, std::size_t> connections_by_address_;
  // /metrics reports the live document count as last read (a count scans the table, so it is
  // refreshed on a reader thread at most every few seconds, never on the io thread).
  std::int64_t documents_ = 0;
  long long documents_read_ms_ = -1000000;
  bool documents_reading_ = false;
  bool shutting_down_ = false;
};

}  // namespace syncline::server
