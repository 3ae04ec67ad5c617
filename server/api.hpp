// Layer: server. The application: shared state (config, stores, writer, hub, metrics, rate
// limiters) and every HTTP route that is not a long-lived stream, as a function of a parsed
// request. Beast-free so it compiles quickly; the transport files (http_session, sse_session,
// ws_session) convert Beast requests into HttpRequest and call in here.
//
// One request pipeline for every route (api.cpp): route table (path, then method) -> admit (the
// token, then its subject's rate limit; or the caller's address's limit) -> typed body (the JSON
// body through the bounded parser, decoded into the route's request type) -> handler. A step
// that refuses answers with its 4xx JSON error and the later steps never run, so a handler only
// holds its own logic. The handlers live by concern: api_writes.cpp (mutations, events),
// api_reads.cpp (snapshot, stream validation), api_service.cpp (health, metrics, ping, the demo
// token issuer).
//
// Threads: everything here runs on the io thread except the Writer's thread, which owns the
// writer connection and commits writes in groups, and the reader threads (read_pool.hpp), each
// with its own read-only connection. The io thread's idea of the head is `head_seq()`: the
// highest seq it has broadcast. Every seq up to it is committed (commit happens before the
// completion is posted), which is what stream resume and snapshots rely on.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "core/protocol.hpp"
#include "http_types.hpp"
#include "hub.hpp"
#include "log_sequencer.hpp"
#include "log_tailer.hpp"
#include "metrics.hpp"
#include "rate_limiter.hpp"
#include "read_pool.hpp"
#include "store.hpp"
#include "writer.hpp"

namespace syncline::server {

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
  // `tail_store`: for a database other nodes write too (Store::shared()), a reader for the
  // LogTailer that brings their rows to this node's streams; null otherwise.
  void set_stores(std::unique_ptr<Store> writer_store, std::vector<std::unique_ptr<Store>> readers, Writer::Post post,
                  std::unique_ptr<Store> tail_store = nullptr);

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
  std::int64_t head_seq() const { return sequencer_ ? sequencer_->head() : 0; }
  // Rows up to this seq may be gone from the log (thread-safe, raised before a prune).
  std::int64_t pruned_through() const { return writer_->pruned_through(); }
  // False while a node of a shared database cannot read it (its tailer's last read failed).
  bool database_reachable() const { return !tailer_ || tailer_->database_reachable(); }
  // Stops following other nodes' commits (before the io_context it posts to goes away).
  void stop_tailer() {
    if (tailer_) tailer_->stop();
  }
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
  // --- The request pipeline (api.cpp) ---
  // Who a route admits: anyone; a valid token, whose subject's bucket pays; or anyone, with the
  // caller's address's bucket paying (a route that issues tokens cannot ask for one).
  enum class Admit { Open, Token, Address };
  // One admitted request on its way to its handler. `req` and `reply` are valid only while the
  // handler runs: one that answers later copies `reply` and what it needs of `req`.
  struct Call {
    const HttpRequest& req;
    const Reply& reply;
    Claims claims;  // Admit::Token routes only
  };
  using Handler = void (App::*)(Call&);
  struct Route {
    std::string_view path;
    std::string_view method;  // what the route takes ("GET" takes HEAD too); empty: any method
    std::string_view allow;   // the Allow header of a 405
    Admit admit;
    bool Config::*enabled;    // the config switch the route needs (nullptr: always on); off: 404
    Handler handle;
  };
  static const std::vector<Route>& routes();
  void dispatch(const HttpRequest& req, const Reply& reply);
  // The typed-body step: the body through parse_client_json (field "body"), then `Decode` (a
  // member `std::variant<T, ApiError> (const Json&)`) into the route's request type, then
  // `Handle` (a member `void (Call&, T)`).
  template <auto Decode, auto Handle>
  void with_body(Call& c);

  // --- Writes (api_writes.cpp) ---
  // The typed bodies; the batch refusals count in metrics.batches_refused.
  std::variant<MutationBatch, ApiError> decode_mutations(const Json& body);
  std::variant<PublishRequest, ApiError> decode_event(const Json& body);
  bool submit_batch(const Claims& claims, MutationBatch batch, MutateDone done);
  bool submit_event(const Claims& claims, PublishRequest event, PublishDone done);
  void post_mutations(Call& c, MutationBatch batch);
  void post_events(Call& c, PublishRequest event);
  // Refusal for a write the writer cannot take (queue full, stopping).
  ApiError writer_unavailable();
  // This node's committed rows, to the sequencer (which broadcasts them in seq order).
  void fan_out(std::vector<LogRow> rows);
  // Broadcasts one row (the sequencer's output).
  void broadcast(LogRow row);
  // Rows another node committed, read by the tailer.
  void tailed(std::vector<LogRow> rows);

  // --- Reads (api_reads.cpp) ---
  void snapshot(Call& c);
  std::variant<std::vector<std::string>, ApiError> parse_collections(const std::string* param,
                                                                     const Claims& claims);
  // ?where= of a stream or snapshot, bounded by limits.max_where_conditions.
  std::variant<Filter, ApiError> parse_where(const HttpRequest& req) const;

  // --- Service routes (api_service.cpp) ---
  struct TokenRequest {
    std::string sub;
    std::string role;
  };
  void health(Call& c);
  void metrics_text(Call& c);
  void ping(Call& c);
  void upgrade_required(Call& c);
  std::variant<TokenRequest, ApiError> decode_token_request(const Json& body);
  void demo_token(Call& c, TokenRequest t);
  HttpResponse root_info();

  ApiError auth_failed(const HttpRequest& req, ApiError e);
  // The address per-address limits are keyed by: the peer, or behind a trusted proxy the
  // address that proxy saw (config.trusted_proxies).
  std::string client_address(const HttpRequest& req) const;

  Config config_;
  std::unique_ptr<Writer> writer_;  // owns the writer Store
  std::unique_ptr<ReadPool> reads_;  // owns the reader Stores
  ServerOptions options_;
  Hub hub_;
  Metrics metrics_;
  RateLimiter limiter_;
  RateLimiter auth_failures_;  // per address, for requests without a valid token
  CatchupBudget catchup_budget_;
  std::unique_ptr<LogSequencer> sequencer_;
  // sequencer_->head() for the tailer's thread.
  std::atomic<std::int64_t> broadcast_head_{0};
  std::unique_ptr<LogTailer> tailer_;
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
