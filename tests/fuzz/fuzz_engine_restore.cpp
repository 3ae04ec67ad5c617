// Layer: tests/fuzz. Target "engine_restore": restoring a client from saved bytes
// (Engine::restore / restore_json of src/core/engine). Saved state comes from IndexedDB or a
// file, which can be truncated, corrupted or written by another version: it must never crash.
//
// Input: one selector byte, then the saved state.
//   selector even   the rest is CBOR bytes for Engine::restore (what snapshot_bytes() writes)
//   selector odd    the rest is JSON text for Engine::restore_json (how the browser adapter
//                   assembles the state from separately stored parts)
// Invariants: no crash; errors are "invalid_snapshot"; a restored engine can be snapshotted
// and that snapshot restores to a fixpoint; the restored engine keeps working: a new local
// mutation gets a mid above every mid in the restored outbox, and take_batch() hands out
// increasing mids starting at the oldest unacknowledged one.
#include "core/engine.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  fuzz::ByteReader in(data, size);
  const std::uint8_t selector = in.byte();
  const std::string_view body = in.rest();
  EngineOptions o;
  o.client_id = "ignored";
  o.history_limit = 1 + (selector >> 1) % 16;
  o.max_batch = 3;

  Result<std::unique_ptr<Engine>> r = Error{"unset", "unset", ""};
  if (selector % 2 == 0) {
    r = Engine::restore(body, o);
  } else {
    Json j = parse_json_nothrow(body);
    if (j.is_discarded()) return 0;
    r = Engine::restore_json(j, o);
  }
  if (!r) {
    FUZZ_CHECK(r.error().code == codes::kInvalidSnapshot, "unexpected error code " + r.error().code);
    return 0;
  }
  Engine& e = **r;
  const std::string bytes = e.snapshot_bytes();
  auto again = Engine::restore(bytes, o);
  FUZZ_CHECK(again.ok(), "a restored engine's snapshot does not restore: " +
                             (again.ok() ? "" : again.error().message + " at " + again.error().field));
  FUZZ_CHECK((*again)->snapshot_bytes() == bytes, "snapshot -> restore -> snapshot is not a fixpoint");

  std::int64_t max_mid = 0;
  for (const auto& en : e.outbox().entries()) max_mid = std::max(max_mid, en.mutation.mid);
  auto mids = e.mutate({MutationRequest{MutationOp::Insert, "fuzz", "new1", Json::object(), std::nullopt}}, 1);
  FUZZ_CHECK(mids.ok(), "mutate after restore failed");
  FUZZ_CHECK(mids->at(0) > max_mid, "a new mid is not above the restored outbox's mids");
  e.set_transport_ready(true);
  if (auto b = e.take_batch(2)) {
    for (std::size_t i = 1; i < b->mutations.size(); ++i) {
      FUZZ_CHECK(b->mutations[i - 1].mid < b->mutations[i].mid, "batch mids not increasing");
    }
    // The server answers everything as applied; the engine must settle without crashing.
    MutationResults res;
    std::int64_t seq = (e.cursor() < 0 || e.cursor() > (std::int64_t{1} << 60)) ? 1 : e.cursor() + 1;
    for (const auto& m : b->mutations) res.results.push_back(MutationResult{m.mid, ResultStatus::Applied, seq++, {}, {}});
    res.seq = seq;
    (void)e.receive(ServerMessage{res}, 3);
  }
  (void)e.take_output();
  return 0;
}
