// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Event history ring (docs/api.md, Events). Snapshot format, as persisted by the adapters:
//   {"version":1,"capacity":100,"total":250,"counts":{"change":240,"event":10},
//    "entries":[{"atMs":..,"type":"change","seq":..,"collection":"..","id":"..","data":{..}}...]}
// (snapshots saved by earlier versions spell atMs "at_ms": both are read, see find_renamed).
// entries are oldest first. from_json() checks types and consistency (entries fit the
// capacity, counts are non-negative and add up to total, every entry's type is counted) and
// answers "invalid_snapshot" otherwise; it never throws.
#include "core/event_history.hpp"

#include <limits>
#include <utility>

namespace syncline {

namespace {

constexpr std::int64_t kSnapshotVersion = 1;
// A snapshot may not ask for more slots than this (it would allocate them all up front).
constexpr std::int64_t kMaxSnapshotCapacity = 100'000;  // as the binding's historyLimit bound


Error bad(std::string message, std::string field) {
  return make_error(codes::kInvalidSnapshot, std::move(message), std::move(field));
}

// Reads a member that must be an int64 >= min; absent/wrong type is an error. old_key: the
// spelling of states saved before the member was renamed (nullptr: never renamed).
std::optional<Error> read_int(const Json& obj, const char* key, const std::string& path, std::int64_t min,
                              std::int64_t& out, const char* old_key = nullptr) {
  auto it = old_key ? find_renamed(obj, key, old_key) : obj.find(key);
  if (it == obj.end()) return bad(path + " is required", path);
  if (!json_as_int64(*it, out) || out < min) return bad(path + " must be an integer >= " + std::to_string(min), path);
  return std::nullopt;
}

// Reads an optional string member (absent/null -> "").
std::optional<Error> read_string(const Json& obj, const char* key, const std::string& path, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return bad(path + " must be a string", path);
  out = it->get<std::string>();
  return std::nullopt;
}

Result<HistoryEntry> entry_from_json(const Json& j, const std::string& path) {
  if (!j.is_object()) return bad(path + " must be an object", path);
  HistoryEntry e;
  if (auto err = read_int(j, "atMs", path + ".atMs", std::numeric_limits<std::int64_t>::min(), e.at_ms, "at_ms")) {
    return *err;
  }
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return bad(path + ".type must be a string", path + ".type");
  e.type = type->get<std::string>();
  auto seq = j.find("seq");
  if (seq != j.end() && !seq->is_null()) {
    if (!json_as_int64(*seq, e.seq) || e.seq < 0) {
      return bad(path + ".seq must be an integer >= 0", path + ".seq");
    }
  }
  if (auto err = read_string(j, "collection", path + ".collection", e.collection)) return *err;
  if (auto err = read_string(j, "id", path + ".id", e.id)) return *err;
  // data is whatever was pushed: any JSON value round-trips.
  auto data = j.find("data");
  if (data != j.end()) e.data = *data;
  return e;
}

}  // namespace

EventHistory::EventHistory(std::size_t capacity) : ring_(capacity) {}

void EventHistory::push(HistoryEntry e) {
  ++counts_[e.type];
  ++total_;
  const std::size_t cap = ring_.size();
  if (cap == 0) return;  // counts only
  if (size_ < cap) {
    ring_[(head_ + size_) % cap] = std::move(e);
    ++size_;
  } else {
    ring_[head_] = std::move(e);  // overwrite the oldest
    head_ = (head_ + 1) % cap;
  }
}

std::vector<HistoryEntry> EventHistory::entries() const {
  std::vector<HistoryEntry> out;
  out.reserve(size_);
  const std::size_t cap = ring_.size();
  for (std::size_t i = 0; i < size_; ++i) out.push_back(ring_[(head_ + i) % cap]);
  return out;
}

void EventHistory::set_capacity(std::size_t capacity) {
  if (capacity == ring_.size()) return;
  std::vector<HistoryEntry> kept = entries();
  const std::size_t drop = kept.size() > capacity ? kept.size() - capacity : 0;
  std::vector<HistoryEntry> ring(capacity);
  std::size_t n = 0;
  for (std::size_t i = drop; i < kept.size(); ++i) ring[n++] = std::move(kept[i]);
  ring_ = std::move(ring);
  head_ = 0;
  size_ = n;
}

Json EventHistory::to_json() const {
  Json counts = Json::object();
  for (const auto& [type, n] : counts_) counts[type] = n;
  Json entries_json = Json::array();
  for (const HistoryEntry& e : entries()) {
    entries_json.push_back(Json{{"atMs", e.at_ms},
                                {"type", e.type},
                                {"seq", e.seq},
                                {"collection", e.collection},
                                {"id", e.id},
                                {"data", e.data}});
  }
  return Json{{"version", kSnapshotVersion},
              {"capacity", ring_.size()},
              {"total", total_},
              {"counts", std::move(counts)},
              {"entries", std::move(entries_json)}};
}

Result<EventHistory> EventHistory::from_json(const Json& j) {
  if (!j.is_object()) return bad("history snapshot must be an object", "");
  auto version = j.find("version");
  if (version != j.end()) {
    std::int64_t v = 0;
    if (!json_as_int64(*version, v) || v != kSnapshotVersion) {
      return bad("unsupported history snapshot version", "version");
    }
  }
  std::int64_t capacity = 0;
  if (auto err = read_int(j, "capacity", "capacity", 0, capacity)) return *err;
  if (capacity > kMaxSnapshotCapacity) {
    return bad("capacity exceeds " + std::to_string(kMaxSnapshotCapacity), "capacity");
  }
  std::int64_t total = 0;
  if (auto err = read_int(j, "total", "total", 0, total)) return *err;

  auto counts_it = j.find("counts");
  if (counts_it == j.end() || !counts_it->is_object()) return bad("counts must be an object", "counts");
  std::map<std::string, std::int64_t> counts;
  std::int64_t sum = 0;
  for (auto it = counts_it->begin(); it != counts_it->end(); ++it) {
    std::int64_t n = 0;
    const std::string path = "counts." + it.key();
    if (!json_as_int64(it.value(), n) || n < 0) return bad(path + " must be an integer >= 0", path);
    if (n > std::numeric_limits<std::int64_t>::max() - sum) return bad("counts overflow", path);
    sum += n;
    if (n > 0) counts[it.key()] = n;
  }
  if (sum != total) return bad("counts do not add up to total", "total");

  auto entries_it = j.find("entries");
  if (entries_it == j.end() || !entries_it->is_array()) return bad("entries must be an array", "entries");
  if (static_cast<std::int64_t>(entries_it->size()) > capacity) {
    return bad("more entries than capacity", "entries");
  }
  if (static_cast<std::int64_t>(entries_it->size()) > total) {
    return bad("more entries than total", "entries");
  }

  EventHistory h(static_cast<std::size_t>(capacity));
  std::map<std::string, std::int64_t> seen;
  for (std::size_t i = 0; i < entries_it->size(); ++i) {
    const std::string path = "entries[" + std::to_string(i) + "]";
    auto e = entry_from_json((*entries_it)[i], path);
    if (!e) return e.error();
    if (++seen[e->type] > counts[e->type]) {
      return bad("entry type \"" + e->type + "\" is not counted", path + ".type");
    }
    h.ring_[h.size_++] = std::move(e.value());
  }
  // counts[] above may have created zero entries while checking; drop them.
  for (auto it = counts.begin(); it != counts.end();) {
    it = it->second == 0 ? counts.erase(it) : std::next(it);
  }
  h.counts_ = std::move(counts);
  h.total_ = total;
  return h;
}

}  // namespace syncline
