// Layer: server. Structured logging: one JSON object per line on stdout.
// Must not depend on Beast (kept out of the transport headers so every TU can log cheaply).
#pragma once
#include <string>

#include "core/json.hpp"

namespace syncline::server {

// Writes {"ts":"<ISO-8601 UTC>","level":level,"msg":msg,...fields} and flushes, so tests and
// log shippers see each line as soon as it happens.
void log_line(const char* level, const std::string& msg, Json fields = Json::object());
inline void log_info(const std::string& msg, Json fields = Json::object()) {
  log_line("info", msg, std::move(fields));
}
inline void log_warn(const std::string& msg, Json fields = Json::object()) {
  log_line("warn", msg, std::move(fields));
}
inline void log_error(const std::string& msg, Json fields = Json::object()) {
  log_line("error", msg, std::move(fields));
}

// Milliseconds since the epoch / a monotonic clock.
long long now_unix_ms();
long long now_mono_ms();

}  // namespace syncline::server
