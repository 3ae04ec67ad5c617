// Layer: server. The service routes: GET /v1/health, GET /metrics, GET /v1/ping, the server's
// identity at / (when no web app is served), the answer to a /v1/ws request that was not an
// upgrade, and POST /v1/demo/token (only with config demo_tokens). See api.hpp for the
// pipeline that runs before each.
#include "api.hpp"
#include "log.hpp"

namespace syncline::server {
namespace {

// Revision of wire protocol v1 this server speaks (docs/protocol.md): 1.1 added field
// operations, conditions and atomic groups, which a 1.0 server would ignore as unknown members;
// 1.2 added the client's round-trip probe (GET /v1/ping, WebSocket ping/pong frames).
constexpr const char* kProtocolRevision = "1.2";

}  // namespace

void App::health(Call& c) {
  // A node of a cluster that cannot reach the database answers 503, so a load balancer sends
  // its traffic to the nodes that can (they may all be cut off: then every node says so).
  const bool reachable = database_reachable();
  const char* status = shutting_down_ ? "shutting_down" : reachable ? "ok" : "database_unavailable";
  c.reply(json_response(reachable ? 200 : 503, {{"status", status}, {"seq", head_seq()}, {"revision", kProtocolRevision}}));
}

HttpResponse App::root_info() {
  return json_response(
      200, {{"name", "syncline-server"}, {"protocol", "v1"}, {"revision", kProtocolRevision}, {"seq", head_seq()}});
}

// The client's round-trip probe over HTTP (SSE clients cannot send on their stream). No database
// work and no body read: the answer is the io thread's head seq. A token is required (failures
// are limited per address, see auth_failed) and the probe spends the subject's rate-limit bucket
// like any request.
void App::ping(Call& c) {
  HttpResponse r = json_response(200, {{"seq", head_seq()}});
  r.headers.emplace_back("Cache-Control", "no-store");
  c.reply(std::move(r));
}

void App::upgrade_required(Call& c) {
  c.reply(error_response(api_error(codes::kInvalidRequest, "WebSocket upgrade required")));
}

void App::metrics_text(Call& c) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  metrics_.write_queue = static_cast<std::int64_t>(writer_->pending());
  metrics_.open_connections = static_cast<std::int64_t>(open_connections_);
  metrics_.catchup_bytes = static_cast<std::int64_t>(catchup_budget_.used());
  metrics_.catchup_waiting = static_cast<std::int64_t>(catchup_budget_.waiting());
  const long long now = now_mono_ms();
  if (!documents_reading_ && now - documents_read_ms_ > 5000) {
    documents_reading_ = reads_->submit([this](Store& store) {
      std::int64_t n = store.document_count();
      reads_->post([this, n] {
        documents_ = n;
        documents_read_ms_ = now_mono_ms();
        documents_reading_ = false;
      });
    });
  }
  r.body = metrics_.render(head_seq(), pruned_through(), documents_, now);
  c.reply(std::move(r));
}

std::variant<App::TokenRequest, ApiError> App::decode_token_request(const Json& body) {
  if (!body.is_object()) return api_error(codes::kInvalidRequest, "body must be an object");
  for (const char* k : {"sub", "role"}) {
    if (!body.contains(k) || !body[k].is_string() || !is_valid_id(body[k].get<std::string>())) {
      return api_error(codes::kInvalidRequest, std::string(k) + " must match ^[A-Za-z0-9_.:-]{1,128}$", k);
    }
  }
  return TokenRequest{body["sub"].get<std::string>(), body["role"].get<std::string>()};
}

void App::demo_token(Call& c, TokenRequest t) {
  long long now = now_unix_ms() / 1000;
  Json payload = {{"sub", t.sub}, {"role", t.role}, {"iat", now}, {"exp", now + config_.limits.demo_token_ttl_s}};
  c.reply(json_response(200, {{"token", sign_jwt(payload, config_.jwt_secret)}}));
}

}  // namespace syncline::server
