// Layer: server. HTTP responses, the error body and the bounded client JSON parser (see
// http_types.hpp).
#include "http_types.hpp"

#include "core/json_bounded.hpp"

namespace syncline::server {

ApiError api_error(RegisteredCode code, std::string message, std::string field) {
  return ApiError{make_error(code, std::move(message), std::move(field)), 0};
}

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

std::variant<Json, ApiError> parse_client_json(std::string_view text, const Limits& limits, const std::string& field) {
  if (text.size() > limits.max_body_bytes) {
    return ApiError{make_error(codes::kPayloadTooLarge, field + " exceeds " + std::to_string(limits.max_body_bytes) +
                                                                " bytes (limits.max_body_bytes)", field), 0};
  }
  JsonParseError err = JsonParseError::None;
  Json j = parse_json_bounded(text, static_cast<std::size_t>(limits.max_json_depth), &err);
  if (err == JsonParseError::TooDeep) {
    return ApiError{make_error(codes::kInvalidJson, field + " nests deeper than " + std::to_string(limits.max_json_depth) +
                                                            " levels (limits.max_json_depth)", field), 0};
  }
  if (j.is_discarded()) return ApiError{make_error(codes::kInvalidJson, field + " is not valid JSON", field), 0};
  return j;
}

HttpResponse error_response(const ApiError& e) {
  Json err = {{"code", e.error.code}, {"message", e.error.message}};
  if (!e.error.field.empty()) err["field"] = e.error.field;
  HttpResponse r = json_response(e.status(), Json{{"error", err}});
  if (e.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  return r;
}

}  // namespace syncline::server
