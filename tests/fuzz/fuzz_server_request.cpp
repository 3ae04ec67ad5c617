// Layer: tests/fuzz. Target "server_request": the server's HTTP request path, from raw bytes to
// the router, on a real App (server/api.hpp) with real SQLite stores, its writer thread and its
// read pool.
//
// Input: one selector byte, then raw HTTP/1.1 request bytes (one request or several pipelined).
//   selector % 4: 0 no token, 1 customer token (sub 42), 2 admin token, 3 expired customer token;
//   the token is added as `Authorization: Bearer ...` to every request that has none.
// Each request is parsed as server/http_session.cpp does (a Beast request_parser with the
// config's body limit and a 32 KiB header limit), converted with to_http_request and routed as
// the session routes it: a WebSocket upgrade of /v1/ws and GET /v1/events go to
// App::open_stream (on success the connection would belong to the stream: the rest of the input
// is dropped), everything else to App::handle. The writer's and the read pool's completions are
// posted into a queue this thread drains, as the io thread would; every request is answered
// before the next one is parsed (the session reads the next request only after writing the
// reply). A parse error or `Connection: close` ends the connection (the rest is dropped).
// Besides, a request body that is a WebSocket-style frame ({"type":"mutate"|"publish",...}) is
// also fed to App::mutate / App::publish with customer claims and with admin claims, as
// ws_session.cpp does.
//
// The App: the demo config (server/config/demo.json) with rate limiting off (runs must not depend
// on timing), an allowed_origins list (so both CORS branches and the WebSocket Origin check are
// reached), small limits (2 KiB bodies, 8 mutations per batch: both 413 paths fit in an input),
// short retention (the database stays small) and one reader thread (2 cores, and two fuzzers may
// run at once). The database and a static root holding only index.html live in a per-process
// directory under /dev/shm (else $TMPDIR or /tmp), with a secret file next to the root and in a
// sibling directory whose name extends the root's. The database is shared by all inputs of a
// process (opening SQLite per input would cost more than the request), so a write of one input
// can turn a later identical write into a duplicate.
//
// Invariants (a violation aborts): every reply has a status in 100..599 and is given exactly once;
// a JSON reply's body parses; a 4xx/5xx JSON reply is {"error":{"code":non-empty string,
// "message":string,...}}; no reply body contains the secret file's marker; a 200 to a route that
// is neither /v1/... nor /metrics (static files, SPA fallback) is index.html itself (empty for
// HEAD): nothing outside the static root is served; a refusal's WebSocket error frame decodes to
// the same code; a 200 mutation reply (HTTP or frame) decodes as results with one result per
// mutation of the batch, in mid order; a published event gets a seq > 0; the writer and the
// readers answer every request of the input within 5 s, and the writer has nothing pending
// afterwards (the read pool may: /metrics refreshes its document count in the background, and
// that completion runs in a later input); no crash, no sanitizer report, no leak.
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/beast/websocket/rfc6455.hpp>

#include "api.hpp"
#include "auth.hpp"
#include "config.hpp"
#include "core/protocol.hpp"
#include "fuzz_common.hpp"
#include "hub.hpp"
#include "net.hpp"
#include "store.hpp"

using namespace syncline;
using namespace syncline::server;
namespace fs = std::filesystem;

namespace {

constexpr const char* kConfig = R"({
  "jwt_secret": "syncline-demo-secret-not-for-production",
  "demo_tokens": true,
  "allowed_origins": ["https://app.example"],
  "events": { "publish": { "admin": "all" }, "read": { "*": "all" } },
  "limits": {
    "max_body_bytes": 2048,
    "max_batch": 8,
    "rate_limit_per_sec": 0,
    "log_retention": 200,
    "outcome_retention": 50,
    "read_threads": 1
  },
  "collections": {
    "bills": {
      "read": { "admin": "all", "customer": "customer_id=eq.{sub}" },
      "write": { "admin": "all" }
    },
    "orders": {
      "read": { "admin": "all", "customer": "customer_id=eq.{sub}" },
      "write": { "admin": "all" }
    },
    "ledger_entries": {
      "read": { "admin": "all", "customer": "customer_id=eq.{sub}" },
      "write": { "admin": "all" }
    },
    "products": {
      "read": { "admin": "all", "customer": "all" },
      "write": { "admin": "all" }
    },
    "stock_transactions": {
      "read": { "admin": "all" },
      "write": { "admin": "all" }
    },
    "bookings": {
      "read": { "admin": "all", "customer": "customer_id=eq.{sub}" },
      "write": { "admin": "all", "customer": { "insert": "customer_id=eq.{sub}" } },
      "unique": [["hall", "date", "slot"]]
    },
    "customers": {
      "read": { "admin": "all", "customer": "id=eq.{sub}" },
      "write": { "admin": "all", "customer": { "update": "id=eq.{sub}" } }
    }
  }
})";

