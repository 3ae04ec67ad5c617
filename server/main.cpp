// syncline-server: the reference sync server (docs/protocol.md). One io thread runs every request,
// stream and fan-out in order; one writer thread commits the writes in groups (server/writer.hpp)
// so the fsync never stalls the streams, and hands the results back to the io thread in seq order.
//
//   syncline-server --port 8080 --db sqlite:./data/syncline.db --config server/config/demo.json
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "listener.hpp"
#include "log.hpp"

using namespace syncline;
using namespace syncline::server;

namespace {

const char* kHelp = R"(syncline-server: reference server for the syncline wire protocol v1

Usage: syncline-server [options]

Options:
  --port N         TCP port to listen on (default 8080; 0 picks a free port, printed in the
                   "listening" log line)
  --host ADDR      address to bind (default 127.0.0.1; use 0.0.0.0 to accept remote clients)
  --db SPEC        database: sqlite:PATH (default sqlite:./data/syncline.db; one node per file)
                   or postgresql://USER@HOST:PORT/DB (several nodes on one database, see
                   docs/scale-out.md); directories and the schema are created on first start
  --config FILE    JSON config: collections, read/write rules, unique constraints, JWT secret,
                   limits (see docs/server-config.md). Without it every authenticated caller may
                   read and write every collection.
  --static DIR     serve a built web app from DIR at / (index.html fallback for app routes)
  --help           show this help and exit

Environment:
  SYNCLINE_JWT_SECRET   HS256 secret; overrides jwt_secret from the config file

Routes: GET /v1/health, GET /v1/snapshot, GET /v1/events (SSE), GET /v1/ws (WebSocket),
POST /v1/mutations, POST /v1/events, POST /v1/demo/token (only with demo_tokens), GET /metrics.
Logs are JSON lines on stdout. SIGTERM/SIGINT shut down gracefully (exit status 0).
)";

int usage_error(const std::string& msg) {
  std::cerr << "syncline-server: " << msg << "\n(see --help)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::string host = "127.0.0.1";
  long port = 8080;
  std::string db = "sqlite:./data/syncline.db";
  std::string config_path;
  std::string static_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    auto next = [&](std::string& out) -> bool {
      if (has_inline) {
        out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::cout << kHelp;
      return 0;
    } else if (a == "--port") {
      std::string v;
      if (!next(v)) return usage_error("--port needs a value");
      char* end = nullptr;
      port = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || port < 0 || port > 65535) return usage_error("invalid --port " + v);
    } else if (a == "--host") {
      if (!next(host)) return usage_error("--host needs a value");
    } else if (a == "--db") {
      if (!next(db)) return usage_error("--db needs a value");
    } else if (a == "--config") {
      if (!next(config_path)) return usage_error("--config needs a value");
    } else if (a == "--static") {
      if (!next(static_dir)) return usage_error("--static needs a value");
    } else {
      return usage_error("unknown option " + a);
    }
  }

  Config config = Config::open_default();
  if (!config_path.empty()) {
    auto c = Config::load_file(config_path);
    if (!c) {
      log_error("invalid config", {{"error", c.error().message}, {"field", c.error().field}});
      return 2;
    }
    config = std::move(*c);
  }
  if (const char* s = std::getenv("SYNCLINE_JWT_SECRET"); s && *s) config.jwt_secret = s;
  if (config.jwt_secret.empty()) {
    log_error("no JWT secret: set jwt_secret in the config or SYNCLINE_JWT_SECRET");
    return 2;
  }
  if (config.open_mode) log_warn("no --config: every authenticated caller may read and write every collection");

  StoreOptions so;
  so.log_retention = config.limits.log_retention;
  so.outcome_retention = config.limits.outcome_retention;
  // App owns the config; the stores keep a reference to App's copy. Declared before the
  // io_context so handlers still queued when it is destroyed can reach the App.
  App* app_ptr = nullptr;
  auto app = std::make_unique<App>(std::move(config), ServerOptions{static_dir});
  auto store = Store::open(db, so, app->config());
  if (!store) {
    log_error("cannot open database", {{"error", store.error().message}, {"db", db}});
    return 1;
  }
  std::vector<std::unique_ptr<Store>> readers;
  for (std::size_t i = 0; i < app->config().limits.read_threads; ++i) {
    auto reader = Store::open_reader(db, so, app->config());
    if (!reader) {
      log_error("cannot open database", {{"error", reader.error().message}, {"db", db}});
      return 1;
    }
    readers.push_back(std::move(*reader));
  }

  // Other nodes write a shared database: a tailer brings their rows to this node's streams.
  std::unique_ptr<Store> tail_store;
  if ((*store)->shared()) {
    auto t = Store::open_reader(db, so, app->config());
    if (!t) {
      log_error("cannot open database", {{"error", t.error().message}, {"db", db}});
      return 1;
    }
    tail_store = std::move(*t);
  }

  asio::io_context ioc{1};
  app->set_stores(std::move(*store), std::move(readers),
                  [&ioc](std::function<void()> f) { asio::post(ioc, std::move(f)); }, std::move(tail_store));
  app_ptr = app.get();
  auto listener = std::make_shared<Listener>(ioc, *app_ptr);
  if (std::string err = listener->open(host, static_cast<unsigned short>(port)); !err.empty()) {
    log_error("cannot listen", {{"error", err}});
    app_ptr->stop_tailer();   // joined before the io_context they post to goes away
    app_ptr->reads().stop();
    app_ptr->writer().stop();
    return 1;
  }
  listener->run();
  log_info("listening", {{"host", host},
                         {"port", listener->port()},
                         {"db", db},
                         {"seq", app_ptr->head_seq()},
                         {"static", static_dir.empty() ? Json(nullptr) : Json(static_dir)}});

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::steady_timer drain_timer(ioc);
  long long shutdown_started = 0;
  std::function<void()> poll_drain = [&] {
    drain_timer.expires_after(std::chrono::milliseconds(25));
    drain_timer.async_wait([&](beast::error_code) {
      // Wait for the streams to close and for every write already queued to be committed and
      // answered (new writes are refused with 503 from the signal on).
      const bool drained = app_ptr->hub().size() == 0 && app_ptr->writer().pending() == 0;
      if (drained || now_mono_ms() - shutdown_started > 3000) {
        // Give close frames already handed to the sockets a moment to leave.
        drain_timer.expires_after(std::chrono::milliseconds(100));
        drain_timer.async_wait([&](beast::error_code) { ioc.stop(); });
        return;
      }
      poll_drain();
    });
  };
  signals.async_wait([&](beast::error_code ec, int sig) {
    if (ec) return;
    log_info("shutting_down", {{"signal", sig}, {"streams", app_ptr->hub().size()}});
    shutdown_started = now_mono_ms();
    app_ptr->set_shutting_down();
    listener->stop();
    app_ptr->hub().shutdown_all("server_shutdown");
    poll_drain();
  });

  for (;;) {
    try {
      ioc.run();
      break;
    } catch (const std::exception& e) {
      // A bug in one handler must not take every connection down; log it and keep serving.
      log_error("unhandled exception", {{"error", e.what()}});
    }
  }
  // No reader may post to the io_context once it is gone.
  app_ptr->stop_tailer();
  app_ptr->reads().stop();
  // Commits whatever is still queued (its answers are lost with the io thread, which is safe:
  // unacknowledged writes are resent and answered `duplicate`), then joins the writer.
  app_ptr->writer().stop();
  app_ptr->writer().store().checkpoint();
  log_info("stopped", {{"seq", app_ptr->writer().store().head_seq()}});
  return 0;
}
