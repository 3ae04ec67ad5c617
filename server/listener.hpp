// Layer: server transport. Accepts TCP connections and starts an HTTP session for each.
#pragma once
#include <memory>

#include "net.hpp"

namespace syncline::server {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, App& app) : ioc_(ioc), app_(app), acceptor_(ioc) {}
  // Binds and listens; returns an error message on failure.
  std::string open(const std::string& host, unsigned short port);
  unsigned short port() const { return port_; }
  void run() { do_accept(); }
  void stop();

 private:
  void do_accept();

  asio::io_context& ioc_;
  App& app_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  bool stopped_ = false;
};

}  // namespace syncline::server