// Same value as http_session.cpp's parser_->header_limit.
constexpr std::uint32_t kHeaderLimit = 32 * 1024;
constexpr int kMaxRequests = 16;  // per input
constexpr auto kWriterWait = std::chrono::seconds(5);
constexpr const char* kRemote = "127.0.0.1:40000";
constexpr const char* kRemoteAddr = "127.0.0.1";
constexpr const char* kDirPrefix = "syncline-fuzz-server-";

constexpr const char* kIndex = "<!doctype html><title>syncline fuzz</title><!-- SYNCLINE-FUZZ-INDEX -->\n";
// A quote and a newline: a JSON body (which escapes both) can never hold the marker, even if a
// request echoed it into an error message; only the raw file can.
constexpr const char* kSecretMarker = "SYNCLINE-FUZZ-SECRET\"\n";
constexpr const char* kSecret = "SYNCLINE-FUZZ-SECRET\"\nthis file is outside the static root\n";

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  FUZZ_CHECK(out.good(), "cannot write " + p.string());
}

// Directories left behind by fuzzer processes that died (a crash aborts before the cleanup).
void remove_stale_dirs(const fs::path& parent) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(kDirPrefix, 0) != 0) continue;
    long pid = std::strtol(name.c_str() + std::strlen(kDirPrefix), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

struct Harness {
  // The io thread's queue: the writer and the read pool post their completions here (from their
  // own threads).
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> posted;

  fs::path dir;
  std::string tokens[4];  // by selector: none, customer, admin, expired customer
  Claims customer, admin;
  std::unique_ptr<App> app;

  Harness() {
    fs::path parent = "/dev/shm";
    std::error_code ec;
    if (!fs::is_directory(parent, ec) || ::access(parent.c_str(), W_OK) != 0) {
      const char* t = std::getenv("TMPDIR");
      parent = t && *t ? t : "/tmp";
    }
    remove_stale_dirs(parent);
    std::string tmpl = (parent / (std::string(kDirPrefix) + std::to_string(::getpid()) + "-XXXXXX")).string();
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp " + tmpl);
    dir = tmpl;
    fs::create_directories(dir / "www");
    write_file(dir / "www" / "index.html", kIndex);
    write_file(dir / "secret.txt", kSecret);  // next to the root, outside it
    fs::create_directories(dir / "www-secret");  // a sibling whose name extends the root's
    write_file(dir / "www-secret" / "secret.txt", kSecret);

    auto config = Config::from_json(parse_json_nothrow(kConfig));
    FUZZ_CHECK(config.ok(), "config: " + (config.ok() ? std::string() : config.error().message));
    app = std::make_unique<App>(std::move(*config), ServerOptions{(dir / "www").string()});
    StoreOptions so;
    so.log_retention = app->config().limits.log_retention;
    so.outcome_retention = app->config().limits.outcome_retention;
    const std::string db = "sqlite:" + (dir / "db" / "syncline.db").string();
    auto store = Store::open(db, so, app->config());
    FUZZ_CHECK(store.ok(), "Store::open: " + (store.ok() ? std::string() : store.error().message));
    std::vector<std::unique_ptr<Store>> readers;
    for (std::size_t i = 0; i < app->config().limits.read_threads; ++i) {
      auto reader = Store::open_reader(db, so, app->config());
      FUZZ_CHECK(reader.ok(), "Store::open_reader: " + (reader.ok() ? std::string() : reader.error().message));
      readers.push_back(std::move(*reader));
    }
    app->set_stores(std::move(*store), std::move(readers), [this](std::function<void()> f) {
      {
        std::lock_guard<std::mutex> lk(mu);
        posted.push_back(std::move(f));
      }
      cv.notify_one();
    });

    const std::string& secret = app->config().jwt_secret;
    tokens[1] = sign_jwt(Json{{"sub", "42"}, {"role", "customer"}}, secret);
    tokens[2] = sign_jwt(Json{{"sub", "admin-1"}, {"role", "admin"}}, secret);
    tokens[3] = sign_jwt(Json{{"sub", "42"}, {"role", "customer"}, {"exp", 1000000000}}, secret);
    auto c = verify_jwt(tokens[1], secret, 0);
    auto a = verify_jwt(tokens[2], secret, 0);
    FUZZ_CHECK(c.ok() && a.ok(), "the harness's tokens do not verify");
    customer = std::move(*c);
    admin = std::move(*a);
  }

  ~Harness() {
    app.reset();  // stops and joins the writer (its last posts are dropped with the queue)
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Harness& harness() {
  static Harness h;
  return h;
}

// Replies owed by the App for the current input.
struct Owed {
  int submitted = 0;
  int answered = 0;
};

// Runs what is already posted without waiting (completions of background reads, e.g. /metrics'
// document count, that no reply waits for).
void run_posted(Harness& h) {
  for (;;) {
    std::function<void()> f;
    {
      std::lock_guard<std::mutex> lk(h.mu);
      if (h.posted.empty()) return;
      f = std::move(h.posted.front());
      h.posted.pop_front();
    }
    f();
  }
}

// Runs posted completions until every submitted request was answered (the io thread's loop).
void drain(Harness& h, const Owed& owed, std::chrono::steady_clock::time_point deadline) {
  while (owed.answered < owed.submitted) {
    std::function<void()> f;
    {
      std::unique_lock<std::mutex> lk(h.mu);
      bool got = h.cv.wait_until(lk, deadline, [&] { return !h.posted.empty(); });
      FUZZ_CHECK(got, "the writer did not answer within 5 s (" + std::to_string(owed.submitted - owed.answered) +
                          " of " + std::to_string(owed.submitted) + " requests unanswered)");
      f = std::move(h.posted.front());
      h.posted.pop_front();
    }
    f();
  }
}

bool is_api_route(const std::string& path) {
  return path == "/metrics" || path == "/v1" || path.rfind("/v1/", 0) == 0;
}

// FUZZ_VERBOSE=1 prints every reply (to see what a seed reaches: build-fuzz/replay_server_request).
const bool kVerbose = std::getenv("FUZZ_VERBOSE") != nullptr;

void check_reply(const std::string& method, const std::string& path, const HttpResponse& r) {
  const std::string where = method + " " + path.substr(0, 200) + " -> " + std::to_string(r.status);
  if (kVerbose) std::fprintf(stderr, "  %s %s\n", where.c_str(), r.body.substr(0, 160).c_str());
  FUZZ_CHECK(r.status >= 100 && r.status <= 599, "reply status out of range: " + where);
  FUZZ_CHECK(r.body.find(kSecretMarker) == std::string::npos,
             "a reply holds the secret file next to the static root: " + where);
  if (r.content_type.rfind("application/json", 0) == 0) {
    Json j = parse_json_nothrow(r.body);
    FUZZ_CHECK(!j.is_discarded(), "a JSON reply does not parse: " + where + "\n  " + r.body.substr(0, 300));
    if (r.status >= 400) {
      FUZZ_CHECK(j.is_object() && j.contains("error") && j["error"].is_object(),
                 "an error reply is not {\"error\":{...}}: " + where + "\n  " + r.body.substr(0, 300));
      const Json& e = j["error"];
      FUZZ_CHECK(e.contains("code") && e["code"].is_string() && !e["code"].get<std::string>().empty(),
                 "an error reply has no string code: " + where + "\n  " + r.body.substr(0, 300));
      // One registry (src/core/error_codes.def) names every code and its status.
      const std::string code = e["code"].get<std::string>();
      FUZZ_CHECK(parse_error_code(code).has_value(), "an error reply's code is not registered: " + where + "\n  " + code);
      FUZZ_CHECK(http_status(code) == r.status, "not the registry's status for " + code + ": " + where);
      FUZZ_CHECK(e.contains("message") && e["message"].is_string(),
                 "an error reply has no string message: " + where + "\n  " + r.body.substr(0, 300));
    }
  }
  if (r.status == 200 && !is_api_route(path)) {
    FUZZ_CHECK(r.body == kIndex || (method == "HEAD" && r.body.empty()),
               "a static-file reply is not the root's index.html: " + where + "\n  " + r.body.substr(0, 300));
  }
}

void check_api_error(const std::string& method, const std::string& path, const ApiError& e) {
  FUZZ_CHECK(e.status() >= 400 && e.status() <= 599, "an ApiError with status " + std::to_string(e.status()));
  check_reply(method, path, error_response(e));
  // What a WebSocket client is sent instead (refused stream, refused frame).
  Bytes frame = serialize_error(e.error, Transport::Ws);
  auto m = decode_server_ws(*frame);
  FUZZ_CHECK(m.ok() && std::holds_alternative<ErrorMsg>(*m) && std::get<ErrorMsg>(*m).error.code == e.error.code,
             "the WebSocket error frame does not decode to its code: " + *frame);
}

// A 200 answer to a batch: one result per mutation of the batch, in mid order.
void check_results(const Json& request, const MutationResults& res, std::size_t max_batch) {
  DecodeLimits dl;
  dl.max_batch = max_batch;
  auto batch = decode_mutation_batch(request, dl);
  FUZZ_CHECK(batch.ok(), "a batch the decoder refuses was answered with results: " + fuzz::dump(request));
  FUZZ_CHECK(res.results.size() == batch->mutations.size(),
             std::to_string(res.results.size()) + " results for " + std::to_string(batch->mutations.size()) +
                 " mutations");
  for (std::size_t i = 0; i < res.results.size(); ++i) {
    FUZZ_CHECK(res.results[i].mid == batch->mutations[i].mid, "result " + std::to_string(i) + " answers mid " +
                                                                   std::to_string(res.results[i].mid) + ", not " +
                                                                   std::to_string(batch->mutations[i].mid));
  }
}

// The frame handlers' JSON path (ws_session.cpp handle_frame), with customer and admin claims.
void feed_frame(Harness& h, const std::string& body, Owed& owed) {
  // As ws_session.cpp reads a frame (bounded depth); a body that is no frame is not fed.
  auto parsed = parse_client_json(body, h.app->config().limits, "frame");
  auto* pj = std::get_if<Json>(&parsed);
  if (!pj || !pj->is_object() || !pj->contains("type") || !(*pj)["type"].is_string()) return;
  const Json& j = *pj;
  const std::string type = j["type"].get<std::string>();
  const std::size_t max_batch = h.app->config().limits.max_batch;
  for (const Claims* claims : {&h.customer, &h.admin}) {
    if (type == "mutate") {
      ++owed.submitted;
      h.app->mutate(*claims, j, [&owed, j, max_batch](std::variant<MutationResults, ApiError> out) {
        ++owed.answered;
        FUZZ_CHECK(owed.answered <= owed.submitted, "a frame was answered twice");
        if (auto* e = std::get_if<ApiError>(&out)) return check_api_error("WS", "/v1/ws mutate", *e);
        const auto& res = std::get<MutationResults>(out);
        check_results(j, res, max_batch);
        auto back = decode_server_ws(encode_ws(ServerMessage{res}));
        FUZZ_CHECK(back.ok() && std::holds_alternative<MutationResults>(*back) &&
                       std::get<MutationResults>(*back) == res,
                   "a results frame does not decode to itself");
      });
    } else if (type == "publish") {
      ++owed.submitted;
      h.app->publish(*claims, j, [&owed](std::variant<std::int64_t, ApiError> out) {
        ++owed.answered;
        FUZZ_CHECK(owed.answered <= owed.submitted, "a frame was answered twice");
        if (auto* e = std::get_if<ApiError>(&out)) return check_api_error("WS", "/v1/ws publish", *e);
        FUZZ_CHECK(std::get<std::int64_t>(out) > 0, "a published event got seq " + std::to_string(std::get<std::int64_t>(out)));
      });
    }
  }
}

// Checks specific to a route's 200 answer.
void check_route_ok(const Harness& h, const HttpRequest& req, const HttpResponse& r) {
  if (r.status != 200) return;
  if (req.method == "POST" && req.path == "/v1/mutations") {
    Json body = parse_json_nothrow(r.body);
    auto res = decode_mutation_results(body);
    FUZZ_CHECK(res.ok(), "a 200 mutation reply does not decode as results: " + r.body.substr(0, 300));
    check_results(parse_json_nothrow(req.body), *res, h.app->config().limits.max_batch);
  } else if (req.method == "POST" && req.path == "/v1/events") {
    Json body = parse_json_nothrow(r.body);
    FUZZ_CHECK(body.is_object() && body.contains("seq") && body["seq"].is_number_integer() &&
                   body["seq"].get<std::int64_t>() > 0,
               "a 200 publish reply is not {\"seq\":N>0}: " + r.body.substr(0, 300));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Harness& h = harness();
  const std::string& token = h.tokens[data[0] % 4];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto deadline = std::chrono::steady_clock::now() + kWriterWait;
  Owed owed;
  run_posted(h);

  for (int n = 0; n < kMaxRequests && !rest.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(h.app->config().limits.max_body_bytes);
    parser.header_limit(kHeaderLimit);
    parser.eager(true);
    beast::error_code ec;
    // Every byte left is offered at once: need_more with nothing consumed means the input ends
    // inside the request (the session would wait for more, then time out).
    while (!parser.is_done()) {
      std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec == http::error::need_more && used > 0 && !rest.empty()) {
        ec = {};
        continue;
      }
      break;
    }
    if (ec == http::error::body_limit && parser.is_header_done()) {
      // The session answers 413 with what it has of the request, then drains and closes.
      HttpRequest partial = to_http_request(parser.get(), kRemote, kRemoteAddr);
      (void)partial;
      break;
    }
    if (ec || !parser.is_done()) break;  // 400 / end of input: the connection is over

    BeastRequest& raw = parser.get();
    if (!token.empty() && raw.find(http::field::authorization) == raw.end()) {
      raw.set(http::field::authorization, "Bearer " + token);
    }
    const HttpRequest req = to_http_request(raw, kRemote, kRemoteAddr);
    const bool keep_alive = raw.keep_alive();

    if (req.path == "/v1/ws" && boost::beast::websocket::is_upgrade(raw)) {
      auto sr = h.app->open_stream(req, Transport::Ws);
      if (auto* e = std::get_if<ApiError>(&sr)) check_api_error(req.method, req.path, *e);
      break;  // upgraded (or refused with a close frame / 403 and closed)
    }
    if (req.path == "/v1/events" && req.method == "GET") {
      auto sr = h.app->open_stream(req, Transport::Sse);
      auto* e = std::get_if<ApiError>(&sr);
      if (!e) break;  // the connection is the SSE stream now
      HttpResponse r = error_response(*e);
      h.app->add_cors(req, r);
      check_reply(req.method, req.path, r);
    } else {
      ++owed.submitted;
      const int before = owed.answered;
      h.app->handle(req, [&h, &owed, &req](HttpResponse r) {
        ++owed.answered;
        FUZZ_CHECK(owed.answered <= owed.submitted, "a request was answered twice: " + req.method + " " + req.path);
        check_reply(req.method, req.path, r);
        check_route_ok(h, req, r);
      });
      drain(h, owed, deadline);
      FUZZ_CHECK(owed.answered == before + 1, "a request was not answered: " + req.method + " " + req.path);
    }

    feed_frame(h, req.body, owed);
    drain(h, owed, deadline);
    if (!keep_alive) break;
  }

  FUZZ_CHECK(owed.answered == owed.submitted, "unanswered requests");
  FUZZ_CHECK(h.app->writer().pending() == 0,
             std::to_string(h.app->writer().pending()) + " writes pending after every request was answered");
  return 0;
}
