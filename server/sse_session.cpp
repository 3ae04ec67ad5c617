// Layer: server transport. Server-Sent Events: raw HTTP/1.1 response without Content-Length
// (the body ends when the connection closes), so the shared pre-serialised blocks are written
// to the socket as they are, without per-connection framing.
#include "log.hpp"
#include "net.hpp"

namespace syncline::server {
namespace {

const Bytes& heartbeat_bytes() {
  static const Bytes hb = std::make_shared<const std::string>(": hb\n\n");
  return hb;
}

class SseSession : public StreamSession {
 public:
  SseSession(App& app, beast::tcp_stream stream, Subscription sub, std::string remote)
      : StreamSession(app.stream_context(), Transport::Sse, std::move(sub), std::move(remote)),
        app_(app),
        stream_(std::move(stream)),
        heartbeat_(stream_.get_executor()) {}

  void start(const HttpRequest& req, std::optional<std::int64_t> cursor, bool heartbeat_event) {
    heartbeat_event_ = heartbeat_event;
    HttpResponse head;
    app_.add_cors(req, head);
    std::string h =
        "HTTP/1.1 200 OK\r\n"
        "Server: syncline-server\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache, no-transform\r\n"
        "X-Accel-Buffering: no\r\n"
        "Connection: close\r\n";
    for (const auto& [k, v] : head.headers) h += k + ": " + v + "\r\n";
    h += "\r\n";
    // Tell EventSource how soon to reconnect after a drop.
    h += "retry: 1000\n\n";
    send_private(std::make_shared<const std::string>(std::move(h)));
    begin(cursor);
    watch_peer();
    arm_heartbeat();
    log_info("stream_opened", {{"transport", "sse"},
                               {"remote", remote_},
                               {"sub", subscription().claims().sub},
                               {"cursor", cursor ? Json(*cursor) : Json(nullptr)}});
  }

 protected:
  void write_batch(std::shared_ptr<std::vector<Bytes>> batch) override {
    stream_.expires_after(std::chrono::milliseconds(app_.config().limits.write_timeout_ms));
    auto self = std::static_pointer_cast<SseSession>(shared_from_this());
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(batch->size());
    for (const auto& b : *batch) buffers.emplace_back(asio::buffer(*b));
    asio::async_write(stream_, buffers, [self, batch](beast::error_code ec, std::size_t) {
      if (ec == beast::error::timeout) self->timed_out_ = true;
      self->on_write_done(!ec);
    });
  }

  void close_transport(const std::string& reason) override {
    heartbeat_.cancel();
    Bytes last;
    if (reason == codes::kSlowConsumer) {
      last = serialize_error(make_error(codes::kSlowConsumer, "the connection could not keep up and was closed; reconnect "
                                                         "with Last-Event-ID to resume"),
                             Transport::Sse);
    } else if (!reason.empty()) {
      last = std::make_shared<const std::string>(": closing " + reason + "\n\n");
    }
    log_info("stream_closed", {{"transport", "sse"},
                               {"remote", remote_},
                               {"reason", reason.empty() ? (timed_out_ ? "write_timeout" : "peer_closed") : reason},
                               {"sent", sent_},
                               {"ms", now_mono_ms() - opened_ms_}});
    if (!last || timed_out_) return hard_close();
    stream_.expires_after(std::chrono::seconds(2));
    auto self = std::static_pointer_cast<SseSession>(shared_from_this());
    asio::async_write(stream_, asio::buffer(*last), [self, last](beast::error_code, std::size_t) { self->hard_close(); });
  }

 private:
  void hard_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // The client never sends anything after the request; a read completing means it went away.
  void watch_peer() {
    auto self = std::static_pointer_cast<SseSession>(shared_from_this());
    stream_.socket().async_read_some(asio::buffer(read_buf_), [self](beast::error_code ec, std::size_t) {
      if (self->closed()) return;
      if (ec) return self->terminate("peer_closed");
      self->watch_peer();
    });
  }

  void arm_heartbeat() {
    heartbeat_.expires_after(std::chrono::milliseconds(app_.config().limits.heartbeat_ms));
    auto self = std::static_pointer_cast<SseSession>(shared_from_this());
    heartbeat_.async_wait([self](beast::error_code ec) {
      if (ec || self->closed()) return;
      if (self->token_expired()) return;
      if (self->heartbeat_event_) {
        self->send_private(std::make_shared<const std::string>(
            "event: heartbeat\ndata: {\"seq\":" + std::to_string(self->app_.head_seq()) + "}\n\n"));
      } else {
        self->send_private(heartbeat_bytes());
      }
      self->arm_heartbeat();
    });
  }

  App& app_;
  beast::tcp_stream stream_;
  asio::steady_timer heartbeat_;
  char read_buf_[256];
  bool timed_out_ = false;
  bool heartbeat_event_ = false;
};

}  // namespace

void start_sse(App& app, beast::tcp_stream stream, const HttpRequest& req, StreamRequest sr) {
  auto s = std::make_shared<SseSession>(app, std::move(stream), std::move(sr.sub), req.remote);
  s->hold_connection(std::move(sr.connection));
  app.hub().add(s);
  s->start(req, sr.cursor, sr.heartbeat_event);
}

}  // namespace syncline::server
