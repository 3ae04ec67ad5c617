#include "api.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/document.hpp"
#include "core/json_bounded.hpp"
#include "log.hpp"
#include "static_files.hpp"

namespace syncline::server {
namespace {

// Revision of wire protocol v1 this server speaks (docs/protocol.md): 1.1 added field
// operations, conditions and atomic groups, which a 1.0 server would ignore as unknown members;
// 1.2 added the client's round-trip probe (GET /v1/ping, WebSocket ping/pong frames).
constexpr const char* kProtocolRevision = "1.2";

ApiError api_error(RegisteredCode code, std::string message, std::string field = {}) {
  return ApiError{make_error(code, std::move(message), std::move(field)), 0};
}

bool parse_int64(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

std::variant<Json, ApiError> parse_client_json(std::string_view text, const Limits& limits, const std::string& field) {
  if (text.size() > limits.max_body_bytes) {
    return ApiError{make_error(codes::kPayloadTooLarge, field + " exceeds " + std::to_string(limits.max_body_bytes) +
                                                                " bytes (limits.max_body_bytes)", field), 0};
  }
  JsonParseError err = JsonParseError::None;
  Json j = parse_json_bounded(text, static_cast<std::size_t>(limits.max_json_depth), &err);
  if (err == JsonParseError::TooDeep) {
    return ApiError{make_error(codes::kInvalidJson, field + " nests deeper than " + std::to_string(limits.max_json_depth) +
                                                            " levels (limits.max_json_depth)", field), 0};
  }
  if (j.is_discarded()) return ApiError{make_error(codes::kInvalidJson, field + " is not valid JSON", field), 0};
  return j;
}

HttpResponse error_response(const ApiError& e) {
  Json err = {{"code", e.error.code}, {"message", e.error.message}};
  if (!e.error.field.empty()) err["field"] = e.error.field;
  HttpResponse r = json_response(e.status(), Json{{"error", err}});
  if (e.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  return r;
}

int RateLimiter::take(const std::string& key, long long now_ms) {
  if (rate_ <= 0) return 0;
  if (now_ms - last_sweep_ms_ > 60000) {
    // Forget buckets that have been full for a while so the map stays small.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      if (now_ms - it->second.last_ms > 60000) it = buckets_.erase(it);
      else ++it;
    }
    last_sweep_ms_ = now_ms;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now_ms});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + (now_ms - b.last_ms) * rate_ / 1000.0);
  b.last_ms = now_ms;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

App::App(Config config, ServerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      limiter_(config_.limits.rate_limit_per_sec, config_.limits.rate_limit_burst),
      auth_failures_(config_.limits.rate_limit_per_sec, config_.limits.rate_limit_burst),
      catchup_budget_(config_.limits.catchup_memory_bytes, config_.limits.catchup_memory_per_user) {}

App::~App() {
  if (reads_) reads_->stop();
  if (writer_) writer_->stop();
}

void App::set_stores(std::unique_ptr<Store> writer_store, std::vector<std::unique_ptr<Store>> readers, Writer::Post post) {
  published_seq_ = writer_store->head_seq();
  // Bounded like the writer's queue: a flood of snapshot requests gets 503s, not memory.
  constexpr std::size_t kMaxQueuedReads = 4096;
  reads_ = std::make_unique<ReadPool>(std::move(readers), post, kMaxQueuedReads);
  // Far above what the rate limiter lets through in normal use; a bound so a flood of
  // pipelined WebSocket batches gets 503s instead of growing memory without limit.
  constexpr std::size_t kMaxQueuedWrites = 10000;
  writer_ = std::make_unique<Writer>(
      std::move(writer_store), std::move(post),
      [this](const GroupStats& g) { metrics_.note_group(g.requests, g.commit_us, g.committed); }, kMaxQueuedWrites);
  writer_->start();
}

StreamContext App::stream_context() {
  StreamContext c;
  c.limits = &config_.limits;
  c.metrics = &metrics_;
  c.reads = reads_.get();
  c.catchup = &catchup_budget_;
  c.head_seq = [this] { return head_seq(); };
  c.pruned_through = [this] { return pruned_through(); };
  return c;
}

ApiError App::writer_unavailable() {
  metrics_.writes_refused++;
  ApiError e = shutting_down_ ? api_error(codes::kUnavailable, "server is shutting down")
                              : api_error(codes::kUnavailable, "too many writes queued");
  e.retry_after_s = 1;
  return e;
}

void App::add_cors(const HttpRequest& req, HttpResponse& res) const {
  std::string origin = req.header("origin");
  if (config_.allowed_origins.empty()) {
    res.headers.emplace_back("Access-Control-Allow-Origin", "*");
  } else if (!origin.empty() && config_.origin_allowed(origin)) {
    res.headers.emplace_back("Access-Control-Allow-Origin", origin);
    res.headers.emplace_back("Vary", "Origin");
  } else {
    return;
  }
  res.headers.emplace_back("Access-Control-Expose-Headers", "Retry-After");
  if (req.method == "OPTIONS") {
    res.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
    res.headers.emplace_back("Access-Control-Max-Age", "600");
  }
}

std::variant<Claims, ApiError> App::authenticate(const HttpRequest& req) {
  std::string token;
  std::string auth = req.header("authorization");
  if (!auth.empty()) {
    if (auth.size() < 7 || !std::equal(auth.begin(), auth.begin() + 7, "Bearer ", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return api_error(codes::kUnauthorized, "Authorization must be 'Bearer <token>'");
    }
    token = auth.substr(7);
    while (!token.empty() && token.front() == ' ') token.erase(token.begin());
  } else if (const std::string* t = req.param("access_token")) {
    token = *t;
  }
  if (token.empty()) return auth_failed(req, api_error(codes::kUnauthorized, "missing token"));
  auto claims = verify_jwt(token, config_.jwt_secret, now_unix_ms() / 1000);
  if (!claims) return auth_failed(req, ApiError{claims.error(), 0});
  return std::move(*claims);
}

std::variant<Claims, ApiError> App::admit(const HttpRequest& req) {
  auto auth = authenticate(req);
  if (auto* claims = std::get_if<Claims>(&auth)) {
    if (auto e = rate_limit("sub:" + claims->sub)) return *e;
  }
  return auth;
}

ApiError App::auth_failed(const HttpRequest& req, ApiError e) {
  // Requests without a valid token have no subject to be limited by, so their address pays:
  // once its bucket is empty they get 429 instead of 401 (a valid token from the same address is
  // limited by its own subject's bucket and keeps working).
  int wait = auth_failures_.take("ip:" + req.remote_addr, now_mono_ms());
  if (wait == 0) return e;
  metrics_.rate_limited++;
  ApiError limited = api_error(codes::kRateLimited,
                               "too many requests without a valid token; retry after " + std::to_string(wait) + " s");
  limited.retry_after_s = wait;
  return limited;
}

std::optional<ApiError> App::rate_limit(const std::string& key) {
  int wait = limiter_.take(key, now_mono_ms());
  if (wait == 0) return std::nullopt;
  metrics_.rate_limited++;
  ApiError e = api_error(codes::kRateLimited, "too many requests; retry after " + std::to_string(wait) + " s");
  e.retry_after_s = wait;
  return e;
}

void App::handle(const HttpRequest& req, Reply reply) {
  // What add_cors needs, kept small: an async reply must not hold on to the request body.
  HttpRequest cors;
  cors.method = req.method;
  if (auto it = req.headers.find("origin"); it != req.headers.end()) cors.headers.emplace(*it);
  Reply finish = [this, cors = std::move(cors), reply = std::move(reply)](HttpResponse res) {
    add_cors(cors, res);
    metrics_.http_requests++;
    if (res.status >= 500) metrics_.http_errors_5xx++;
    else if (res.status >= 400) metrics_.http_errors_4xx++;
    reply(std::move(res));
  };
  if (req.method == "OPTIONS") {
    HttpResponse res;
    res.status = 204;
    res.content_type.clear();
    return finish(std::move(res));
  }
  route(req, finish);
}

void App::route(const HttpRequest& req, const Reply& reply) {
  // Status 0 marks a route that replies itself (after a commit).
  auto replies_itself = [] {
    HttpResponse r;
    r.status = 0;
    return r;
  };
  HttpResponse res = [&]() -> HttpResponse {
  const std::string& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  auto not_allowed = [&](const char* allow) {
    HttpResponse r = error_response(api_error(codes::kMethodNotAllowed, req.method + " is not allowed on " + p));
    r.headers.emplace_back("Allow", allow);
    return r;
  };
  if (p == "/v1/health") return get ? health() : not_allowed("GET");
  if (p == "/metrics") return get ? metrics_text() : not_allowed("GET");
  if (p == "/v1/ping") return get ? ping(req) : not_allowed("GET");
  if (p == "/v1/snapshot") {
    if (!get) return not_allowed("GET");
    snapshot(req, reply);
    return replies_itself();
  }
  if (p == "/v1/mutations") {
    if (!post) return not_allowed("POST");
    post_mutations(req, reply);
    return replies_itself();
  }
  if (p == "/v1/events") {
    // GET /v1/events is the SSE stream, handled by the transport; reaching here means it was
    // not a GET.
    if (!post) return not_allowed("GET, POST");
    post_events(req, reply);
    return replies_itself();
  }
  if (p == "/v1/demo/token") {
    if (!config_.demo_tokens) return error_response(api_error(codes::kNotFound, "no such route"));
    return post ? demo_token(req) : not_allowed("POST");
  }
  if (p == "/v1/ws") {
    return error_response(api_error(codes::kInvalidRequest, "WebSocket upgrade required"));
  }
  if (p.rfind("/v1/", 0) == 0 || p == "/v1") {
    return error_response(api_error(codes::kNotFound, "no such route"));
  }
  if (auto r = serve_static(options_.static_dir, req)) return std::move(*r);
  if (p == "/" && options_.static_dir.empty()) {
    return json_response(200, {{"name", "syncline-server"}, {"protocol", "v1"}, {"revision", kProtocolRevision}, {"seq", head_seq()}});
  }
  return error_response(api_error(codes::kNotFound, "no such route"));
  }();
  if (res.status != 0) reply(std::move(res));
}

HttpResponse App::health() {
  return json_response(200, {{"status", shutting_down_ ? "shutting_down" : "ok"}, {"seq", head_seq()}, {"revision", kProtocolRevision}});
}

// The client's round-trip probe over HTTP (SSE clients cannot send on their stream). No database
// work and no body read: the answer is the io thread's head seq. A token is required (failures
// are limited per address, see auth_failed) and the probe spends the subject's rate-limit bucket
// like any request.
HttpResponse App::ping(const HttpRequest& req) {
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return error_response(*e);
  HttpResponse r = json_response(200, {{"seq", head_seq()}});
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse App::metrics_text() {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  metrics_.write_queue = static_cast<std::int64_t>(writer_->pending());
  metrics_.open_connections = static_cast<std::int64_t>(open_connections_);
  metrics_.catchup_bytes = static_cast<std::int64_t>(catchup_budget_.used());
  metrics_.catchup_waiting = static_cast<std::int64_t>(catchup_budget_.waiting());
  const long long now = now_mono_ms();
  if (!documents_reading_ && now - documents_read_ms_ > 5000) {
    documents_reading_ = reads_->submit([this](Store& store) {
      std::int64_t n = store.document_count();
      reads_->post([this, n] {
        documents_ = n;
        documents_read_ms_ = now_mono_ms();
        documents_reading_ = false;
      });
    });
  }
  r.body = metrics_.render(head_seq(), pruned_through(), documents_, now);
  return r;
}

std::variant<std::vector<std::string>, ApiError> App::parse_collections(const std::string* param,
                                                                        const Claims& claims) {
  std::vector<std::string> out;
  if (!param || param->empty()) {
    // Everything the caller may read (open mode: every collection, expressed as "no list").
    for (const auto& [name, cc] : config_.collections) {
      if (config_.read_access(name, claims).allows_any()) out.push_back(name);
    }
    return out;
  }
  std::stringstream ss(*param);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (!is_valid_collection(name)) {
      return api_error(codes::kInvalidRequest, "invalid collection name '" + name + "'", "collections");
    }
    if (!config_.collection(name)) {
      return api_error(codes::kNotFound, "unknown collection '" + name + "'", "collections");
    }
    if (!config_.read_access(name, claims).allows_any()) {
      return api_error(codes::kForbidden, "role '" + claims.role + "' may not read " + name, "collections");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  if (out.empty()) return api_error(codes::kInvalidRequest, "collections is empty", "collections");
  return out;
}

std::variant<Filter, ApiError> App::parse_where(const HttpRequest& req) const {
  const std::string* w = req.param("where");
  if (!w || w->empty()) return Filter();
  auto f = Filter::parse(*w);
  if (!f) {
    Error e = f.error();
    e.field = "where";
    return ApiError{e};
  }
  // Every condition is evaluated for every row a stream or snapshot looks at: bounded.
  constexpr std::size_t kMaxInItems = 256;
  std::size_t items = 0;
  for (const auto& c : f->conditions()) items += c.values.size();
  if (f->conditions().size() > config_.limits.max_where_conditions || items > kMaxInItems) {
    return api_error(codes::kInvalidRequest,
                     "where holds more than " + std::to_string(config_.limits.max_where_conditions) +
                         " conditions (limits.max_where_conditions) or more than " + std::to_string(kMaxInItems) +
                         " values",
                     "where");
  }
  return std::move(*f);
}

std::variant<StreamRequest, ApiError> App::open_stream(const HttpRequest& req, Transport t) {
  if (shutting_down_) return api_error(codes::kUnavailable, "server is shutting down");
  if (t == Transport::Ws) {
    std::string origin = req.header("origin");
    if (!origin.empty() && !config_.origin_allowed(origin)) {
      return api_error(codes::kForbidden, "origin '" + origin + "' is not allowed", "origin");
    }
  }
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return *e;
  Claims claims = std::get<Claims>(std::move(auth));
  if (hub_.size() >= config_.limits.max_connections) {
    ApiError e = api_error(codes::kUnavailable, "too many stream connections");
    e.retry_after_s = 5;
    return e;
  }
  if (hub_.streams_of(claims.sub) >= config_.limits.max_streams_per_user) {
    metrics_.rate_limited++;
    ApiError e = api_error(codes::kRateLimited,
                           "this token's subject already has " + std::to_string(hub_.streams_of(claims.sub)) +
                               " open streams (limits.max_streams_per_user)",
                           "sub");
    e.retry_after_s = 5;
    return e;
  }
  auto cols = parse_collections(req.param("collections"), claims);
  if (auto* e = std::get_if<ApiError>(&cols)) return *e;
  auto& list = std::get<std::vector<std::string>>(cols);
  if (list.empty() && !config_.open_mode) {
    return api_error(codes::kForbidden, "role '" + claims.role + "' may not read any collection", "collections");
  }
  auto parsed_where = parse_where(req);
  if (auto* e = std::get_if<ApiError>(&parsed_where)) return *e;
  Filter where = std::get<Filter>(std::move(parsed_where));
  std::optional<std::int64_t> cursor;
  std::string last_id = req.header("last-event-id");
  const std::string* cparam = req.param("cursor");
  const std::string* source = !last_id.empty() ? &last_id : (cparam && !cparam->empty() ? cparam : nullptr);
  if (source) {
    std::int64_t v = 0;
    if (!parse_int64(*source, v)) {
      return api_error(codes::kInvalidRequest, "cursor must be a non-negative integer seq",
                       !last_id.empty() ? "Last-Event-ID" : "cursor");
    }
    cursor = v;
  }
  bool heartbeat_event = false;
  if (const std::string* hb = req.param("heartbeat"); hb && !hb->empty()) {
    if (*hb != "event" && *hb != "comment") {
      return api_error(codes::kInvalidRequest, "heartbeat must be \"comment\" or \"event\"", "heartbeat");
    }
    heartbeat_event = *hb == "event";
  }
  return StreamRequest{Subscription(config_, std::move(claims), std::move(list), std::move(where)), cursor,
                       heartbeat_event, nullptr};
}

void App::snapshot(const HttpRequest& req, const Reply& reply) {
  auto res = snapshot_request(req, reply);
  if (res) reply(std::move(*res));
}

// Validates on the io thread; reads and serialises on a reader thread (nullopt: it replies).
std::optional<HttpResponse> App::snapshot_request(const HttpRequest& req, const Reply& reply) {
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return error_response(*e);
  Claims claims = std::get<Claims>(std::move(auth));
  auto cols = parse_collections(req.param("collections"), claims);
  if (auto* e = std::get_if<ApiError>(&cols)) return error_response(*e);
  auto list = std::get<std::vector<std::string>>(std::move(cols));
  if (list.empty()) {
    if (config_.open_mode) {
      return error_response(api_error(codes::kInvalidRequest, "collections is required", "collections"));
    }
    return error_response(
        api_error(codes::kForbidden, "role '" + claims.role + "' may not read any collection", "collections"));
  }
  std::sort(list.begin(), list.end());
  auto parsed_where = parse_where(req);
  if (auto* e = std::get_if<ApiError>(&parsed_where)) return error_response(*e);
  Filter where = std::get<Filter>(std::move(parsed_where));
  std::size_t limit = config_.limits.snapshot_default_limit;
  if (const std::string* l = req.param("limit"); l && !l->empty()) {
    std::int64_t v = 0;
    if (!parse_int64(*l, v) || v < 1) {
      return error_response(api_error(codes::kInvalidRequest, "limit must be a positive integer", "limit"));
    }
    limit = std::min<std::size_t>(static_cast<std::size_t>(v), config_.limits.snapshot_max_limit);
  }
  // The `after` cursor is opaque to clients: base64url(JSON {"c":collection,"i":id,"s":seq}).
  std::optional<std::pair<std::string, std::string>> after;
  std::optional<std::int64_t> first_seq;
  if (const std::string* a = req.param("after"); a && !a->empty()) {
    std::string raw;
    Json j;
    if (base64url_decode(*a, raw)) {
      auto parsed = parse_client_json(raw, config_.limits, "after");
      if (auto* pj = std::get_if<Json>(&parsed)) j = std::move(*pj);
    }
    if (!j.is_object() || !j.contains("c") || !j["c"].is_string() || !j.contains("i") || !j["i"].is_string() ||
        !j.contains("s") || !j["s"].is_number_integer()) {
      return error_response(api_error(codes::kInvalidRequest, "after is not a cursor returned by this server", "after"));
    }
    after = std::make_pair(j["c"].get<std::string>(), j["i"].get<std::string>());
    first_seq = j["s"].get<std::int64_t>();
  }
  Subscription sub(config_, claims, list, where);
  // Narrow each collection's read to the caller's own documents where its rule compares a field
  // with a claim: the cost of a scoped snapshot follows what the caller may see.
  std::map<std::string, ScopeKey> keys;
  for (const auto& c : list) {
    const Access& a = sub.access(c);
    if (a.kind != Access::Kind::Where) continue;
    for (const auto& cond : a.filter.conditions()) {
      if (cond.exact_string && cond.op == FilterOp::Eq && cond.values.size() == 1) {
        keys.emplace(c, ScopeKey{cond.path, cond.values[0]});
        break;
      }
    }
  }
  // Everything up to the broadcast head is committed, so the read transaction sees at least
  // that state; a stream opened at this seq misses nothing (newer rows it may already contain
  // are replayed as no-ops). Every page reports the seq of the first page: documents on later
  // pages may be newer, which is harmless (replaying older changes is a no-op), while starting
  // the stream at the first page's seq guarantees nothing that changed between pages is missed.
  const std::int64_t seq = first_seq ? *first_seq : head_seq();
  auto job = [this, reply, sub = std::move(sub), list = std::move(list), keys = std::move(keys), after, limit,
              seq](Store& store) {
    auto page = store.snapshot(
        list, after, limit, [&](const Document& d) { return sub.access(d.collection).matches(d.id, d.fields); }, keys,
        &metrics_.snapshot_rows_read, config_.limits.snapshot_max_bytes);
    HttpResponse res;
    if (!page) {
      res = error_response(api_error(codes::kInternal, page.error().message));
    } else {
      Json docs = Json::array();
      for (const auto& d : page->docs) docs.push_back(document_to_json(d));
      Json next = nullptr;
      if (page->next) {
        Json c = {{"c", page->next->first}, {"i", page->next->second}, {"s", seq}};
        next = base64url_encode(c.dump());
      }
      res = json_response(200, {{"seq", seq}, {"docs", std::move(docs)}, {"next", next}});
    }
    reads_->post([reply, res = std::move(res)]() mutable { reply(std::move(res)); });
  };
  if (!reads_->submit(std::move(job))) {
    ApiError e = api_error(codes::kUnavailable, "too many reads queued; retry later");
    e.retry_after_s = 1;
    return error_response(e);
  }
  return std::nullopt;
}

bool App::mutate(const Claims& claims, const Json& body, MutateDone done) {
  auto refuse = [&done](ApiError e) {
    done(std::move(e));
    return false;
  };
  if (!body.is_object()) return refuse(api_error(codes::kInvalidRequest, "body must be a JSON object"));
  if (body.contains("mutations") && body["mutations"].is_array() &&
      body["mutations"].size() > config_.limits.max_batch) {
    metrics_.batches_refused++;
    return refuse(api_error(codes::kPayloadTooLarge,
                          "a batch holds at most " + std::to_string(config_.limits.max_batch) + " mutations",
                          "mutations"));
  }
  DecodeLimits dl;
  dl.max_batch = config_.limits.max_batch;
  auto batch = decode_mutation_batch(body, dl);
  if (!batch) {
    metrics_.batches_refused++;
    return refuse(ApiError{batch.error()});
  }
  if (!is_valid_id(batch->client)) {
    metrics_.batches_refused++;
    return refuse(api_error(codes::kInvalidRequest, "client must match ^[A-Za-z0-9_.:-]{1,128}$", "client"));
  }
  std::int64_t prev = 0;
  for (std::size_t i = 0; i < batch->mutations.size(); ++i) {
    const Mutation& m = batch->mutations[i];
    std::string f = "mutations[" + std::to_string(i) + "]";
    if (m.mid <= 0 || m.mid <= prev) {
      metrics_.batches_refused++;
      return refuse(api_error(codes::kInvalidRequest,
                            "mids must be positive and strictly increasing within a batch", f + ".mid"));
    }
    prev = m.mid;
    if (m.condition && m.condition->conditions().size() > config_.limits.max_where_conditions) {
      metrics_.batches_refused++;
      return refuse(api_error(codes::kInvalidRequest,
                              "if holds more than " + std::to_string(config_.limits.max_where_conditions) +
                                  " conditions (limits.max_where_conditions)",
                              f + ".if"));
    }
    if (!config_.collection(m.collection)) {
      metrics_.batches_refused++;
      return refuse(api_error(codes::kNotFound, "unknown collection '" + m.collection + "'", f + ".collection"));
    }
    if (!config_.write_access(m.collection, m.op, claims).allows_any()) {
      metrics_.batches_refused++;
      return refuse(api_error(codes::kForbidden,
                            "role '" + claims.role + "' may not " + to_string(m.op) + " " + m.collection,
                            f + ".collection"));
    }
  }
  if (shutting_down_) return refuse(writer_unavailable());
  WriteRequest wr;
  wr.kind = WriteRequest::Kind::Mutate;
  wr.client = batch->client;
  wr.subject = claims.sub;
  wr.mutations = std::move(batch->mutations);
  // Runs on the writer thread: it captures the claims by value and reads only the config,
  // which is immutable while the server runs.
  const Config* config = &config_;
  wr.check = [config, claims](const Mutation& m, const Document* before, const Json* after) -> std::optional<Error> {
    Access a = config->write_access(m.collection, m.op, claims);
    if (a.kind == Access::Kind::All) return std::nullopt;
    if (a.kind == Access::Kind::None) return make_error(codes::kForbidden, "write not allowed", "collection");
    if (before && !a.filter.matches(m.id, before->fields)) {
      return make_error(codes::kForbidden, "the document is outside what this token may write", "id");
    }
    if (after && !a.filter.matches(m.id, *after)) {
      return make_error(codes::kForbidden, "the result is outside what this token may write (" + a.filter.to_string() + ")",
                        "fields");
    }
    return std::nullopt;
  };
  wr.readable = [config, claims](const Mutation& m, const Document& doc) {
    return config->read_access(m.collection, claims).matches(m.id, doc.fields);
  };
  bool queued = writer_->submit(std::move(wr), [this, done](WriteOutcome o) {
    if (o.error) {
      metrics_.batches_refused++;
      if (o.error->code == codes::kForbidden) return done(ApiError{*o.error, 0});
      log_error("mutation batch failed", {{"error", o.error->message}});
      return done(api_error(codes::kInternal, "internal error while committing the batch"));
    }
    for (const auto& r : o.batch.results.results) {
      if (r.status == ResultStatus::Applied) metrics_.mutations_applied++;
      else if (r.status == ResultStatus::Rejected) metrics_.mutations_rejected++;
      else metrics_.mutations_duplicate++;
    }
    MutationResults results = std::move(o.batch.results);
    // Broadcast first, then answer: the caller's own stream sees the change no later than
    // the ack, as before.
    fan_out(std::move(o.batch.rows));
    done(std::move(results));
  });
  if (!queued) done(writer_unavailable());
  return queued;
}

void App::fan_out(std::vector<LogRow> rows) {
  if (rows.empty()) return;
  std::int64_t changes = 0;
  for (auto& row : rows) {
    if (row.is_event) metrics_.events_total++;
    else ++changes;
    const std::int64_t seq = row.seq;
    hub_.broadcast(make_outgoing(std::move(row)));
    // Completions arrive in seq order (one writer, one post per group, in order), so this
    // only grows; a stream that turns live now reads the log up to here and gets the rest live.
    published_seq_ = std::max(published_seq_, seq);
  }
  metrics_.changes_total += changes;
  if (changes) metrics_.note_changes(changes, now_mono_ms());
}

bool App::publish(const Claims& claims, const Json& body, PublishDone done) {
  auto refuse = [&done](ApiError e) {
    done(std::move(e));
    return false;
  };
  auto req = decode_publish(body);
  if (!req) return refuse(ApiError{req.error()});
  PublishCheck check;
  if (req->collection.empty() && !config_.events.may_publish(claims.role)) {
    return refuse(api_error(codes::kForbidden,
                            "role '" + claims.role + "' may not publish events without a collection (config: events.publish)",
                            "collection"));
  }
  if (!req->collection.empty()) {
    if (!is_valid_collection(req->collection)) {
      return refuse(api_error(codes::kInvalidRequest, "invalid collection name", "collection"));
    }
    if (!config_.collection(req->collection)) {
      return refuse(api_error(codes::kNotFound, "unknown collection '" + req->collection + "'", "collection"));
    }
    Access a = config_.read_access(req->collection, claims);
    if (!a.allows_any()) {
      return refuse(
          api_error(codes::kForbidden, "role '" + claims.role + "' may not read " + req->collection, "collection"));
    }
    if (a.kind == Access::Kind::Where) {
      // A scoped caller may only publish about a document it can read. Decided by the writer,
      // on the document as it is when the event gets its seq. An invalid id names no document.
      std::string refusal = "events on " + req->collection + " need a document this token may read";
      if (req->id.empty() || !is_valid_id(req->id)) return refuse(api_error(codes::kForbidden, refusal, "id"));
      check = [a, id = req->id, refusal](const std::optional<Document>& doc) -> std::optional<Error> {
        if (!doc || !a.matches(id, doc->fields)) return make_error(codes::kForbidden, refusal, "id");
        return std::nullopt;
      };
    }
  }
  if (!req->id.empty() && !is_valid_id(req->id)) return refuse(api_error(codes::kInvalidRequest, "invalid id", "id"));
  if (shutting_down_) return refuse(writer_unavailable());
  WriteRequest wr;
  wr.kind = WriteRequest::Kind::Publish;
  wr.event = std::move(*req);
  wr.event_check = std::move(check);
  bool queued = writer_->submit(std::move(wr), [this, done](WriteOutcome o) {
    if (o.error) {
      if (o.error->code == codes::kForbidden) return done(ApiError{*o.error, 0});
      log_error("publish failed", {{"error", o.error->message}});
      return done(api_error(codes::kInternal, "internal error while publishing"));
    }
    std::int64_t seq = o.event->seq;
    std::vector<LogRow> rows;
    rows.push_back(std::move(*o.event));
    fan_out(std::move(rows));
    done(seq);
  });
  if (!queued) done(writer_unavailable());
  return queued;
}

void App::post_mutations(const HttpRequest& req, const Reply& reply) {
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return reply(error_response(*e));
  Claims claims = std::get<Claims>(std::move(auth));
  auto parsed = parse_client_json(req.body, config_.limits, "body");
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply(error_response(*e));
  const Json& body = std::get<Json>(parsed);
  mutate(claims, body, [reply](std::variant<MutationResults, ApiError> out) {
    if (auto* e = std::get_if<ApiError>(&out)) return reply(error_response(*e));
    reply(json_response(200, encode(std::get<MutationResults>(out))));
  });
}

void App::post_events(const HttpRequest& req, const Reply& reply) {
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return reply(error_response(*e));
  Claims claims = std::get<Claims>(std::move(auth));
  auto parsed = parse_client_json(req.body, config_.limits, "body");
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply(error_response(*e));
  const Json& body = std::get<Json>(parsed);
  publish(claims, body, [reply](std::variant<std::int64_t, ApiError> out) {
    if (auto* e = std::get_if<ApiError>(&out)) return reply(error_response(*e));
    reply(json_response(200, {{"seq", std::get<std::int64_t>(out)}}));
  });
}

HttpResponse App::demo_token(const HttpRequest& req) {
  if (auto e = rate_limit("ip:" + req.remote_addr)) return error_response(*e);
  auto parsed = parse_client_json(req.body, config_.limits, "body");
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const Json& body = std::get<Json>(parsed);
  if (!body.is_object()) return error_response(api_error(codes::kInvalidRequest, "body must be an object"));
  for (const char* k : {"sub", "role"}) {
    if (!body.contains(k) || !body[k].is_string() || !is_valid_id(body[k].get<std::string>())) {
      return error_response(
          api_error(codes::kInvalidRequest, std::string(k) + " must match ^[A-Za-z0-9_.:-]{1,128}$", k));
    }
  }
  long long now = now_unix_ms() / 1000;
  Json payload = {{"sub", body["sub"]}, {"role", body["role"]}, {"iat", now},
                  {"exp", now + config_.limits.demo_token_ttl_s}};
  return json_response(200, {{"token", sign_jwt(payload, config_.jwt_secret)}});
}

}  // namespace syncline::server
