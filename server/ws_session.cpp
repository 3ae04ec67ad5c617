// Layer: server transport. WebSocket: the same server messages as SSE as JSON text frames with
// "type"; the client sends "mutate", "publish" and "ping" frames. Invalid frames get an "error" frame and
// the connection stays open, unless a client keeps sending them (then close 1008).
#include <boost/beast/websocket.hpp>

#include "log.hpp"
#include "net.hpp"

namespace syncline::server {
namespace websocket = boost::beast::websocket;
namespace {

websocket::close_code close_code_for(const std::string& reason) {
  if (reason == codes::kSlowConsumer) return static_cast<websocket::close_code>(4008);
  if (reason == "server_shutdown") return websocket::close_code::going_away;
  if (reason == "too_many_invalid_frames") return websocket::close_code::policy_error;
  if (reason == "payload_too_large") return websocket::close_code::too_big;
  if (reason == "token_expired") return static_cast<websocket::close_code>(4401);
  return websocket::close_code::normal;
}

class WsSession : public StreamSession {
 public:
  WsSession(App& app, beast::tcp_stream stream, Subscription sub, std::string remote)
      : StreamSession(app.stream_context(), Transport::Ws, std::move(sub), std::move(remote)),
        app_(app),
        ws_(std::move(stream)),
        heartbeat_(ws_.get_executor()) {}

  void accept(BeastRequest req, std::optional<std::int64_t> cursor) {
    const Limits& l = app_.config().limits;
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::milliseconds(std::max<std::int64_t>(l.write_timeout_ms, 2 * l.heartbeat_ms));
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "syncline-server"); }));
    ws_.read_message_max(l.max_body_bytes);
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    auto r = std::make_shared<BeastRequest>(std::move(req));
    ws_.async_accept(*r, [self, r, cursor](beast::error_code ec) {
      if (ec) return self->terminate("handshake_failed");
      log_info("stream_opened", {{"transport", "websocket"},
                                 {"remote", self->remote_},
                                 {"sub", self->subscription().claims().sub},
                                 {"cursor", cursor ? Json(*cursor) : Json(nullptr)}});
      self->accepted_ = true;
      self->begin(cursor);
      self->do_read();
      self->arm_heartbeat();
    });
  }

 protected:
  void write_batch(std::shared_ptr<std::vector<Bytes>> batch) override { write_frame(std::move(batch), 0); }

  void close_transport(const std::string& reason) override {
    heartbeat_.cancel();
    log_info("stream_closed", {{"transport", "websocket"},
                               {"remote", remote_},
                               {"reason", reason.empty() ? "peer_closed" : reason},
                               {"sent", sent_},
                               {"ms", now_mono_ms() - opened_ms_}});
    if (reason.empty() || !accepted_ || !ws_.is_open()) {
      beast::error_code ec;
      beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(ws_).close();
      return;
    }
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    ws_.async_close(websocket::close_reason(close_code_for(reason), reason), [self](beast::error_code) {
      beast::get_lowest_layer(self->ws_).close();
    });
  }

 private:
  // One frame per message (the protocol's framing); the next frame starts from the completion
  // of the previous one, and the batch completes after the last.
  void write_frame(std::shared_ptr<std::vector<Bytes>> batch, std::size_t i) {
    ws_.text(true);
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    const Bytes& msg = (*batch)[i];
    ws_.async_write(asio::buffer(*msg), [self, batch, i](beast::error_code ec, std::size_t) {
      if (ec || i + 1 == batch->size() || self->closed()) return self->on_write_done(!ec);
      self->write_frame(batch, i + 1);
    });
  }

  void do_read() {
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    ws_.async_read(rbuf_, [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed()) return;
    if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) {
      // Beast has already failed the stream; tell the peer why as best we can.
      return terminate("payload_too_large");
    }
    if (ec) return terminate("peer_closed");
    std::string frame = beast::buffers_to_string(rbuf_.data());
    rbuf_.consume(rbuf_.size());
    const bool binary = !ws_.got_text();
    handle_frame(frame, binary);
    if (!closed()) do_read();
  }

  void fail(Error e) {
    app_.metrics().ws_invalid_frames++;
    send_private(serialize_error(e, Transport::Ws));
    if (++invalid_frames_ > app_.config().limits.ws_max_invalid_frames) shutdown("too_many_invalid_frames");
  }

  void handle_frame(const std::string& frame, bool binary) {
    if (binary) return fail(make_error(codes::kInvalidRequest, "frames must be JSON text"));
    const Claims& claims = subscription().claims();
    if (token_expired()) return;
    if (auto e = app_.rate_limit("sub:" + claims.sub)) {
      send_private(serialize_error(e->error, Transport::Ws));
      return;
    }
    DecodeLimits dl;
    dl.max_batch = app_.config().limits.max_batch;
    auto parsed = parse_client_json(frame, app_.config().limits, "frame");
    if (auto* e = std::get_if<ApiError>(&parsed)) return fail(e->error);
    const Json& j = std::get<Json>(parsed);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      return fail(make_error(codes::kInvalidRequest, "frame must be an object with a string \"type\"", "type"));
    }
    const std::string type = j["type"].get<std::string>();
    // The answer comes once the writer committed (at once for a refused frame). Frames of
    // this connection are submitted in arrival order, and the writer keeps that order, so
    // their results arrive in order too. The session stays alive until then (self).
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    // A frame that passed validation resets the invalid-frame count as soon as it is queued,
    // so the count still follows the order in which frames arrived.
    if (type == "mutate") {
      bool queued = app_.mutate(claims, j, [self](std::variant<MutationResults, ApiError> out) {
        if (auto* e = std::get_if<ApiError>(&out)) {
          if (e->status() == 400 || e->status() == 413) return self->fail(e->error);
          self->send_private(serialize_error(e->error, Transport::Ws));
          return;
        }
        self->send_private(
            std::make_shared<const std::string>(encode_ws(ServerMessage{std::get<MutationResults>(out)})));
      });
      if (queued) invalid_frames_ = 0;
    } else if (type == "publish") {
      bool queued = app_.publish(claims, j, [self](std::variant<std::int64_t, ApiError> out) {
        if (auto* e = std::get_if<ApiError>(&out)) {
          if (e->status() == 400 || e->status() == 413) return self->fail(e->error);
          self->send_private(serialize_error(e->error, Transport::Ws));
        }
      });
      if (queued) invalid_frames_ = 0;
    } else if (type == "ping") {
      pong(j);
    } else {
      fail(make_error(codes::kInvalidRequest, "unknown message type \"" + type.substr(0, 64) + "\"", "type"));
    }
  }

  // The client's round-trip probe (protocol revision 1.2): {"type":"ping","id":X} is answered at
  // once, from this thread and without database work, by {"type":"pong","id":X}. The id is
  // optional; when present it is an integer or a string of at most 64 characters, echoed as is.
  // Browsers cannot send or see WebSocket control pings, hence an application frame.
  void pong(const Json& j) {
    std::string out = "{\"type\":\"pong\"";
    if (auto id = j.find("id"); id != j.end()) {
      const bool ok = id->is_number_integer() || (id->is_string() && id->get_ref<const std::string&>().size() <= 64);
      if (!ok) return fail(make_error(codes::kInvalidRequest, "id must be an integer or a string of at most 64 characters", "id"));
      out += ",\"id\":" + id->dump(-1, ' ', false, Json::error_handler_t::replace);
    }
    out += "}";
    invalid_frames_ = 0;
    send_private(std::make_shared<const std::string>(std::move(out)));
  }

  // Browsers cannot see WebSocket pings, so the heartbeat is an application frame: a repeated
  // "hello" with the current head seq (the client only records it).
  void arm_heartbeat() {
    heartbeat_.expires_after(std::chrono::milliseconds(app_.config().limits.heartbeat_ms));
    auto self = std::static_pointer_cast<WsSession>(shared_from_this());
    heartbeat_.async_wait([self](beast::error_code ec) {
      if (ec || self->closed()) return;
      if (self->token_expired()) return;
      self->send_private(serialize_hello(self->app_.head_seq(), Transport::Ws));
      self->arm_heartbeat();
    });
  }

  App& app_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer heartbeat_;
  beast::flat_buffer rbuf_;
  int invalid_frames_ = 0;
  bool accepted_ = false;
};

