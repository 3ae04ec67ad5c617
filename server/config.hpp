// Layer: server. The server configuration (JSON file, docs/server-config.md) and the read/write
// rules it declares. Rules are compiled once at load time; per caller they are resolved against
// the token claims into an Access (none / all / a core Filter). Beast-free.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "auth.hpp"
#include "core/error.hpp"
#include "core/filter.hpp"
#include "core/json.hpp"
#include "core/mutation.hpp"

namespace syncline::server {

struct Limits {
  std::size_t max_body_bytes = 1 << 20;  // HTTP bodies and WebSocket frames
  std::size_t max_batch = 500;           // mutations per batch
  double rate_limit_per_sec = 50;        // per token (per address when anonymous); 0 disables
  double rate_limit_burst = 100;
  std::size_t send_queue_messages = 4096;  // per stream connection
  std::size_t send_queue_bytes = 16u << 20;
  std::int64_t heartbeat_ms = 15000;
  std::int64_t write_timeout_ms = 30000;   // a stream write stuck this long: slow consumer
  std::int64_t log_retention = 100000;     // changes kept for resume; 0 keeps everything
  std::int64_t outcome_retention = 1000;   // mutation outcomes kept per client
  std::size_t snapshot_default_limit = 1000;
  std::size_t snapshot_max_limit = 5000;
  std::size_t max_connections = 10000;     // concurrent SSE + WebSocket streams
  int ws_max_invalid_frames = 20;          // then the socket is closed (1008)
  std::int64_t idle_timeout_ms = 60000;    // keep-alive HTTP connections
  std::int64_t demo_token_ttl_s = 86400;
  // Every JSON text from a client (bodies, frames, cursors, token parts) nests at most this deep.
  int max_json_depth = 64;
  // Concurrent TCP connections of any kind; 0 = derived from RLIMIT_NOFILE at start (leaving
  // room for the database and log files), at most 4096.
  std::size_t max_http_connections = 0;
  // Resume catch-up: bytes read from the log and waiting in stream queues, over all streams and
  // per token subject (0 = a quarter of the total), so no caller can hold the server's memory.
  std::size_t catchup_memory_bytes = 64u << 20;
  std::size_t catchup_memory_per_user = 0;
  std::size_t max_streams_per_user = 64;  // concurrent SSE + WebSocket streams per token subject
  // Connections from one address (0 = no per-address cap). Off by default: behind a proxy or a
  // load balancer every client has the proxy's address.
  std::size_t max_connections_per_address = 0;
  std::size_t snapshot_max_bytes = 8u << 20;  // documents' JSON per snapshot page (then `next`)
  std::size_t max_where_conditions = 32;      // conditions in a subscription's or snapshot's `where`
  std::size_t read_threads = 2;           // catch-up, snapshot and metrics reads off the io thread
};

// Who may publish dataset-wide custom events (no collection) and who receives them, per role
// ("*" = any role not listed). With a config file and no "events" key nobody may publish them and
// everybody receives them; in open mode everybody may do both.
struct EventRules {
  std::map<std::string, bool> publish;
  std::map<std::string, bool> read;
  bool may_publish(const std::string& role) const { return lookup(publish, role); }
  bool may_read(const std::string& role) const { return lookup(read, role); }

 private:
  static bool lookup(const std::map<std::string, bool>& m, const std::string& role) {
    auto it = m.find(role);
    if (it == m.end()) it = m.find("*");
    return it != m.end() && it->second;
  }
};

// A rule as written in the config: "all", "none", or a where-filter whose values may contain
// {claim} placeholders (e.g. "customer_id=eq.{sub}").
struct RuleTemplate {
  enum class Kind { None, All, Where };
  Kind kind = Kind::None;
  std::string where;  // as written
  Filter filter;      // parsed, placeholders still in the values
};

// A rule resolved for one caller.
struct Access {
  enum class Kind { None, All, Where };
  Kind kind = Kind::None;
  Filter filter;  // Kind::Where

  bool allows_any() const { return kind != Kind::None; }
  bool matches(std::string_view id, const Json& fields) const {
    if (kind == Kind::None) return false;
    if (kind == Kind::All) return true;
    return filter.matches(id, fields);
  }
};

struct CollectionConfig {
  std::string name;
  std::map<std::string, RuleTemplate> read;                          // role ("*" = any) -> rule
  std::map<std::string, std::map<MutationOp, RuleTemplate>> write;  // role -> op -> rule
  std::vector<std::vector<std::string>> unique;                     // field lists
};

struct Config {
  std::string jwt_secret;
  bool demo_tokens = false;
  std::vector<std::string> allowed_origins;  // WebSocket Origin allow-list and CORS; empty = any
  // Addresses of load balancers in front of this node: from them, the client's address for the
  // per-address limits is the last X-Forwarded-For entry they added. Empty: the peer's address.
  std::vector<std::string> trusted_proxies;
  Limits limits;
  std::map<std::string, CollectionConfig> collections;
  EventRules events{{}, {{"*", true}}};
  bool open_mode = false;  // no --config: every collection, every role reads and writes all

  // Parses and validates a config document. Errors name the offending key in `field`.
  static Result<Config> from_json(const Json& j);
  static Result<Config> load_file(const std::string& path);
  static Config open_default();

  // nullptr when the collection is not configured (in open mode: a synthetic permissive one).
  const CollectionConfig* collection(const std::string& name) const;
  bool origin_allowed(const std::string& origin) const;

  Access read_access(const std::string& collection, const Claims& claims) const;
  Access write_access(const std::string& collection, MutationOp op, const Claims& claims) const;

 private:
  // Open mode: the one permissive collection every valid name maps to (its `name` is empty).
  // Immutable after open_default(), so lookups are safe from any thread.
  CollectionConfig open_collection_;
};

// Substitutes {claim} placeholders and parses the result; a claim that is missing or contains
// characters outside [A-Za-z0-9_.:@-] resolves to Access::None (deny) rather than a broken filter.
Access resolve_rule(const RuleTemplate& rule, const Claims& claims);

}  // namespace syncline::server
