// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// A bounded ring of recent events (changes, custom events, status transitions) with per-type
// counters that keep counting after entries fall out of the ring. Serialisable for persistence.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"

namespace syncline {

struct HistoryEntry {
  std::int64_t at_ms = 0;   // injected clock
  std::string type;         // "change", "event", "reset", "status", "rejected", ...
  std::int64_t seq = 0;     // 0 when not applicable
  std::string collection;
  std::string id;
  Json data = Json::object();
  bool operator==(const HistoryEntry&) const = default;
};

class EventHistory {
 public:
  static constexpr std::size_t kDefaultCapacity = 100;
  explicit EventHistory(std::size_t capacity = kDefaultCapacity);

  void push(HistoryEntry e);
  // Oldest first.
  std::vector<HistoryEntry> entries() const;
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return ring_.size(); }
  // Total pushed per type since creation (not bounded by capacity).
  const std::map<std::string, std::int64_t>& counts() const { return counts_; }
  std::int64_t total() const { return total_; }
  // Changes capacity keeping the newest entries.
  void set_capacity(std::size_t capacity);

  Json to_json() const;
  static Result<EventHistory> from_json(const Json& j);

  bool operator==(const EventHistory& o) const {
    return entries() == o.entries() && counts_ == o.counts_ && total_ == o.total_ && capacity() == o.capacity();
  }

 private:
  std::vector<HistoryEntry> ring_;
  std::size_t head_ = 0;  // index of the oldest entry
  std::size_t size_ = 0;
  std::map<std::string, std::int64_t> counts_;
  std::int64_t total_ = 0;
};

}  // namespace syncline
