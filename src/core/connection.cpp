// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Connection state machine (see connection.hpp). Decisions the header leaves open:
// - Waiting for the network is BackingOff with no deadline: start() while offline, going
//   offline while connecting/connected, or a failure while offline all park the machine in
//   BackingOff; next_deadline() is nullopt and tick() never opens while offline. Going online
//   (an offline -> online transition) opens at once. Disconnected only ever means "not started
//   or stopped", as the header says.
// - Going offline is not a failure: it closes without counting an attempt or setting
//   last_error.
// - stop() answers Close only when a transport may be open (connecting/connected); otherwise
//   there is nothing to close and it answers None.
// - Stale transport events are tolerated: on_open when not connecting answers Close (that
//   transport is unwanted); a failure while backing off, stopped or in error is ignored.
// - A message while connecting counts as the open (some transports report data first).
// - retry_now() reconnects from BackingOff and from Error (the user's reconnect button); it
//   does nothing when stopped, offline, or already connecting/connected.
// - A timeout <= 0 in the policy disables that timeout.
#include "core/connection.hpp"

#include <algorithm>
#include <limits>

namespace syncline {

namespace {

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) return std::numeric_limits<std::int64_t>::max();
  if (b < 0 && a < std::numeric_limits<std::int64_t>::min() - b) return std::numeric_limits<std::int64_t>::min();
  return a + b;
}

// now - since >= timeout, without overflow (timeout > 0).
bool elapsed(std::int64_t now, std::int64_t since, std::int64_t timeout) {
  return now >= saturating_add(since, timeout);
}

}  // namespace

const char* to_string(ConnectionState s) {
  switch (s) {
    case ConnectionState::Disconnected: return "disconnected";
    case ConnectionState::Connecting: return "connecting";
    case ConnectionState::Connected: return "connected";
    case ConnectionState::BackingOff: return "backing_off";
    case ConnectionState::Error: return "error";
  }
  return "disconnected";
}

ConnectionMachine::ConnectionMachine(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), rng_(seed) {}

ConnectionAction ConnectionMachine::begin_connecting(std::int64_t now_ms) {
  state_ = ConnectionState::Connecting;
  connect_started_ = now_ms;
  connected_since_ = 0;
  backoff_delay_ = 0;
  return ConnectionAction::Open;
}

void ConnectionMachine::enter_backoff(std::int64_t now_ms) {
  const std::int64_t delay = full_jitter_delay_ms(policy_, attempt_, rng_);
  if (attempt_ < std::numeric_limits<int>::max()) ++attempt_;
  state_ = ConnectionState::BackingOff;
  backoff_delay_ = delay;
  backoff_until_ = saturating_add(now_ms, delay);
  connected_since_ = 0;
}

ConnectionAction ConnectionMachine::start(std::int64_t now_ms) {
  if (state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected) return ConnectionAction::None;
  wanted_ = true;
  attempt_ = 0;
  last_error_.clear();
  if (online_) return begin_connecting(now_ms);
  // Offline: wait for the network (see file header).
  state_ = ConnectionState::BackingOff;
  backoff_delay_ = 0;
  backoff_until_ = now_ms;
  return ConnectionAction::None;
}

ConnectionAction ConnectionMachine::stop(std::int64_t /*now_ms*/) {
  const bool transport_open = state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected;
  wanted_ = false;
  state_ = ConnectionState::Disconnected;
  attempt_ = 0;
  backoff_delay_ = 0;
  connected_since_ = 0;
  return transport_open ? ConnectionAction::Close : ConnectionAction::None;
}

ConnectionAction ConnectionMachine::on_open(std::int64_t now_ms) {
  if (state_ == ConnectionState::Connected) return ConnectionAction::None;
  if (state_ != ConnectionState::Connecting) return ConnectionAction::Close;  // stale transport
  state_ = ConnectionState::Connected;
  attempt_ = 0;
  last_message_ = now_ms;
  connected_since_ = now_ms;
  last_error_.clear();
  return ConnectionAction::None;
}

