// Layer: tests/fuzz. Target "protocol_decode": the wire protocol decoders of src/core/protocol.
//
// Input: one selector byte, then the message text.
//   selector % 9 == 0      decode_server_ws(text)                 (a WebSocket frame from the server)
//   selector % 9 == 1      decode_client_ws(text, limits)         (a frame from a client; limits from
//                                                                  the selector's high bits)
//   selector % 9 == 2..7   decode_server_message(<type>, text)    for hello, change, event, reset,
//                                                                  results, error (SSE event + data)
//   selector % 9 == 8      decode_server_message(<name>, data)    text is "name\ndata": any event name
// Mode 0 also checks the DOM-free readers against nlohmann on the same text: parse_json_fast
// accepts exactly what parse_json_nothrow accepts and builds an equal value, and
// decode_server_batch("[" + text + "]") gives what parsing that batch and decode_server_frame
// give (the browser engine's receive path before and after).
// Invariants: decoders never crash or throw; an error has a non-empty code from the protocol's
// set; a decoded message survives encode -> decode unchanged (both the WebSocket form with
// "type" and the SSE form); a client batch never exceeds DecodeLimits::max_batch and its mids
// strictly increase.
#include <set>

#include "core/json_reader.hpp"
#include "core/protocol.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

const char* const kServerTypes[] = {"hello", "change", "event", "reset", "results", "error"};

void check_error(const Error& e) {
  // invalid_mutation: a well-formed mutation whose members do not go together (an insert with
  // a condition, a delete with ops, a field in both fields and ops); the server answers it with
  // the same code and the registry's status (400), over HTTP as over WebSocket.
  static const std::set<std::string> kCodes = {codes::kInvalidJson, codes::kInvalidMessage, codes::kInvalidRequest,
                                               codes::kInvalidMutation, codes::kPayloadTooLarge};
  FUZZ_CHECK(kCodes.count(e.code) == 1, "unexpected error code: " + e.code + " (" + e.message + ")");
  FUZZ_CHECK(!e.message.empty(), "error without a message, code " + e.code);
}

void check_server_roundtrip(const ServerMessage& m) {
  // WebSocket form.
  std::string ws = encode_ws(m);
  auto again = decode_server_ws(ws);
  FUZZ_CHECK(again.ok(), "re-decoding an encoded server frame failed: " + ws + " -> " +
                             (again.ok() ? "" : again.error().message));
  FUZZ_CHECK(*again == m, "server frame changed in a round trip: " + ws);
  // SSE form: event name = message_type, data = the body without "type".
  std::string body = fuzz::dump(std::visit([](const auto& msg) { return encode(msg); }, m));
  auto sse = decode_server_message(message_type(m), body);
  FUZZ_CHECK(sse.ok(), std::string("re-decoding an SSE body failed: ") + message_type(m) + " " + body);
  FUZZ_CHECK(*sse == m, "SSE message changed in a round trip: " + body);
}

void check_client(const ClientMessage& m, const DecodeLimits& limits) {
  if (const auto* b = std::get_if<MutationBatch>(&m)) {
    FUZZ_CHECK(!b->mutations.empty(), "empty batch decoded");
    FUZZ_CHECK(b->mutations.size() <= limits.max_batch, "batch over the limit decoded");
    for (std::size_t i = 1; i < b->mutations.size(); ++i) {
      FUZZ_CHECK(b->mutations[i - 1].mid < b->mutations[i].mid, "mids not increasing");
    }
    for (const auto& mu : b->mutations) {
      FUZZ_CHECK(mu.mid >= 1, "mid < 1 decoded");
      FUZZ_CHECK(is_valid_collection(mu.collection) && is_valid_id(mu.id), "invalid key decoded");
      FUZZ_CHECK(mu.fields.is_object(), "fields not an object");
      FUZZ_CHECK(!mu.base_version || *mu.base_version >= 0, "negative base_version decoded");
    }
  }
  std::string ws = encode_ws(m);
  auto again = decode_client_ws(ws, limits);
  FUZZ_CHECK(again.ok(), "re-decoding an encoded client frame failed: " + ws);
  FUZZ_CHECK(*again == m, "client frame changed in a round trip: " + ws);
}

void check_fast_readers(std::string_view text) {
  const Json want = parse_json_nothrow(text);
  const Json got = parse_json_fast(text);
  FUZZ_CHECK(got.is_discarded() == want.is_discarded(), "parse_json_fast accepts differently: " + std::string(text));
  if (!want.is_discarded()) {
    FUZZ_CHECK(got == want && fuzz::dump(got) == fuzz::dump(want), "parse_json_fast value differs: " + std::string(text));
  }
  const std::string batch = "[" + std::string(text) + "]";
  const Json parsed = parse_json_nothrow(batch);
  const auto fast = decode_server_batch(batch);
  FUZZ_CHECK(fast.ok() == (!parsed.is_discarded()), "decode_server_batch accepts differently: " + batch);
  if (!fast.ok()) return;
  FUZZ_CHECK(fast->size() == parsed.size(), "decode_server_batch frame count differs: " + batch);
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    const auto want_frame = decode_server_frame(parsed[i]);
    const auto& got_frame = (*fast)[i];
    FUZZ_CHECK(got_frame.ok() == want_frame.ok(), "decode_server_batch frame outcome differs: " + batch);
    if (want_frame.ok()) {
      FUZZ_CHECK(*got_frame == *want_frame, "decode_server_batch frame differs: " + batch);
    } else {
      FUZZ_CHECK(got_frame.error() == want_frame.error(), "decode_server_batch error differs: " + batch);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fuzz::ByteReader in(data, size);
  const std::uint8_t selector = in.byte();
  const int mode = selector % 9;
  if (mode == 0) {
    const std::string_view text = in.rest();
    check_fast_readers(text);
    auto r = decode_server_ws(text);
    if (r) {
      check_server_roundtrip(*r);
    } else {
      check_error(r.error());
    }
  } else if (mode == 1) {
    DecodeLimits limits;
    limits.max_batch = 1 + (selector / 9) % 8;  // small limits so the fuzzer reaches them
    auto r = decode_client_ws(in.rest(), limits);
    if (r) {
      check_client(*r, limits);
    } else {
      check_error(r.error());
    }
  } else if (mode <= 7) {
    const char* type = kServerTypes[mode - 2];
    auto r = decode_server_message(type, in.rest());
    if (r) {
      FUZZ_CHECK(std::string(message_type(*r)) == type, "SSE event decoded to another type");
      check_server_roundtrip(*r);
    } else {
      check_error(r.error());
    }
  } else {
    std::string_view name = in.until('\n');
    auto r = decode_server_message(name, in.rest());
    if (r) {
      FUZZ_CHECK(std::string(message_type(*r)) == name, "SSE event decoded to another type");
      check_server_roundtrip(*r);
    } else {
      check_error(r.error());
    }
  }
  return 0;
}
