// Layer: server. HS256 JWT verification and signing (OpenSSL HMAC). Beast-free.
#pragma once
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/json.hpp"

namespace syncline::server {

// The verified identity of a caller. `raw` keeps every claim so read/write rules can reference
// any of them (e.g. `{sub}`, `{tenant}`).
struct Claims {
  std::string sub;
  std::string role;
  Json raw = Json::object();
};

// True once the token's `exp` (seconds since the epoch), if it has one, is reached. Streams
// check it on every heartbeat, so an expired token's stream ends within one heartbeat interval.
inline bool claims_expired(const Claims& c, long long now_s) {
  auto it = c.raw.find("exp");
  return it != c.raw.end() && it->is_number() && it->get<double>() <= static_cast<double>(now_s);
}

// Verifies a compact JWS: alg must be HS256, the signature must match `secret`, `sub` and
// `role` must be present (strings; a numeric sub is accepted and converted), `exp`/`nbf` are
// honoured when present. Errors carry code "unauthorized".
Result<Claims> verify_jwt(std::string_view token, const std::string& secret, long long now_s);

// Signs `payload` as an HS256 JWT (used by the demo token route).
std::string sign_jwt(const Json& payload, const std::string& secret);

std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace syncline::server
