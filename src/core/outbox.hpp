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
  bool operator==(const OutboxEntry&) const = default;
};

class Outbox {
 public:
  // Assigns the next mid and appends. Returns the mid.
  std::int64_t push(Mutation m);

  OutboxEntry* find(std::int64_t mid);
  const OutboxEntry* find(std::int64_t mid) const;
  bool remove(std::int64_t mid);

  // Entries still waiting for the server's verdict (no applied_seq), oldest first, at most n.
  // The oldest n unacknowledged mutations with mid < below_mid (the adapter's durable prefix).
  std::vector<Mutation> unacknowledged(std::size_t n, std::int64_t below_mid = INT64_MAX) const;
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
