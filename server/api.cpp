// Layer: server. The App's construction, admission (token, rate limits), CORS and the one
// request pipeline every non-stream route runs through (see api.hpp).
#include "api.hpp"

#include <algorithm>
#include <cctype>

#include "log.hpp"
#include "static_files.hpp"

namespace syncline::server {

App::App(Config config, ServerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      limiter_(config_.limits.rate_limit_per_sec, config_.limits.rate_limit_burst),
      auth_failures_(config_.limits.rate_limit_per_sec, config_.limits.rate_limit_burst),
      catchup_budget_(config_.limits.catchup_memory_bytes, config_.limits.catchup_memory_per_user) {}

App::~App() {
  if (tailer_) tailer_->stop();
  if (reads_) reads_->stop();
  if (writer_) writer_->stop();
}

void App::set_stores(std::unique_ptr<Store> writer_store, std::vector<std::unique_ptr<Store>> readers, Writer::Post post,
                     std::unique_ptr<Store> tail_store) {
  broadcast_head_ = writer_store->head_seq();
  sequencer_ = std::make_unique<LogSequencer>(
      writer_store->head_seq(), [this](LogRow row) { broadcast(std::move(row)); },
      [this](std::int64_t head, std::int64_t next) {
        // Rows were pruned before this node read them: its live streams would miss them. Cut
        // them off before anything past the hole goes out; they resume from their cursors (a
        // reset where the log no longer reaches).
        log_error("log gap: rows pruned before this node broadcast them", {{"head", head}, {"next", next}});
        hub_.shutdown_all("log_gap");
      });
  if (tail_store) {
    tailer_ = std::make_unique<LogTailer>(
        std::move(tail_store), [this] { return broadcast_head_.load(); }, post,
        [this](std::vector<LogRow> rows) { tailed(std::move(rows)); });
  }
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
  if (tailer_) tailer_->start();
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

// --- Admission ---

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

std::string App::client_address(const HttpRequest& req) const {
  const auto& proxies = config_.trusted_proxies;
  auto trusted = [&](const std::string& a) { return std::find(proxies.begin(), proxies.end(), a) != proxies.end(); };
  if (proxies.empty() || !trusted(req.remote_addr)) return req.remote_addr;
  // Right to left: entries added by trusted proxies are skipped; the first other one is the
  // address the outermost trusted proxy saw (entries further left are the client's own claims).
  std::string xff = req.header("x-forwarded-for");
  std::string addr = req.remote_addr;
  std::size_t end = xff.size();
  while (end > 0) {
    std::size_t comma = xff.rfind(',', end - 1);
    std::size_t begin = comma == std::string::npos ? 0 : comma + 1;
    std::string part = xff.substr(begin, end - begin);
    part.erase(0, part.find_first_not_of(" \t"));
    part.erase(part.find_last_not_of(" \t") + 1);
    if (part.empty() || part.size() > 64) break;
    addr = part;
    if (!trusted(part)) break;
    if (comma == std::string::npos) break;
    end = comma;
  }
  return addr;
}

ApiError App::auth_failed(const HttpRequest& req, ApiError e) {
  // Requests without a valid token have no subject to be limited by, so their address pays:
  // once its bucket is empty they get 429 instead of 401 (a valid token from the same address is
  // limited by its own subject's bucket and keeps working).
  int wait = auth_failures_.take("ip:" + client_address(req), now_mono_ms());
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

// --- The request pipeline ---

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
  dispatch(req, finish);
}

template <auto Decode, auto Handle>
void App::with_body(Call& c) {
  auto json = parse_client_json(c.req.body, config_.limits, "body");
  if (auto* e = std::get_if<ApiError>(&json)) return c.reply(error_response(*e));
  auto typed = (this->*Decode)(std::get<Json>(json));
  if (auto* e = std::get_if<ApiError>(&typed)) return c.reply(error_response(*e));
  (this->*Handle)(c, std::get<0>(std::move(typed)));
}

// Every non-stream /v1 route (and /metrics). The steps run in a fixed order, so a wrong method
// is a 405 before any token is looked at, and a bad body from a caller without a valid token is
// a 401 (or 429), never a 400.
const std::vector<App::Route>& App::routes() {
  static const std::vector<Route> table = {
      {"/v1/health", "GET", "GET", Admit::Open, nullptr, &App::health},
      {"/metrics", "GET", "GET", Admit::Open, nullptr, &App::metrics_text},
      {"/v1/ping", "GET", "GET", Admit::Token, nullptr, &App::ping},
      {"/v1/snapshot", "GET", "GET", Admit::Token, nullptr, &App::snapshot},
      {"/v1/mutations", "POST", "POST", Admit::Token, nullptr,
       &App::with_body<&App::decode_mutations, &App::post_mutations>},
      // GET /v1/events is the SSE stream, taken by the transport before it gets here.
      {"/v1/events", "POST", "GET, POST", Admit::Token, nullptr,
       &App::with_body<&App::decode_event, &App::post_events>},
      {"/v1/demo/token", "POST", "POST", Admit::Address, &Config::demo_tokens,
       &App::with_body<&App::decode_token_request, &App::demo_token>},
      // The transport takes WebSocket upgrades; whatever reaches here was not one.
      {"/v1/ws", "", "", Admit::Open, nullptr, &App::upgrade_required},
  };
  return table;
}

void App::dispatch(const HttpRequest& req, const Reply& reply) {
  const std::string& p = req.path;
  const auto& table = routes();
  auto route = std::find_if(table.begin(), table.end(), [&](const Route& r) { return r.path == p; });
  if (route == table.end()) {
    if (p.rfind("/v1/", 0) == 0 || p == "/v1") return reply(error_response(api_error(codes::kNotFound, "no such route")));
    if (auto r = serve_static(options_.static_dir, req)) return reply(std::move(*r));
    if (p == "/" && options_.static_dir.empty()) return reply(root_info());
    return reply(error_response(api_error(codes::kNotFound, "no such route")));
  }
  if (route->enabled && !(config_.*(route->enabled))) {
    return reply(error_response(api_error(codes::kNotFound, "no such route")));
  }
  const bool method_ok = route->method.empty() || req.method == route->method ||
                         (route->method == "GET" && req.method == "HEAD");
  if (!method_ok) {
    HttpResponse r = error_response(api_error(codes::kMethodNotAllowed, req.method + " is not allowed on " + p));
    r.headers.emplace_back("Allow", std::string(route->allow));
    return reply(std::move(r));
  }
  Call c{req, reply, Claims{}};
  switch (route->admit) {
    case Admit::Open: break;
    case Admit::Token: {
      auto auth = admit(req);
      if (auto* e = std::get_if<ApiError>(&auth)) return reply(error_response(*e));
      c.claims = std::get<Claims>(std::move(auth));
      break;
    }
    case Admit::Address:
      if (auto e = rate_limit("ip:" + client_address(req))) return reply(error_response(*e));
      break;
  }
  (this->*(route->handle))(c);
}

}  // namespace syncline::server
