#include "config.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/document.hpp"

namespace syncline::server {
namespace {

Error bad(std::string msg, std::string field) {
  return make_error(codes::kInvalidRequest, std::move(msg), std::move(field));
}

bool safe_claim_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '@' || c == '-';
}

// Replaces {name} with the claim's value. Returns nullopt when a claim is absent or unsafe.
std::optional<std::string> substitute(const std::string& text, const Json& claims) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') {
      out += text[i];
      continue;
    }
    auto close = text.find('}', i);
    if (close == std::string::npos) return std::nullopt;
    std::string name = text.substr(i + 1, close - i - 1);
    if (!claims.is_object() || !claims.contains(name)) return std::nullopt;
    const Json& v = claims[name];
    std::string value;
    if (v.is_string()) value = v.get<std::string>();
    else if (v.is_number_integer()) value = std::to_string(v.get<long long>());
    else if (v.is_boolean()) value = v.get<bool>() ? "true" : "false";
    else return std::nullopt;
    if (value.empty()) return std::nullopt;
    for (char c : value) {
      if (!safe_claim_char(c)) return std::nullopt;
    }
    out += value;
    i = close;
  }
  return out;
}

Result<RuleTemplate> parse_rule(const Json& j, const std::string& field) {
  if (!j.is_string()) return bad("a rule must be \"all\", \"none\" or a where filter", field);
  std::string s = j.get<std::string>();
  RuleTemplate r;
  if (s == "all") {
    r.kind = RuleTemplate::Kind::All;
  } else if (s == "none" || s.empty()) {
    r.kind = RuleTemplate::Kind::None;
  } else {
    r.kind = RuleTemplate::Kind::Where;
    r.where = s;
    // Parsed once with the placeholders in place: a claim is substituted into a condition's
    // value (never into the text), so it can neither change the grammar nor compare as a number.
    auto f = Filter::parse(s);
    if (!f) return bad("rule is not a valid where filter: " + f.error().message, field);
    for (const auto& c : f->conditions()) {
      for (const auto& v : c.values) {
        auto open = v.find('{');
        if (open != std::string::npos && v.find('}', open) == std::string::npos) {
          return bad("unterminated {placeholder} in rule", field);
        }
      }
    }
    r.filter = std::move(*f);
  }
  return r;
}

template <typename T>
bool read_num(const Json& obj, const char* key, T& out, std::string& err) {
  if (!obj.contains(key)) return true;
  const Json& v = obj[key];
  if (!v.is_number() || v.get<double>() < 0) {
    err = key;
    return false;
  }
  out = static_cast<T>(v.get<double>());
  return true;
}

}  // namespace

Access resolve_rule(const RuleTemplate& rule, const Claims& claims) {
  Access a;
  switch (rule.kind) {
    case RuleTemplate::Kind::None: return a;
    case RuleTemplate::Kind::All: a.kind = Access::Kind::All; return a;
    case RuleTemplate::Kind::Where: {
      Json all = claims.raw;
      if (!all.is_object()) all = Json::object();
      all["sub"] = claims.sub;
      all["role"] = claims.role;
      std::vector<Condition> conditions = rule.filter.conditions();
      for (auto& c : conditions) {
        for (auto& v : c.values) {
          if (v.find('{') == std::string::npos) continue;
          auto value = substitute(v, all);
          if (!value) return a;  // a claim the rule needs is missing or unsafe: deny
          v = std::move(*value);
          c.exact_string = true;
        }
      }
      a.kind = Access::Kind::Where;
      a.filter = Filter(std::move(conditions));
      return a;
    }
  }
  return a;
}

