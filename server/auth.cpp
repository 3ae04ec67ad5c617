#include "auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/json_bounded.hpp"

namespace syncline::server {
namespace {

// Token parts are read before the signature is checked (the header names the algorithm), so
// they are untrusted input: no real header or claim set nests this deep.
constexpr std::size_t kMaxTokenJsonDepth = 32;

const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

Error unauthorized(std::string msg) { return make_error(codes::kUnauthorized, std::move(msg)); }

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  while (i + 3 <= bytes.size()) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
    i += 3;
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (rest == 2) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
  out.clear();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return bits < 6;  // a dangling 6-bit group is not valid base64
}

std::string sign_jwt(const Json& payload, const std::string& secret) {
  std::string head = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  std::string body = base64url_encode(payload.dump());
  std::string signing_input = head + "." + body;
  return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

Result<Claims> verify_jwt(std::string_view token, const std::string& secret, long long now_s) {
  if (token.empty()) return unauthorized("missing token");
  if (token.size() > 8192) return unauthorized("token too long");
  auto d1 = token.find('.');
  if (d1 == std::string_view::npos) return unauthorized("malformed token");
  auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return unauthorized("malformed token");
  }
  std::string header_raw, payload_raw, sig;
  if (!base64url_decode(token.substr(0, d1), header_raw) ||
      !base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), payload_raw) ||
      !base64url_decode(token.substr(d2 + 1), sig)) {
    return unauthorized("malformed token");
  }
  Json header = parse_json_bounded(header_raw, kMaxTokenJsonDepth);
  if (!header.is_object() || !header.contains("alg") || header["alg"] != "HS256") {
    return unauthorized("token must be signed with HS256");
  }
  std::string expected = hmac_sha256(secret, token.substr(0, d2));
  if (sig.size() != expected.size() || CRYPTO_memcmp(sig.data(), expected.data(), sig.size()) != 0) {
    return unauthorized("bad token signature");
  }
  Json payload = parse_json_bounded(payload_raw, kMaxTokenJsonDepth);
  if (!payload.is_object()) return unauthorized("malformed token payload");
  if (payload.contains("exp")) {
    if (!payload["exp"].is_number() || payload["exp"].get<double>() <= static_cast<double>(now_s)) {
      return unauthorized("token expired");
    }
  }
  if (payload.contains("nbf")) {
    if (!payload["nbf"].is_number() || payload["nbf"].get<double>() > static_cast<double>(now_s) + 60) {
      return unauthorized("token not yet valid");
    }
  }
  Claims c;
  if (payload.contains("sub") && payload["sub"].is_string()) {
    c.sub = payload["sub"].get<std::string>();
  } else if (payload.contains("sub") && payload["sub"].is_number_integer()) {
    c.sub = std::to_string(payload["sub"].get<long long>());
  }
  if (c.sub.empty()) return unauthorized("token has no sub");
  // A subject is stored (the client ids it owns) as database text, which cannot hold U+0000;
  // refused rather than cut, which would make it another subject.
  if (c.sub.find('\0') != std::string::npos) return unauthorized("token's sub contains U+0000");
  if (payload.contains("role") && payload["role"].is_string()) c.role = payload["role"].get<std::string>();
  if (c.role.empty()) return unauthorized("token has no role");
  c.raw = std::move(payload);
  return c;
}

}  // namespace syncline::server
