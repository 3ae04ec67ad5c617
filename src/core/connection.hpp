// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The connection state machine. It never touches a socket: adapters report what happened
// (opened, message, failed, online/offline, tick) with the current time, and read back what
// to do (open a connection, close it) and when to call tick() next.
//
// States: disconnected (not started or stopped), connecting, connected, backing_off (waiting
// before the next attempt), error (a fatal failure such as 401/403: no retry until start()).
// Backoff: "full jitter" — the delay before attempt n is uniform in [0, min(cap, base * 2^n)]
// (core/backoff.hpp, shared with RetryBackoff).
// A connected stream that receives nothing (not even a heartbeat) for heartbeat_timeout is
// declared dead. Going online while backing off retries at once.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/backoff.hpp"
#include "core/random.hpp"

namespace syncline {

enum class ConnectionState { Disconnected, Connecting, Connected, BackingOff, Error };
const char* to_string(ConnectionState s);

enum class ConnectionAction { None, Open, Close };

class ConnectionMachine {
 public:
  ConnectionMachine(BackoffPolicy policy, std::uint64_t seed);

  // Inputs. Each returns the action the adapter must take now.
  ConnectionAction start(std::int64_t now_ms);     // begin connecting (if online)
  ConnectionAction stop(std::int64_t now_ms);      // user asked to disconnect
  ConnectionAction on_open(std::int64_t now_ms);   // transport reports open
  ConnectionAction on_message(std::int64_t now_ms);  // any bytes, including heartbeats
  // Transport failed or closed. fatal: do not retry (e.g. auth refused) until start().
  ConnectionAction on_failure(std::int64_t now_ms, std::string reason, bool fatal = false);
  ConnectionAction set_online(bool online, std::int64_t now_ms);
  // Retry now (user pressed reconnect, tab became visible).
  ConnectionAction retry_now(std::int64_t now_ms);
  ConnectionAction tick(std::int64_t now_ms);

  ConnectionState state() const { return state_; }
  bool online() const { return online_; }
  int attempt() const { return attempt_; }
  const std::string& last_error() const { return last_error_; }
  std::int64_t connected_since_ms() const { return connected_since_; }
  // When tick() must be called next (nullopt: no timer needed).
  std::optional<std::int64_t> next_deadline() const;
  // Delay chosen for the current backoff (for status displays).
  std::int64_t backoff_delay_ms() const { return backoff_delay_; }

 private:
  ConnectionAction begin_connecting(std::int64_t now_ms);
  void enter_backoff(std::int64_t now_ms);

  BackoffPolicy policy_;
  Rng rng_;
  ConnectionState state_ = ConnectionState::Disconnected;
  bool wanted_ = false;  // start() called and not stopped
  bool online_ = true;
  int attempt_ = 0;
  std::int64_t backoff_until_ = 0;
  std::int64_t backoff_delay_ = 0;
  std::int64_t connect_started_ = 0;
  std::int64_t last_message_ = 0;
  std::int64_t connected_since_ = 0;
  std::string last_error_;
};

}  // namespace syncline