class WsRefusal : public std::enable_shared_from_this<WsRefusal> {
 public:
  WsRefusal(beast::tcp_stream stream, ApiError error, std::shared_ptr<void> connection)
      : ws_(std::move(stream)), error_(std::move(error)), connection_(std::move(connection)) {}

  void run(BeastRequest req) {
    websocket::stream_base::timeout t;
    t.handshake_timeout = std::chrono::seconds(5);
    t.idle_timeout = std::chrono::seconds(10);
    t.keep_alive_pings = false;
    ws_.set_option(t);
    auto self = shared_from_this();
    auto r = std::make_shared<BeastRequest>(std::move(req));
    ws_.async_accept(*r, [self, r](beast::error_code ec) {
      if (ec) return;
      auto frame = std::make_shared<std::string>(encode_ws(ServerMessage{ErrorMsg{self->error_.error}}));
      self->ws_.text(true);
      self->ws_.async_write(asio::buffer(*frame), [self, frame](beast::error_code wec, std::size_t) {
        if (wec) return;
        int code = self->error_.status() == 503 ? 1013
                   : (self->error_.status() >= 400 && self->error_.status() < 500) ? 4000 + self->error_.status()
                                                                               : 1011;
        std::string reason = self->error_.error.code.substr(0, 120);
        self->ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                              [self](beast::error_code) { beast::get_lowest_layer(self->ws_).close(); });
      });
    });
  }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  ApiError error_;
  std::shared_ptr<void> connection_;
};

}  // namespace

void refuse_ws(App& app, beast::tcp_stream stream, BeastRequest req, const ApiError& error,
               std::shared_ptr<void> connection) {
  std::make_shared<WsRefusal>(std::move(stream), error, std::move(connection))->run(std::move(req));
}

void start_ws(App& app, beast::tcp_stream stream, BeastRequest req, const HttpRequest& hreq, StreamRequest sr) {
  auto s = std::make_shared<WsSession>(app, std::move(stream), std::move(sr.sub), hreq.remote);
  s->hold_connection(std::move(sr.connection));
  app.hub().add(s);
  s->accept(std::move(req), sr.cursor);
}

}  // namespace syncline::server
