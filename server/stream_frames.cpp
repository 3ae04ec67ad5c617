// Layer: server. Wire serialisation of stream frames (see stream_frames.hpp).
#include "stream_frames.hpp"

#include <optional>
#include <variant>

#include "core/protocol.hpp"

namespace syncline::server {
namespace {

Bytes sse_block(const char* event, const std::string& data, std::optional<std::int64_t> id) {
  std::string s;
  s.reserve(data.size() + 48);
  if (id) {
    s += "id: ";
    s += std::to_string(*id);
    s += "\n";
  }
  s += "event: ";
  s += event;
  s += "\ndata: ";
  s += data;
  s += "\n\n";
  return std::make_shared<const std::string>(std::move(s));
}

Bytes serialize_message(const ServerMessage& m, Transport t, std::optional<std::int64_t> id) {
  if (t == Transport::Ws) return std::make_shared<const std::string>(encode_ws(m));
  Json body = std::visit([](const auto& v) { return encode(v); }, m);
  return sse_block(message_type(m), body.dump(), id);
}

}  // namespace

Bytes serialize_row(const LogRow& row, Transport t) {
  return serialize_message(message_of(row), t, row.seq);
}

Bytes serialize_leave(const LogRow& row, Transport t) {
  ServerMessage m = message_of(row);
  if (auto* c = std::get_if<ChangeMsg>(&m)) {
    c->op = ChangeOp::Delete;
    c->fields = Json::object();
  }
  return serialize_message(m, t, row.seq);
}

OutgoingPtr make_outgoing(LogRow row) {
  auto out = std::make_shared<Outgoing>();
  ServerMessage m = message_of(row);
  out->sse = serialize_message(m, Transport::Sse, row.seq);
  out->ws = serialize_message(m, Transport::Ws, row.seq);
  // Only an update that had a prior state can move a document out of a reader's scope.
  if (!row.is_event && row.op == ChangeOp::Update && !row.prior.is_null()) {
    out->sse_leave = serialize_leave(row, Transport::Sse);
    out->ws_leave = serialize_leave(row, Transport::Ws);
  }
  out->row = std::move(row);
  return out;
}

Bytes serialize_hello(std::int64_t seq, Transport t) {
  return serialize_message(HelloMsg{seq}, t, std::nullopt);
}

Bytes serialize_reset(const std::string& reason, std::int64_t seq, Transport t) {
  // The SSE id moves the browser's Last-Event-ID to `seq`, so an automatic reconnect after the
  // re-snapshot resumes from there instead of hitting the same reset again.
  return serialize_message(ResetMsg{reason, seq}, t, seq);
}

Bytes serialize_error(const Error& e, Transport t) {
  return serialize_message(ErrorMsg{e}, t, std::nullopt);
}

}  // namespace syncline::server
