#include "log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace syncline::server {

long long now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

long long now_mono_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void log_line(const char* level, const std::string& msg, Json fields) {
  long long ms = now_unix_ms();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  Json line = Json::object();
  line["ts"] = ts;
  line["level"] = level;
  line["msg"] = msg;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  // nlohmann sorts keys; put ts/level/msg first for readability by writing them by hand.
  std::string out = "{\"ts\":" + line["ts"].dump() + ",\"level\":" + line["level"].dump() +
                    ",\"msg\":" + line["msg"].dump();
  for (auto it = line.begin(); it != line.end(); ++it) {
    if (it.key() == "ts" || it.key() == "level" || it.key() == "msg") continue;
    out += ",";
    out += Json(it.key()).dump();
    out += ":";
    out += it.value().dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  out += "}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace syncline::server
