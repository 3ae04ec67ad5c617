#include "listener.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>

#include "log.hpp"

namespace syncline::server {
namespace {

// Descriptors kept free for the database (writer, readers, WAL, shm), logs and refusals.
constexpr std::size_t kReservedDescriptors = 64;
constexpr std::size_t kDefaultMaxConnections = 4096;

std::size_t descriptor_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<std::size_t>(rl.rlim_cur);
}

}  // namespace

std::string Listener::open(const std::string& host, unsigned short port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    // Allow host names such as "localhost".
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) return "cannot resolve host " + host;
    addr = results.begin()->endpoint().address();
  }
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (ec) return "open: " + ec.message();
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(ep, ec);
  if (ec) return "bind " + host + ":" + std::to_string(port) + ": " + ec.message();
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "listen: " + ec.message();
  port_ = acceptor_.local_endpoint().port();

  const std::size_t fds = descriptor_limit();
  const std::size_t room = fds > 2 * kReservedDescriptors ? fds - kReservedDescriptors : fds / 2;
  const std::size_t configured = app_.config().limits.max_http_connections;
  max_connections_ = configured ? std::min(configured, room) : std::min(kDefaultMaxConnections, room);
  if (configured && configured > room) {
    log_warn("max_http_connections lowered to fit the descriptor limit",
             {{"configured", configured}, {"nofile", fds}, {"max_http_connections", max_connections_}});
  }
  return {};
}

void Listener::do_accept() {
  acceptor_.async_accept(ioc_, [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
    if (self->stopped_) return;
    if (ec == asio::error::operation_aborted) return;
    if (ec) return self->on_accept_error(ec);
    self->backoff_ms_ = 0;
    beast::error_code ig;
    auto peer = s.remote_endpoint(ig);
    std::string address = ig ? std::string() : peer.address().to_string();
    const std::size_t per_address = self->app_.config().limits.max_connections_per_address;
    if (self->app_.open_connections() >= self->max_connections_) {
      self->refuse(std::move(s), "too many connections (limits.max_http_connections); retry later");
    } else if (per_address && self->app_.connections_from(address) >= per_address) {
      self->refuse(std::move(s), "too many connections from this address (limits.max_connections_per_address); retry later");
    } else {
      s.set_option(tcp::no_delay(true), ig);
      start_http(self->app_, std::move(s), self->app_.connection_slot(address));
    }
    self->do_accept();
  });
}

void Listener::on_accept_error(const beast::error_code& ec) {
  // Retrying at once would spin: the condition (no descriptors, no buffers) lasts until some
  // connection closes. Wait, longer each time, and say so once a second, not once per try.
  ++errors_since_log_;
  const long long now = now_mono_ms();
  if (now - last_error_log_ms_ >= 1000) {
    log_warn("accept failed", {{"error", ec.message()},
                               {"count", errors_since_log_},
                               {"open_connections", app_.open_connections()},
                               {"retry_ms", std::max<long long>(backoff_ms_ * 2, 10)}});
    last_error_log_ms_ = now;
    errors_since_log_ = 0;
  }
  backoff_ms_ = std::clamp<long long>(backoff_ms_ * 2, 10, 1000);
  backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
  backoff_timer_.async_wait([self = shared_from_this()](beast::error_code tec) {
    if (tec || self->stopped_) return;
    self->do_accept();
  });
}

namespace {

// A refused connection: the 503 is written, then the socket is closed once the peer's data (its
// request) has been read off or a second has passed, so the peer sees the answer instead of a
// reset. It holds no slot and lives at most that second.
class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(tcp::socket s, const std::string& message) : stream_(std::move(s)) {
    const std::string body = Json{{"error", {{"code", "unavailable"}, {"message", message}}}}.dump();
    response_ = "HTTP/1.1 503 Service Unavailable\r\nServer: syncline-server\r\nContent-Type: application/json\r\n"
                "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  void run() {
    stream_.expires_after(std::chrono::seconds(1));
    asio::async_write(stream_, asio::buffer(response_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      beast::error_code ig;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ig);
      if (ec) return self->stream_.close();
      self->drain();
    });
  }

 private:
  void drain() {
    stream_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->stream_.close();
      self->drain();
    });
  }
  beast::tcp_stream stream_;
  std::string response_;
  std::array<char, 4096> buf_{};
};

}  // namespace

void Listener::refuse(tcp::socket s, const std::string& message) {
  app_.metrics().connections_refused++;
  std::make_shared<Refusal>(std::move(s), message)->run();
}

void Listener::stop() {
  stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  backoff_timer_.cancel();
}

}  // namespace syncline::server