ConnectionAction ConnectionMachine::on_message(std::int64_t now_ms) {
  if (state_ == ConnectionState::Connecting) return on_open(now_ms);
  if (state_ == ConnectionState::Connected) last_message_ = now_ms;
  return ConnectionAction::None;
}

ConnectionAction ConnectionMachine::on_failure(std::int64_t now_ms, std::string reason, bool fatal) {
  const bool transport_open = state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected;
  if (!wanted_ || state_ == ConnectionState::Error) return ConnectionAction::None;  // stopped / already failed
  if (fatal) {
    last_error_ = std::move(reason);
    state_ = ConnectionState::Error;
    backoff_delay_ = 0;
    connected_since_ = 0;
    return transport_open ? ConnectionAction::Close : ConnectionAction::None;
  }
  if (!transport_open) return ConnectionAction::None;  // late report for a transport already given up
  last_error_ = std::move(reason);
  enter_backoff(now_ms);
  return ConnectionAction::Close;
}

ConnectionAction ConnectionMachine::set_online(bool online, std::int64_t now_ms) {
  const bool was_online = online_;
  online_ = online;
  if (!online) {
    if (state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected) {
      state_ = ConnectionState::BackingOff;
      backoff_delay_ = 0;
      backoff_until_ = now_ms;
      connected_since_ = 0;
      return ConnectionAction::Close;
    }
    return ConnectionAction::None;
  }
  if (!was_online && wanted_ && state_ == ConnectionState::BackingOff) return begin_connecting(now_ms);
  return ConnectionAction::None;
}

ConnectionAction ConnectionMachine::retry_now(std::int64_t now_ms) {
  if (!wanted_) return ConnectionAction::None;
  if (state_ == ConnectionState::Error) {
    attempt_ = 0;
    if (!online_) {
      state_ = ConnectionState::BackingOff;
      backoff_delay_ = 0;
      backoff_until_ = now_ms;
      return ConnectionAction::None;
    }
    return begin_connecting(now_ms);
  }
  if (state_ == ConnectionState::BackingOff && online_) return begin_connecting(now_ms);
  return ConnectionAction::None;
}

ConnectionAction ConnectionMachine::tick(std::int64_t now_ms) {
  switch (state_) {
    case ConnectionState::BackingOff:
      if (wanted_ && online_ && now_ms >= backoff_until_) return begin_connecting(now_ms);
      return ConnectionAction::None;
    case ConnectionState::Connecting:
      if (policy_.connect_timeout_ms > 0 && elapsed(now_ms, connect_started_, policy_.connect_timeout_ms)) {
        return on_failure(now_ms, "connect_timeout");
      }
      return ConnectionAction::None;
    case ConnectionState::Connected:
      if (policy_.heartbeat_timeout_ms > 0 && elapsed(now_ms, last_message_, policy_.heartbeat_timeout_ms)) {
        return on_failure(now_ms, "heartbeat_timeout");
      }
      return ConnectionAction::None;
    case ConnectionState::Disconnected:
    case ConnectionState::Error:
      return ConnectionAction::None;
  }
  return ConnectionAction::None;
}

std::optional<std::int64_t> ConnectionMachine::next_deadline() const {
  switch (state_) {
    case ConnectionState::BackingOff:
      if (wanted_ && online_) return backoff_until_;
      return std::nullopt;
    case ConnectionState::Connecting:
      if (policy_.connect_timeout_ms > 0) return saturating_add(connect_started_, policy_.connect_timeout_ms);
      return std::nullopt;
    case ConnectionState::Connected:
      if (policy_.heartbeat_timeout_ms > 0) return saturating_add(last_message_, policy_.heartbeat_timeout_ms);
      return std::nullopt;
    case ConnectionState::Disconnected:
    case ConnectionState::Error:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace syncline
