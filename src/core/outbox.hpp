// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The queue of local mutations the server has not yet confirmed, in mid order.
//
// Life of an entry: pending (not acknowledged) -> acknowledged with the seq it produced ->
// removed once the replica has also seen that seq, so the optimistic view never shows the
// document without the write in between (no flicker). A rejection removes the entry at once.
// mids are strictly increasing for the life of the client, also across restarts.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/mutation.hpp"

namespace syncline {

struct OutboxEntry {
  Mutation mutation;
  std::optional<std::int64_t> applied_seq;  // set when the server reported it applied
  // The local clock when the mutation was queued (0: unknown, a state saved before it was kept):
  // a pending serverTime op shows this time until the server's value arrives.
  std::int64_t queued_ms = 0;
  bool operator==(const OutboxEntry&) const = default;
};

class Outbox {
 public:
  // Assigns the next mid and appends. Returns the mid.
  std::int64_t push(Mutation m, std::int64_t queued_ms = 0);

  OutboxEntry* find(std::int64_t mid);
  const OutboxEntry* find(std::int64_t mid) const;
  bool remove(std::int64_t mid);

  // Entries still waiting for the server's verdict (no applied_seq), oldest first, at most n,
  // all with mid < below_mid (the adapter's durable prefix).
  // An atomic group travels whole (the server refuses a partial one): it is taken with every
  // member still here, acknowledged ones too (the server answers them `duplicate`), when any
  // member awaits a verdict; it is left for the next batch when it would push the batch past n,
  // unless it comes first (then the batch is the group, even above n); it is not taken at all
  // while its last member is not below below_mid (the group is not durable yet).
  std::vector<Mutation> unacknowledged(std::size_t n, std::int64_t below_mid = INT64_MAX) const;
  // Whether a member of the group (by its first mid) still awaits the server's verdict.
  bool group_unacknowledged(std::int64_t group) const;
  std::size_t unacknowledged_count() const;

  // Pending entries that touch a document, oldest first.
  std::vector<const OutboxEntry*> for_key(const DocKey& key) const;

  const std::deque<OutboxEntry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::int64_t next_mid() const { return next_mid_; }
  void set_next_mid(std::int64_t mid) { next_mid_ = mid; }

  Json to_json() const;
  static Result<Outbox> from_json(const Json& j);
  bool operator==(const Outbox&) const = default;

 private:
  std::deque<OutboxEntry> entries_;
  std::int64_t next_mid_ = 1;
};

}  // namespace syncline
