#include "listener.hpp"

#include "log.hpp"

namespace syncline::server {

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
  return {};
}

void Listener::do_accept() {
  acceptor_.async_accept(ioc_, [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
    if (self->stopped_) return;
    if (!ec) {
      beast::error_code ig;
      s.set_option(tcp::no_delay(true), ig);
      start_http(self->app_, std::move(s));
    } else if (ec == asio::error::operation_aborted) {
      return;
    } else {
      log_warn("accept failed", {{"error", ec.message()}});
    }
    self->do_accept();
  });
}

void Listener::stop() {
  stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
}

}  // namespace syncline::server
