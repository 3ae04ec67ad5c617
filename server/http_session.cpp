// Layer: server transport. One keep-alive HTTP/1.1 connection: reads requests (bodies limited to
// max_body_bytes before parsing), answers plain routes through App::handle, and hands the socket
// over to the SSE or WebSocket session for stream routes.
#include <optional>

#include <boost/beast/websocket/rfc6455.hpp>

#include "log.hpp"
#include "net.hpp"

namespace syncline::server {
namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(App& app, tcp::socket socket, std::shared_ptr<void> connection)
      : app_(app), stream_(std::move(socket)), connection_(std::move(connection)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_addr_ = ep.address().to_string();
      remote_ = remote_addr_ + ":" + std::to_string(ep.port());
    }
  }

  void run() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(app_.config().limits.max_body_bytes);
    parser_->header_limit(32 * 1024);
    stream_.expires_after(std::chrono::milliseconds(app_.config().limits.idle_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
  }

  // Headers first, so a client sending `Expect: 100-continue` (curl does for bodies over 1 KiB)
  // is told to go ahead instead of waiting for its timeout. Oversized bodies fail here already.
  void on_header(beast::error_code ec, std::size_t n) {
    if (ec) return on_read(ec, n);
    auto expect = parser_->get()[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, parser_->get().version());
      http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code wec, std::size_t) {
        if (wec) return self->close();
        http::async_read(self->stream_, self->buffer_, *self->parser_,
                         beast::bind_front_handler(&HttpSession::on_read, self));
      });
      return;
    }
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    started_ms_ = now_mono_ms();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset) {
      return close();
    }
    if (ec == http::error::body_limit) {
      HttpRequest partial;
      if (parser_->is_header_done()) partial = to_http_request(parser_->get(), remote_, remote_addr_);
      ApiError e{make_error(codes::kPayloadTooLarge,
                                 "body exceeds " + std::to_string(app_.config().limits.max_body_bytes) + " bytes"),
                 0};
      return reply(partial, error_response(e), false, true);
    }
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
        ApiError e{make_error(codes::kInvalidRequest, "malformed HTTP request: " + ec.message()), 0};
        return reply(HttpRequest{}, error_response(e), false, true);
      }
      return close();
    }
    BeastRequest& raw = parser_->get();
    HttpRequest req = to_http_request(raw, remote_, remote_addr_);
    const bool keep_alive = raw.keep_alive() && !app_.shutting_down();

    if (req.path == "/v1/ws" && boost::beast::websocket::is_upgrade(raw)) {
      auto sr = app_.open_stream(req, Transport::Ws);
      if (auto* e = std::get_if<ApiError>(&sr)) {
        // A foreign Origin is refused before the upgrade (cross-site pages get nothing); other
        // refusals complete the upgrade so the browser can see the reason in the close frame.
        if (e->error.field == "origin") return reply(req, with_cors(req, error_response(*e)), false, false);
        with_cors(req, HttpResponse{});
        log_request(req, e->status());
        stream_.expires_never();
        return refuse_ws(app_, std::move(stream_), parser_->release(), *e, std::move(connection_));
      }
      log_request(req, 101);
      stream_.expires_never();
      auto& stream_req = std::get<StreamRequest>(sr);
      stream_req.connection = std::move(connection_);
      return start_ws(app_, std::move(stream_), parser_->release(), req, std::move(stream_req));
    }
    if (req.path == "/v1/events" && req.method == "GET") {
      auto sr = app_.open_stream(req, Transport::Sse);
      if (auto* e = std::get_if<ApiError>(&sr)) return reply(req, with_cors(req, error_response(*e)), keep_alive, false);
      log_request(req, 200);
      stream_.expires_never();
      auto& stream_req = std::get<StreamRequest>(sr);
      stream_req.connection = std::move(connection_);
      return start_sse(app_, std::move(stream_), req, std::move(stream_req));
    }
    // Mutations and custom events are answered after the writer's commit; the next request
    // on this connection is read only after this reply is written, so per connection the
    // order of requests and responses is kept. Only method and path outlive this call.
    HttpRequest meta;
    meta.method = req.method;
    meta.path = req.path;
    app_.handle(req, [self = shared_from_this(), meta = std::move(meta), keep_alive](HttpResponse r) {
      self->reply(meta, std::move(r), keep_alive && !self->app_.shutting_down(), false);
    });
  }

  HttpResponse with_cors(const HttpRequest& req, HttpResponse r) {
    app_.add_cors(req, r);
    app_.metrics().http_requests++;
    if (r.status >= 500) app_.metrics().http_errors_5xx++;
    else if (r.status >= 400) app_.metrics().http_errors_4xx++;
    return r;
  }

  void log_request(const HttpRequest& req, int status) {
    // The query string is not logged: it may carry access_token.
    log_info("request", {{"method", req.method},
                         {"path", req.path},
                         {"status", status},
                         {"ms", now_mono_ms() - started_ms_},
                         {"remote", remote_}});
  }

  void reply(const HttpRequest& req, HttpResponse r, bool keep_alive, bool drain) {
    log_request(req, r.status);
    if (req.method == "HEAD") r.body.clear();
    auto res = std::make_shared<http::response<http::string_body>>(to_beast_response(r, 11, keep_alive));
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive, drain](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (drain) return self->drain();
                        if (!keep_alive) return self->close();
                        self->do_read();
                      });
  }

  // After refusing a request early (e.g. 413) the client may still be sending its body.
  // Closing at once would reset the connection and could destroy our response before the client
  // reads it, so shut down our side and discard input for a while first.
  void drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    drain_buf_.resize(64 * 1024);
    stream_.expires_after(std::chrono::seconds(2));
    drain_more();
  }

  void drain_more() {
    stream_.async_read_some(asio::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > 64u * 1024 * 1024) return self->close();
      self->drain_more();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  App& app_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  std::string remote_addr_;
  std::shared_ptr<void> connection_;  // handed to the stream session with the socket
  long long started_ms_ = 0;
  std::vector<char> drain_buf_;
  std::size_t drained_ = 0;
};

}  // namespace

void start_http(App& app, tcp::socket socket, std::shared_ptr<void> connection) {
  std::make_shared<HttpSession>(app, std::move(socket), std::move(connection))->run();
}

}  // namespace syncline::server
