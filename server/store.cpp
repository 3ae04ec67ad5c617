// Layer: server. Which Store a database URL opens, and the facts about the config every store
// shares.
#include "store.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "pg_store.hpp"
#include "sqlite_store.hpp"

namespace syncline::server {
namespace {

bool is_id_path(const std::vector<std::string>& path) { return path.size() == 1 && path[0] == "id"; }

bool is_postgres_url(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& url, StoreOptions options, const Config& config) {
  if (is_postgres_url(url)) {
    auto p = PgStore::open(url, options, config);
    if (!p) return p.error();
    return std::unique_ptr<Store>(std::move(*p));
  }
  auto s = SqliteStore::open(url, options, config);
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(*s));
}

Result<std::unique_ptr<Store>> Store::open_reader(const std::string& url, StoreOptions options, const Config& config) {
  if (is_postgres_url(url)) {
    auto p = PgStore::open_reader(url, options, config);
    if (!p) return p.error();
    return std::unique_ptr<Store>(std::move(*p));
  }
  auto s = SqliteStore::open_reader(url, options, config);
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(*s));
}

bool Store::wait_for_log(int timeout_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  return false;
}

std::vector<std::vector<std::string>> Store::scope_paths(const Config& config) {
  std::vector<std::vector<std::string>> out;
  for (const auto& [name, cc] : config.collections) {
    for (const auto& [role, rule] : cc.read) {
      if (rule.kind != RuleTemplate::Kind::Where) continue;
      for (const auto& c : rule.filter.conditions()) {
        if (c.op != FilterOp::Eq || c.values.size() != 1 || c.values[0].find('{') == std::string::npos) continue;
        if (is_id_path(c.path)) continue;  // the primary key already serves it
        if (std::find(out.begin(), out.end(), c.path) == out.end()) out.push_back(c.path);
      }
    }
  }
  return out;
}

}  // namespace syncline::server