Result<Config> Config::from_json(const Json& j) {
  if (!j.is_object()) return bad("config must be a JSON object", "");
  Config c;
  if (j.contains("jwt_secret")) {
    if (!j["jwt_secret"].is_string()) return bad("jwt_secret must be a string", "jwt_secret");
    c.jwt_secret = j["jwt_secret"].get<std::string>();
  }
  if (j.contains("demo_tokens")) {
    if (!j["demo_tokens"].is_boolean()) return bad("demo_tokens must be a boolean", "demo_tokens");
    c.demo_tokens = j["demo_tokens"].get<bool>();
  }
  if (j.contains("trusted_proxies")) {
    const Json& o = j["trusted_proxies"];
    if (!o.is_array()) return bad("trusted_proxies must be an array of IP addresses", "trusted_proxies");
    for (const auto& s : o) {
      if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > 64) {
        return bad("trusted_proxies must be an array of IP addresses", "trusted_proxies");
      }
      c.trusted_proxies.push_back(s.get<std::string>());
    }
  }
  if (j.contains("allowed_origins")) {
    const Json& o = j["allowed_origins"];
    if (!o.is_array()) return bad("allowed_origins must be an array of strings", "allowed_origins");
    for (const auto& s : o) {
      if (!s.is_string()) return bad("allowed_origins must be an array of strings", "allowed_origins");
      c.allowed_origins.push_back(s.get<std::string>());
    }
  }
  if (j.contains("limits")) {
    const Json& l = j["limits"];
    if (!l.is_object()) return bad("limits must be an object", "limits");
    std::string err;
    Limits& L = c.limits;
    bool ok = read_num(l, "max_body_bytes", L.max_body_bytes, err) && read_num(l, "max_batch", L.max_batch, err) &&
              read_num(l, "rate_limit_per_sec", L.rate_limit_per_sec, err) &&
              read_num(l, "rate_limit_burst", L.rate_limit_burst, err) &&
              read_num(l, "send_queue_messages", L.send_queue_messages, err) &&
              read_num(l, "send_queue_bytes", L.send_queue_bytes, err) &&
              read_num(l, "heartbeat_ms", L.heartbeat_ms, err) &&
              read_num(l, "write_timeout_ms", L.write_timeout_ms, err) &&
              read_num(l, "log_retention", L.log_retention, err) &&
              read_num(l, "outcome_retention", L.outcome_retention, err) &&
              read_num(l, "snapshot_default_limit", L.snapshot_default_limit, err) &&
              read_num(l, "snapshot_max_limit", L.snapshot_max_limit, err) &&
              read_num(l, "max_connections", L.max_connections, err) &&
              read_num(l, "ws_max_invalid_frames", L.ws_max_invalid_frames, err) &&
              read_num(l, "idle_timeout_ms", L.idle_timeout_ms, err) &&
              read_num(l, "demo_token_ttl_s", L.demo_token_ttl_s, err) &&
              read_num(l, "max_json_depth", L.max_json_depth, err) &&
              read_num(l, "max_http_connections", L.max_http_connections, err) &&
              read_num(l, "catchup_memory_bytes", L.catchup_memory_bytes, err) &&
              read_num(l, "catchup_memory_per_user", L.catchup_memory_per_user, err) &&
              read_num(l, "max_streams_per_user", L.max_streams_per_user, err) &&
              read_num(l, "read_threads", L.read_threads, err) &&
              read_num(l, "max_connections_per_address", L.max_connections_per_address, err) &&
              read_num(l, "snapshot_max_bytes", L.snapshot_max_bytes, err) &&
              read_num(l, "max_where_conditions", L.max_where_conditions, err);
    if (!ok) return bad("limits." + err + " must be a non-negative number", "limits." + err);
    if (L.max_batch == 0 || L.max_body_bytes < 1024 || L.send_queue_messages == 0 || L.heartbeat_ms < 10 ||
        L.snapshot_max_limit == 0 || L.snapshot_default_limit == 0 || L.outcome_retention < 1 ||
        L.max_json_depth < 4 || L.max_json_depth > 512 || L.catchup_memory_bytes < (1u << 20) ||
        L.max_streams_per_user == 0 || L.read_threads == 0 || L.read_threads > 16 || L.snapshot_max_bytes < 1024 ||
        L.max_where_conditions == 0) {
      return bad("limits out of range", "limits");
    }
    if (L.snapshot_default_limit > L.snapshot_max_limit) L.snapshot_default_limit = L.snapshot_max_limit;
    if (L.rate_limit_burst < 1) L.rate_limit_burst = 1;
    if (L.catchup_memory_per_user == 0 || L.catchup_memory_per_user > L.catchup_memory_bytes) {
      L.catchup_memory_per_user = L.catchup_memory_per_user ? L.catchup_memory_bytes : L.catchup_memory_bytes / 4;
    }
  }
  if (j.contains("events")) {
    const Json& e = j["events"];
    if (!e.is_object()) return bad("events must be an object {publish: {role: rule}, read: {role: rule}}", "events");
    for (const char* what : {"publish", "read"}) {
      if (!e.contains(what)) continue;
      std::string f = std::string("events.") + what;
      if (!e[what].is_object()) return bad(f + " must map role -> \"all\" or \"none\"", f);
      auto& m = std::string(what) == "publish" ? c.events.publish : c.events.read;
      m.clear();
      for (auto r = e[what].begin(); r != e[what].end(); ++r) {
        if (!r.value().is_string() || (r.value() != "all" && r.value() != "none")) {
          return bad("dataset-wide event rules are \"all\" or \"none\"", f + "." + r.key());
        }
        m[r.key()] = r.value() == "all";
      }
    }
  }
  if (!j.contains("collections") || !j["collections"].is_object()) {
    return bad("collections must be an object of collection name -> rules", "collections");
  }
  for (auto it = j["collections"].begin(); it != j["collections"].end(); ++it) {
    const std::string& name = it.key();
    std::string base = "collections." + name;
    if (!is_valid_collection(name)) return bad("invalid collection name", base);
    const Json& cj = it.value();
    if (!cj.is_object()) return bad("collection config must be an object", base);
    CollectionConfig cc;
    cc.name = name;
    if (cj.contains("read")) {
      if (!cj["read"].is_object()) return bad("read must map role -> rule", base + ".read");
      for (auto r = cj["read"].begin(); r != cj["read"].end(); ++r) {
        auto rule = parse_rule(r.value(), base + ".read." + r.key());
        if (!rule) return rule.error();
        cc.read[r.key()] = *rule;
      }
    }
    if (cj.contains("write")) {
      if (!cj["write"].is_object()) return bad("write must map role -> rule", base + ".write");
      for (auto r = cj["write"].begin(); r != cj["write"].end(); ++r) {
        std::string f = base + ".write." + r.key();
        auto& ops = cc.write[r.key()];
        if (r.value().is_string()) {
          auto rule = parse_rule(r.value(), f);
          if (!rule) return rule.error();
          for (auto op : {MutationOp::Insert, MutationOp::Update, MutationOp::Delete}) ops[op] = *rule;
        } else if (r.value().is_object()) {
          for (auto o = r.value().begin(); o != r.value().end(); ++o) {
            auto op = mutation_op_from_string(o.key());
            if (!op) return bad("write ops are insert, update, delete", f + "." + o.key());
            auto rule = parse_rule(o.value(), f + "." + o.key());
            if (!rule) return rule.error();
            ops[*op] = *rule;
          }
        } else {
          return bad("write rule must be a rule string or {op: rule}", f);
        }
      }
    }
    if (cj.contains("unique")) {
      const Json& u = cj["unique"];
      if (!u.is_array()) return bad("unique must be an array of field lists", base + ".unique");
      for (const auto& fields : u) {
        std::vector<std::string> list;
        if (fields.is_string()) {
          list.push_back(fields.get<std::string>());
        } else if (fields.is_array() && !fields.empty()) {
          for (const auto& f : fields) {
            if (!f.is_string() || f.get<std::string>().empty()) {
              return bad("unique field names must be strings", base + ".unique");
            }
            list.push_back(f.get<std::string>());
          }
        } else {
          return bad("unique must be an array of field lists", base + ".unique");
        }
        cc.unique.push_back(std::move(list));
      }
    }
    c.collections[name] = std::move(cc);
  }
  return c;
}

