// Layer: tests/fuzz. Target "ws_path": the WebSocket message path in both directions.
//
// Input: lines (split on '\n'); the first byte of a line says what it is:
//   'C' + frame   a client -> server frame: decode_client_ws with the server's DecodeLimits
//                 (max_batch 4 here); a decoded batch is committed by a tiny in-harness server
//                 (apply_mutation over a map, the "mid <= last_mid is a duplicate" rule), whose
//                 results and changes go back to the engine as encoded WebSocket frames
//   'S' + frame   a server -> client frame: decode_server_ws, then Engine::receive
//   'M' + bytes   the local app mutates (bytes pick op, key and a field value)
//   'T'           the engine's send path: take_batch, encoded with encode_ws, through the same
//                 server decoder and server
//   'R'           the connection drops and comes back (set_transport_ready false/true)
//   other         the whole line is a server frame
// Invariants: no crash; decoder errors carry the protocol's codes; a batch over max_batch is
// refused with payload_too_large; every batch the engine produces is accepted by the server's
// decoder unchanged; the server never applies a mid twice; encode_ws(decoded) decodes again to
// the same message.
#include <map>
#include <set>

#include "core/engine.hpp"
#include "core/mutation.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

struct MiniServer {
  std::int64_t seq = 0;
  std::map<DocKey, Document> docs;
  std::map<std::string, std::int64_t> last_mid;  // per client
  std::set<std::pair<std::string, std::int64_t>> applied;

  // Commits a batch; returns the frames to send back (changes first, then results).
  std::vector<std::string> commit(const MutationBatch& b) {
    std::vector<std::string> frames;
    MutationResults res;
    for (const Mutation& m : b.mutations) {
      MutationResult r;
      r.mid = m.mid;
      std::int64_t& last = last_mid[b.client];
      if (m.mid <= last) {
        r.status = ResultStatus::Duplicate;
        r.seq = seq;
        res.results.push_back(r);
        continue;
      }
      last = m.mid;
      auto it = docs.find(m.key());
      auto out = apply_mutation(it == docs.end() ? nullptr : &it->second, m);
      if (!out) {
        r.status = ResultStatus::Rejected;
        r.code = out.error().code;
        r.message = out.error().message;
        res.results.push_back(r);
        continue;
      }
      FUZZ_CHECK(applied.emplace(b.client, m.mid).second, "the server applied a mid twice");
      ++seq;
      ChangeMsg c;
      c.seq = seq;
      c.collection = m.collection;
      c.id = m.id;
      c.op = m.op == MutationOp::Delete ? ChangeOp::Delete : (it == docs.end() || it->second.deleted ? ChangeOp::Insert : ChangeOp::Update);
      c.version = seq;
      c.fields = out->fields ? *out->fields : Json::object();
      c.origin = Origin{b.client, m.mid};
      docs[m.key()] = change_to_document(c);
      frames.push_back(encode_ws(ServerMessage{c}));
      r.status = ResultStatus::Applied;
      r.seq = seq;
      res.results.push_back(r);
    }
    res.seq = seq;
    frames.push_back(encode_ws(ServerMessage{res}));
    return frames;
  }
};

void check_client_error(const Error& e) {
  FUZZ_CHECK(e.code == codes::kInvalidJson || e.code == codes::kInvalidRequest || e.code == codes::kInvalidMutation ||
                 e.code == codes::kPayloadTooLarge,
             "unexpected client decode error " + e.code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::ByteReader in(data, size);
  EngineOptions o;
  o.client_id = "me";
  o.max_batch = 4;
  o.history_limit = 8;
  Engine engine(o);
  MiniServer server;
  DecodeLimits limits;
  limits.max_batch = 4;
  std::int64_t now = 1;

  auto deliver = [&](std::string_view frame) {
    auto msg = decode_server_ws(frame);
    if (!msg) {
      FUZZ_CHECK(msg.error().code == codes::kInvalidJson || msg.error().code == codes::kInvalidMessage,
                 "unexpected server decode error " + msg.error().code);
      return;
    }
    auto again = decode_server_ws(encode_ws(*msg));
    FUZZ_CHECK(again.ok() && *again == *msg, "a server frame does not survive re-encoding");
    FUZZ_CHECK(engine.receive(*msg, now).ok(), "receive failed");
    (void)engine.take_output();
  };
  auto to_server = [&](std::string_view frame, bool from_engine) {
    auto msg = decode_client_ws(frame, limits);
    if (!msg) {
      FUZZ_CHECK(!from_engine, "the server refused a batch the engine produced: " + msg.error().message);
      check_client_error(msg.error());
      return;
    }
    auto again = decode_client_ws(encode_ws(*msg), limits);
    FUZZ_CHECK(again.ok() && *again == *msg, "a client frame does not survive re-encoding");
    if (const auto* b = std::get_if<MutationBatch>(&*msg)) {
      FUZZ_CHECK(b->mutations.size() <= limits.max_batch, "a batch over the limit was decoded");
      for (const std::string& f : server.commit(*b)) deliver(f);
    }
  };

  engine.set_transport_ready(true);
  int lines = 0;
  while (!in.empty() && lines++ < 64) {
    std::string_view line = in.until('\n');
    ++now;
    if (line.empty()) continue;
    const char kind = line[0];
    std::string_view body = line.substr(1);
    if (kind == 'C') {
      // Oversized batches must be refused by the limit, not decoded.
      to_server(body, false);
    } else if (kind == 'S') {
      deliver(body);
    } else if (kind == 'M') {
      const std::uint8_t b = body.empty() ? 0 : static_cast<std::uint8_t>(body[0]);
      MutationRequest r;
      r.op = static_cast<MutationOp>(b % 3);
      r.collection = (b & 4) ? "bills" : "todos";
      r.id = "d" + std::to_string((b >> 3) & 3);
      r.fields = Json{{"v", b >> 5}};
      if (body.size() > 1 && (body[1] & 1)) r.base_version = body[1] >> 1;
      // A negative base_version is refused locally (the server would refuse the whole batch
      // and block every later write: crashers/ws_path/engine_batch_negative_base_version).
      const bool valid = !r.base_version || *r.base_version >= 0;
      FUZZ_CHECK(engine.mutate({r}, now).ok() == valid, "mutate accepted an invalid or refused a valid request");
    } else if (kind == 'T') {
      if (auto batch = engine.take_batch(now)) {
        const std::string frame = encode_ws(ClientMessage{*batch});
        auto decoded = decode_client_ws(frame, limits);
        FUZZ_CHECK(decoded.ok(), "the server decoder refused the engine's batch: " + frame);
        FUZZ_CHECK(std::get<MutationBatch>(*decoded) == *batch, "the engine's batch changed on the wire");
        to_server(frame, true);
      }
    } else if (kind == 'R') {
      engine.set_transport_ready(false);
      engine.set_transport_ready(true);
    } else {
      deliver(line);
    }
  }
  return 0;
}
