// Layer: tests/fuzz. Target "sse_stream": the client's full receive path for an SSE stream.
//
// Neither src/core nor server/ contains an SSE *parser*: the browser's EventSource splits the
// stream and the server only writes it. So this harness carries a small parser that follows the
// EventSource rules of the HTML standard (lines end in \r\n, \r or \n; "field: value" with one
// optional space; `event`, `data` (joined by \n), `id`, `retry`; ':' starts a comment; a blank
// line dispatches; an unterminated last event is dropped) and feeds each event through what the
// adapter does with it: decode_server_message(event, data) and then Engine::receive.
// Input: the raw stream bytes.
// Invariants: no crash; a decoded message is re-encodable to an identical message; the cursor
// never goes backwards while only stream messages arrive; the cursor is the largest seq of the
// change and event messages received; a `reset` sets needs_snapshot(); the engine state survives
// snapshot_bytes -> restore at the end.
#include <algorithm>

#include "core/engine.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

struct SseEvent {
  std::string type;
  std::string data;
  std::string id;
};

// Returns every dispatched event of `stream`.
std::vector<SseEvent> parse_sse(std::string_view stream) {
  std::vector<SseEvent> out;
  std::string type, data, last_id;
  bool has_data = false;
  std::size_t pos = 0;
  if (stream.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;  // a leading BOM is ignored
  while (pos < stream.size()) {
    std::size_t end = stream.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) break;  // an unterminated line is not processed
    std::string_view line = stream.substr(pos, end - pos);
    pos = end + 1;
    if (stream[end] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;
    if (line.empty()) {  // dispatch
      if (has_data) {
        out.push_back(SseEvent{type.empty() ? "message" : type, data, last_id});
      }
      type.clear();
      data.clear();
      has_data = false;
      continue;
    }
    if (line[0] == ':') continue;  // comment (heartbeats)
    std::string_view field = line, value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      type = value;
    } else if (field == "data") {
      if (has_data) data.push_back('\n');
      data += value;
      has_data = true;
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) last_id = value;
    }
    // "retry" and unknown fields are ignored by the engine path.
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  EngineOptions o;
  o.client_id = "me";
  o.history_limit = 16;
  Engine engine(o);
  // A pending mutation, so changes and results from the stream have something to settle.
  auto mids = engine.mutate({MutationRequest{MutationOp::Insert, "bills", "b1", Json{{"total", 1}}, std::nullopt},
                             MutationRequest{MutationOp::Update, "bills", "b2", Json{{"total", 2}}, 1}},
                            0);
  FUZZ_CHECK(mids.ok(), "setup mutate failed");
  engine.set_transport_ready(true);
  (void)engine.take_batch(0);

  std::int64_t now = 1;
  std::int64_t max_seq = 0;
  for (const SseEvent& ev : parse_sse(stream)) {
    auto msg = decode_server_message(ev.type, ev.data);
    if (!msg) continue;  // the adapter reports it and drops the frame
    auto again = decode_server_ws(encode_ws(*msg));
    FUZZ_CHECK(again.ok() && *again == *msg, "a decoded SSE message does not survive re-encoding");
    if (const auto* c = std::get_if<ChangeMsg>(&*msg)) max_seq = std::max(max_seq, c->seq);
    if (const auto* e = std::get_if<EventMsg>(&*msg)) max_seq = std::max(max_seq, e->seq);
    const std::int64_t cursor_before = engine.cursor();
    auto r = engine.receive(*msg, now++);
    FUZZ_CHECK(r.ok(), "receive of a decoded message failed");
    FUZZ_CHECK(engine.cursor() >= cursor_before, "the cursor went backwards on a stream message");
    FUZZ_CHECK(engine.cursor() == max_seq, "the cursor is not the largest seq received");
    if (std::holds_alternative<ResetMsg>(*msg)) FUZZ_CHECK(engine.needs_snapshot(), "reset without need_snapshot");
    (void)engine.take_output();
    if (auto b = engine.take_batch(now)) {
      FUZZ_CHECK(!b->mutations.empty(), "empty batch");
    }
  }
  const std::string bytes = engine.snapshot_bytes();
  auto restored = Engine::restore(bytes, o);
  FUZZ_CHECK(restored.ok(), "restore of snapshot_bytes() failed");
  FUZZ_CHECK((*restored)->snapshot_bytes() == bytes, "snapshot -> restore -> snapshot is not a fixpoint");
  return 0;
}
