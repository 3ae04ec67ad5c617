// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Wire protocol v1 (docs/protocol.md): typed messages, their JSON encodings and validating
// decoders.
// Decoders never throw: malformed input yields Error{code, message, field} naming the problem.
//
// Over SSE the message type is the SSE `event:` name and the data is the JSON body below.
// Over WebSocket every frame is one JSON object with an extra "type" member:
//   server -> client: "hello" | "change" | "event" | "reset" | "results" | "error"
//   client -> server: "mutate" (a MutationBatch) | "publish" (a PublishRequest)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/document.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/mutation.hpp"

namespace syncline {

enum class ChangeOp { Insert, Update, Delete };
const char* to_string(ChangeOp op);

struct Origin {
  std::string client;
  std::int64_t mid = 0;
  bool operator==(const Origin&) const = default;
};

// One committed change. `fields` is the full document after the change (empty for delete).
struct ChangeMsg {
  std::int64_t seq = 0;
  std::string collection;
  std::string id;
  ChangeOp op = ChangeOp::Insert;
  std::int64_t version = 0;
  Json fields = Json::object();
  std::optional<Origin> origin;
  bool operator==(const ChangeMsg&) const = default;
};

// A custom event published by a client (e.g. "order:stage_change").
struct EventMsg {
  std::int64_t seq = 0;
  std::string name;
  std::string collection;  // may be empty
  std::string id;          // may be empty
  Json data = Json::object();
  bool operator==(const EventMsg&) const = default;
};

struct HelloMsg {
  std::int64_t seq = 0;
  bool operator==(const HelloMsg&) const = default;
};

struct ResetMsg {
  std::string reason;  // e.g. "cursor_expired"
  std::int64_t seq = 0;
  bool operator==(const ResetMsg&) const = default;
};

struct MutationBatch {
  std::string client;
  std::vector<Mutation> mutations;
  bool operator==(const MutationBatch&) const = default;
};

enum class ResultStatus { Applied, Rejected, Duplicate };
const char* to_string(ResultStatus s);

struct MutationResult {
  std::int64_t mid = 0;
  ResultStatus status = ResultStatus::Applied;
  std::int64_t seq = 0;  // applied / duplicate-of-applied: the seq the mutation produced
  std::string code;      // rejected (and duplicate-of-rejected): e.g. "conflict", "constraint"
  std::string message;
  // Rejected member of an atomic group: the mid of the member whose rejection failed the group
  // (its own mid on that member).
  std::int64_t failed_mid = 0;
  // Rejected with `conflict` on a document the writer may read: the document as committed
  // ({"version","fields"}), or null when it is absent. Not kept for duplicates.
  std::optional<Json> current;
  bool operator==(const MutationResult&) const = default;
};

struct MutationResults {
  std::int64_t seq = 0;  // server's seq after the batch
  std::vector<MutationResult> results;
  bool operator==(const MutationResults&) const = default;
};

struct PublishRequest {
  std::string name;
  std::string collection;
  std::string id;
  Json data = Json::object();
  bool operator==(const PublishRequest&) const = default;
};

struct ErrorMsg {
  Error error;
  bool operator==(const ErrorMsg&) const = default;
};

// A message from server to client, whatever the transport.
using ServerMessage = std::variant<HelloMsg, ChangeMsg, EventMsg, ResetMsg, MutationResults, ErrorMsg>;
// A message from client to server over WebSocket.
using ClientMessage = std::variant<MutationBatch, PublishRequest>;

// Limits applied while decoding; the server passes its configured limits.
struct DecodeLimits {
  std::size_t max_batch = 500;
};

// --- encoding (JSON objects without "type") ---
Json encode(const ChangeMsg& m);
Json encode(const EventMsg& m);
Json encode(const HelloMsg& m);
Json encode(const ResetMsg& m);
Json encode(const MutationBatch& m);
Json encode(const MutationResults& m);
Json encode(const PublishRequest& m);
Json encode(const ErrorMsg& m);  // {"error":{"code","message","field"?}}
Json encode(const Mutation& m);
Json encode(const FieldOp& op);  // {"increment","min"?,"max"?} or {"serverTime":true}
Json encode(const MutationResult& r);

// The SSE event name / WebSocket "type" of a server message.
const char* message_type(const ServerMessage& m);
// JSON with "type" added, for WebSocket frames.
std::string encode_ws(const ServerMessage& m);
std::string encode_ws(const ClientMessage& m);

// --- decoding ---
Result<ChangeMsg> decode_change(const Json& j);
Result<EventMsg> decode_event(const Json& j);
Result<HelloMsg> decode_hello(const Json& j);
Result<ResetMsg> decode_reset(const Json& j);
Result<Mutation> decode_mutation(const Json& j, const std::string& field_prefix = "");
// One member of a mutation's "ops" (`path` names it, e.g. "mutations[2].ops.stock"); errors are
// invalid_request at the offending member's path.
Result<FieldOp> decode_field_op(const Json& j, const std::string& path);
Result<MutationBatch> decode_mutation_batch(const Json& j, const DecodeLimits& limits = {});
Result<MutationResults> decode_mutation_results(const Json& j);
Result<PublishRequest> decode_publish(const Json& j);
Result<ErrorMsg> decode_error(const Json& j);

// SSE: `event` name + `data` text. WebSocket: one text frame with "type".
Result<ServerMessage> decode_server_message(std::string_view event_type, std::string_view data);
Result<ServerMessage> decode_server_ws(std::string_view frame);
// An already parsed WebSocket frame (lets a batch of frames be parsed once as one array).
Result<ServerMessage> decode_server_frame(const Json& frame);
// A JSON array of WebSocket frames (the browser engine's receive batch), decoded without
// building a DOM of the batch. Same per-frame results as parsing the text with
// parse_json_nothrow and calling decode_server_frame on every element (no nesting limit,
// like that path); a text that is not a JSON array is one invalid_json error.
Result<std::vector<Result<ServerMessage>>> decode_server_batch(std::string_view text);
Result<ClientMessage> decode_client_ws(std::string_view frame, const DecodeLimits& limits = {});

// Converts a committed change into the document it leaves behind (tombstone for delete).
Document change_to_document(const ChangeMsg& c);
Document change_to_document(ChangeMsg&& c);  // moves the fields

}  // namespace syncline
