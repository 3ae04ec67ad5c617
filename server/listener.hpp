// Layer: server transport. Accepts TCP connections and starts an HTTP session for each.
//
// Every accepted connection holds a slot (ConnectionSlot) for as long as its socket is open,
// whichever session owns it by then (HTTP, SSE or WebSocket). Past limits.max_http_connections
// (derived from RLIMIT_NOFILE when not set), or past limits.max_connections_per_address from one
// address, a new connection is answered 503 and closed, so the
// server never runs out of descriptors for its database and its own work. Accept errors (a
// descriptor limit reached anyway, out of buffers) are retried after a back-off that grows from
// 10 ms to 1 s, and logged at most once a second with a count.
#pragma once
#include <memory>

#include "net.hpp"

namespace syncline::server {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, App& app) : ioc_(ioc), app_(app), acceptor_(ioc), backoff_timer_(ioc) {}
  // Binds and listens; returns an error message on failure.
  std::string open(const std::string& host, unsigned short port);
  unsigned short port() const { return port_; }
  // The connection cap in force (after deriving it from the descriptor limit).
  std::size_t max_connections() const { return max_connections_; }
  void run() { do_accept(); }
  void stop();

 private:
  void do_accept();
  void on_accept_error(const beast::error_code& ec);
  void refuse(tcp::socket s, const std::string& message);

  asio::io_context& ioc_;
  App& app_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  unsigned short port_ = 0;
  bool stopped_ = false;
  std::size_t max_connections_ = 0;
  long long backoff_ms_ = 0;
  long long errors_since_log_ = 0;
  long long last_error_log_ms_ = 0;
};

}  // namespace syncline::server
