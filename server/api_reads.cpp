// Layer: server. The read side: GET /v1/snapshot (validated here, read and serialised on a
// reader thread) and the validation of a stream request (SSE or WebSocket) before the transport
// hands it to a stream session. Both scope what they return by the caller's read rules AND the
// request's ?collections= and ?where= (see api.hpp for the pipeline).
#include <algorithm>
#include <map>
#include <sstream>

#include "api.hpp"
#include "core/document.hpp"

namespace syncline::server {
namespace {

bool parse_int64(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::variant<std::vector<std::string>, ApiError> App::parse_collections(const std::string* param,
                                                                        const Claims& claims) {
  std::vector<std::string> out;
  if (!param || param->empty()) {
    // Everything the caller may read (open mode: every collection, expressed as "no list").
    for (const auto& [name, cc] : config_.collections) {
      if (config_.read_access(name, claims).allows_any()) out.push_back(name);
    }
    return out;
  }
  std::stringstream ss(*param);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (!is_valid_collection(name)) {
      return api_error(codes::kInvalidRequest, "invalid collection name '" + name + "'", "collections");
    }
    if (!config_.collection(name)) {
      return api_error(codes::kNotFound, "unknown collection '" + name + "'", "collections");
    }
    if (!config_.read_access(name, claims).allows_any()) {
      return api_error(codes::kForbidden, "role '" + claims.role + "' may not read " + name, "collections");
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  if (out.empty()) return api_error(codes::kInvalidRequest, "collections is empty", "collections");
  return out;
}

std::variant<Filter, ApiError> App::parse_where(const HttpRequest& req) const {
  const std::string* w = req.param("where");
  if (!w || w->empty()) return Filter();
  auto f = Filter::parse(*w);
  if (!f) {
    Error e = f.error();
    e.field = "where";
    return ApiError{e};
  }
  // Every condition is evaluated for every row a stream or snapshot looks at: bounded.
  constexpr std::size_t kMaxInItems = 256;
  std::size_t items = 0;
  for (const auto& c : f->conditions()) items += c.values.size();
  if (f->conditions().size() > config_.limits.max_where_conditions || items > kMaxInItems) {
    return api_error(codes::kInvalidRequest,
                     "where holds more than " + std::to_string(config_.limits.max_where_conditions) +
                         " conditions (limits.max_where_conditions) or more than " + std::to_string(kMaxInItems) +
                         " values",
                     "where");
  }
  return std::move(*f);
}

std::variant<StreamRequest, ApiError> App::open_stream(const HttpRequest& req, Transport t) {
  if (shutting_down_) return api_error(codes::kUnavailable, "server is shutting down");
  if (t == Transport::Ws) {
    std::string origin = req.header("origin");
    if (!origin.empty() && !config_.origin_allowed(origin)) {
      return api_error(codes::kForbidden, "origin '" + origin + "' is not allowed", "origin");
    }
  }
  auto auth = admit(req);
  if (auto* e = std::get_if<ApiError>(&auth)) return *e;
  Claims claims = std::get<Claims>(std::move(auth));
  if (hub_.size() >= config_.limits.max_connections) {
    ApiError e = api_error(codes::kUnavailable, "too many stream connections");
    e.retry_after_s = 5;
    return e;
  }
  if (hub_.streams_of(claims.sub) >= config_.limits.max_streams_per_user) {
    metrics_.rate_limited++;
    ApiError e = api_error(codes::kRateLimited,
                           "this token's subject already has " + std::to_string(hub_.streams_of(claims.sub)) +
                               " open streams (limits.max_streams_per_user)",
                           "sub");
    e.retry_after_s = 5;
    return e;
  }
  auto cols = parse_collections(req.param("collections"), claims);
  if (auto* e = std::get_if<ApiError>(&cols)) return *e;
  auto& list = std::get<std::vector<std::string>>(cols);
  if (list.empty() && !config_.open_mode) {
    return api_error(codes::kForbidden, "role '" + claims.role + "' may not read any collection", "collections");
  }
  auto parsed_where = parse_where(req);
  if (auto* e = std::get_if<ApiError>(&parsed_where)) return *e;
  Filter where = std::get<Filter>(std::move(parsed_where));
  std::optional<std::int64_t> cursor;
  std::string last_id = req.header("last-event-id");
  const std::string* cparam = req.param("cursor");
  const std::string* source = !last_id.empty() ? &last_id : (cparam && !cparam->empty() ? cparam : nullptr);
  if (source) {
    std::int64_t v = 0;
    if (!parse_int64(*source, v)) {
      return api_error(codes::kInvalidRequest, "cursor must be a non-negative integer seq",
                       !last_id.empty() ? "Last-Event-ID" : "cursor");
    }
    cursor = v;
  }
  bool heartbeat_event = false;
  if (const std::string* hb = req.param("heartbeat"); hb && !hb->empty()) {
    if (*hb != "event" && *hb != "comment") {
      return api_error(codes::kInvalidRequest, "heartbeat must be \"comment\" or \"event\"", "heartbeat");
    }
    heartbeat_event = *hb == "event";
  }
  return StreamRequest{Subscription(config_, std::move(claims), std::move(list), std::move(where)), cursor,
                       heartbeat_event, nullptr};
}

// Validates on the io thread; reads and serialises on a reader thread, which replies.
void App::snapshot(Call& c) {
  const HttpRequest& req = c.req;
  const Claims& claims = c.claims;
  auto cols = parse_collections(req.param("collections"), claims);
  if (auto* e = std::get_if<ApiError>(&cols)) return c.reply(error_response(*e));
  auto list = std::get<std::vector<std::string>>(std::move(cols));
  if (list.empty()) {
    if (config_.open_mode) {
      return c.reply(error_response(api_error(codes::kInvalidRequest, "collections is required", "collections")));
    }
    return c.reply(error_response(
        api_error(codes::kForbidden, "role '" + claims.role + "' may not read any collection", "collections")));
  }
  std::sort(list.begin(), list.end());
  auto parsed_where = parse_where(req);
  if (auto* e = std::get_if<ApiError>(&parsed_where)) return c.reply(error_response(*e));
  Filter where = std::get<Filter>(std::move(parsed_where));
  std::size_t limit = config_.limits.snapshot_default_limit;
  if (const std::string* l = req.param("limit"); l && !l->empty()) {
    std::int64_t v = 0;
    if (!parse_int64(*l, v) || v < 1) {
      return c.reply(error_response(api_error(codes::kInvalidRequest, "limit must be a positive integer", "limit")));
    }
    limit = std::min<std::size_t>(static_cast<std::size_t>(v), config_.limits.snapshot_max_limit);
  }
  // The `after` cursor is opaque to clients: base64url(JSON {"c":collection,"i":id,"s":seq}).
  std::optional<std::pair<std::string, std::string>> after;
  std::optional<std::int64_t> first_seq;
  if (const std::string* a = req.param("after"); a && !a->empty()) {
    std::string raw;
    Json j;
    if (base64url_decode(*a, raw)) {
      auto parsed = parse_client_json(raw, config_.limits, "after");
      if (auto* pj = std::get_if<Json>(&parsed)) j = std::move(*pj);
    }
    if (!j.is_object() || !j.contains("c") || !j["c"].is_string() || !j.contains("i") || !j["i"].is_string() ||
        !j.contains("s") || !j["s"].is_number_integer()) {
      return c.reply(
          error_response(api_error(codes::kInvalidRequest, "after is not a cursor returned by this server", "after")));
    }
    after = std::make_pair(j["c"].get<std::string>(), j["i"].get<std::string>());
    first_seq = j["s"].get<std::int64_t>();
  }
  Subscription sub(config_, claims, list, where);
  // Narrow each collection's read to the caller's own documents where its rule compares a field
  // with a claim: the cost of a scoped snapshot follows what the caller may see.
  std::map<std::string, ScopeKey> keys;
  for (const auto& name : list) {
    const Access& a = sub.access(name);
    if (a.kind != Access::Kind::Where) continue;
    for (const auto& cond : a.filter.conditions()) {
      if (cond.exact_string && cond.op == FilterOp::Eq && cond.values.size() == 1) {
        keys.emplace(name, ScopeKey{cond.path, cond.values[0]});
        break;
      }
    }
  }
  // The first page's seq is the head of the state it was read from, read in its own
  // transaction: a stream opened at that seq continues exactly where the page ends, on this node
  // or another (one that has not broadcast that far yet waits for it: see StreamSession).
  // Every later page reports the first page's seq: its documents may be newer, which is
  // harmless (replaying older changes is a no-op), while starting the stream at the first
  // page's seq guarantees nothing that changed between pages is missed.
  const std::int64_t floor_seq = head_seq();
  auto job = [this, reply = c.reply, sub = std::move(sub), list = std::move(list), keys = std::move(keys), after, limit,
              first_seq, floor_seq](Store& store) {
    auto page = store.snapshot(
        list, after, limit, [&](const Document& d) { return sub.access(d.collection).matches(d.id, d.fields); }, keys,
        &metrics_.snapshot_rows_read, config_.limits.snapshot_max_bytes);
    HttpResponse res;
    // (No collection to read: no transaction; this node's broadcast head is committed.)
    const std::int64_t seq = first_seq ? *first_seq : page ? std::max(page->seq, floor_seq) : 0;
    if (!page) {
      res = error_response(api_error(codes::kInternal, page.error().message));
    } else {
      Json docs = Json::array();
      for (const auto& d : page->docs) docs.push_back(document_to_json(d));
      Json next = nullptr;
      if (page->next) {
        Json cursor = {{"c", page->next->first}, {"i", page->next->second}, {"s", seq}};
        next = base64url_encode(cursor.dump());
      }
      res = json_response(200, {{"seq", seq}, {"docs", std::move(docs)}, {"next", next}});
    }
    reads_->post([reply, res = std::move(res)]() mutable { reply(std::move(res)); });
  };
  if (!reads_->submit(std::move(job))) {
    ApiError e = api_error(codes::kUnavailable, "too many reads queued; retry later");
    e.retry_after_s = 1;
    c.reply(error_response(e));
  }
}

}  // namespace syncline::server