Result<Config> Config::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad("cannot read config file " + path, "--config");
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = parse_json_nothrow(ss.str());
  if (j.is_discarded()) return make_error(codes::kInvalidJson, "config file is not valid JSON: " + path, "--config");
  return from_json(j);
}

Config Config::open_default() {
  Config c;
  c.open_mode = true;
  c.events.publish["*"] = true;
  // Built once here, never in collection(): the writer thread and the io thread both look
  // collections up, so the lookup must not write shared state.
  c.open_collection_.read["*"] = RuleTemplate{RuleTemplate::Kind::All, {}, {}};
  auto& w = c.open_collection_.write["*"];
  for (auto op : {MutationOp::Insert, MutationOp::Update, MutationOp::Delete}) {
    w[op] = RuleTemplate{RuleTemplate::Kind::All, {}, {}};
  }
  return c;
}

const CollectionConfig* Config::collection(const std::string& name) const {
  auto it = collections.find(name);
  if (it != collections.end()) return &it->second;
  if (open_mode && is_valid_collection(name)) return &open_collection_;
  return nullptr;
}

bool Config::origin_allowed(const std::string& origin) const {
  if (allowed_origins.empty()) return true;
  for (const auto& o : allowed_origins) {
    if (o == "*" || o == origin) return true;
  }
  return false;
}

Access Config::read_access(const std::string& name, const Claims& claims) const {
  const CollectionConfig* cc = collection(name);
  if (!cc) return {};
  auto it = cc->read.find(claims.role);
  if (it == cc->read.end()) it = cc->read.find("*");
  if (it == cc->read.end()) return {};
  return resolve_rule(it->second, claims);
}

Access Config::write_access(const std::string& name, MutationOp op, const Claims& claims) const {
  const CollectionConfig* cc = collection(name);
  if (!cc) return {};
  auto it = cc->write.find(claims.role);
  if (it == cc->write.end()) it = cc->write.find("*");
  if (it == cc->write.end()) return {};
  auto o = it->second.find(op);
  if (o == it->second.end()) return {};
  return resolve_rule(o->second, claims);
}

}  // namespace syncline::server
