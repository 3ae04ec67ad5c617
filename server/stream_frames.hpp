// Layer: server. Wire serialisation of stream frames: committed log rows, hello, reset and error
// messages turned into the exact bytes a stream writes (an SSE block with `id:` and `event:`,
// or a WebSocket text frame with "type"). Knows nothing of who may read what, of sessions or of
// sockets; depends only on the store's LogRow and the core protocol codec. Beast-free.
//
// Each live row is serialised once per transport into a shared_ptr<const std::string> that
// every session sending it shares, so fan-out to N streams costs one serialisation, not N.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "store.hpp"

namespace syncline::server {

enum class Transport { Sse, Ws };

using Bytes = std::shared_ptr<const std::string>;

// A committed row ready for fan-out, in every form a reader may be sent.
struct Outgoing {
  LogRow row;
  Bytes sse;
  Bytes ws;
  // Updates only: the same change as a `delete` for readers whose scope the document left.
  Bytes sse_leave;
  Bytes ws_leave;
};
using OutgoingPtr = std::shared_ptr<const Outgoing>;

OutgoingPtr make_outgoing(LogRow row);
Bytes serialize_row(const LogRow& row, Transport t);
// An update seen by a reader who could read the document before but not after: a delete.
Bytes serialize_leave(const LogRow& row, Transport t);
Bytes serialize_hello(std::int64_t seq, Transport t);
Bytes serialize_reset(const std::string& reason, std::int64_t seq, Transport t);
Bytes serialize_error(const Error& e, Transport t);

}  // namespace syncline::server
