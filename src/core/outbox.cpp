// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
#include "core/outbox.hpp"

#include <algorithm>
#include <limits>

#include "core/protocol.hpp"

namespace syncline {

std::int64_t Outbox::push(Mutation m, std::int64_t queued_ms) {
  m.mid = next_mid_++;
  std::int64_t mid = m.mid;
  entries_.push_back(OutboxEntry{std::move(m), std::nullopt, queued_ms});
  return mid;
}

OutboxEntry* Outbox::find(std::int64_t mid) {
  // Entries are in mid order: binary search.
  auto it = std::lower_bound(entries_.begin(), entries_.end(), mid,
                             [](const OutboxEntry& e, std::int64_t m) { return e.mutation.mid < m; });
  return (it != entries_.end() && it->mutation.mid == mid) ? &*it : nullptr;
}

const OutboxEntry* Outbox::find(std::int64_t mid) const {
  return const_cast<Outbox*>(this)->find(mid);
}

bool Outbox::remove(std::int64_t mid) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), mid,
                             [](const OutboxEntry& e, std::int64_t m) { return e.mutation.mid < m; });
  if (it == entries_.end() || it->mutation.mid != mid) return false;
  entries_.erase(it);
  return true;
}

std::vector<Mutation> Outbox::unacknowledged(std::size_t n, std::int64_t below_mid) const {
  std::vector<Mutation> out;
  for (std::size_t i = 0; i < entries_.size();) {
    const Mutation& m = entries_[i].mutation;
    // Entries are in mid order: nothing after the first one past the limit may go either.
    if (out.size() >= n || m.mid >= below_mid) break;
    if (!m.group) {
      if (!entries_[i].applied_seq) out.push_back(m);
      ++i;
      continue;
    }
    // The group's members still here: the following entries with the same group.
    std::size_t end = i;
    bool waiting = false;
    while (end < entries_.size() && entries_[end].mutation.group == m.group) {
      waiting = waiting || !entries_[end].applied_seq;
      ++end;
    }
    const std::int64_t last_mid = *m.group + std::max<std::int64_t>(m.group_size, 1) - 1;
    if (last_mid >= below_mid) break;  // not durable as a whole yet
    if (waiting) {
      if (!out.empty() && out.size() + (end - i) > n) break;
      for (std::size_t k = i; k < end; ++k) out.push_back(entries_[k].mutation);
    }
    i = end;
  }
  return out;
}

bool Outbox::group_unacknowledged(std::int64_t group) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), group,
                             [](const OutboxEntry& e, std::int64_t m) { return e.mutation.mid < m; });
  for (; it != entries_.end() && it->mutation.group == group; ++it) {
    if (!it->applied_seq) return true;
  }
  return false;
}

std::size_t Outbox::unacknowledged_count() const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const OutboxEntry& e) { return !e.applied_seq; }));
}

std::vector<const OutboxEntry*> Outbox::for_key(const DocKey& key) const {
  std::vector<const OutboxEntry*> out;
  for (const auto& e : entries_) {
    if (e.mutation.collection == key.collection && e.mutation.id == key.id) out.push_back(&e);
  }
  return out;
}

// The record as the runtime stores it (docs/architecture.md, Persistence): each entry is the
// mutation in its wire form (protocol spelling: base_version, group_size) plus the state the core
// keeps for it, spelled like every other object the engine hands to JS (camelCase).
Json Outbox::to_json() const {
  Json list = Json::array();
  for (const auto& e : entries_) {
    Json j = encode(e.mutation);
    if (e.applied_seq) j["appliedSeq"] = *e.applied_seq;
    if (e.queued_ms != 0) j["queuedMs"] = e.queued_ms;
    list.push_back(std::move(j));
  }
  return Json{{"nextMid", next_mid_}, {"entries", std::move(list)}};
}

Result<Outbox> Outbox::from_json(const Json& j) {
  if (!j.is_object()) return make_error(codes::kInvalidSnapshot, "outbox must be an object", "outbox");
  auto nm = find_renamed(j, "nextMid", "next_mid");
  auto en = j.find("entries");
  Outbox out;
  if (nm == j.end() || !json_as_int64(*nm, out.next_mid_)) {
    return make_error(codes::kInvalidSnapshot, "outbox needs an integer nextMid", "outbox.nextMid");
  }
  if (en == j.end() || !en->is_array()) {
    return make_error(codes::kInvalidSnapshot, "outbox entries must be an array", "outbox.entries");
  }
  if (out.next_mid_ < 1 || out.next_mid_ == std::numeric_limits<std::int64_t>::max()) {
    return make_error(codes::kInvalidSnapshot, "outbox nextMid out of range", "outbox.nextMid");
  }
  std::int64_t last = 0;
  for (std::size_t i = 0; i < en->size(); ++i) {
    const Json& ej = (*en)[i];
    const std::string at = "outbox.entries[" + std::to_string(i) + "]";
    auto m = decode_mutation(ej, at);
    if (!m) return make_error(codes::kInvalidSnapshot, m.error().message, m.error().field);
    if (m->mid <= last || m->mid >= out.next_mid_) {
      return make_error(codes::kInvalidSnapshot, "outbox mids out of order", "outbox.entries");
    }
    last = m->mid;
    OutboxEntry e{std::move(*m), std::nullopt, 0};
    if (auto as = find_renamed(ej, "appliedSeq", "applied_seq"); as != ej.end() && !as->is_null()) {
      std::int64_t seq = 0;
      if (!json_as_int64(*as, seq) || seq < 0) {
        return make_error(codes::kInvalidSnapshot, "appliedSeq must be an integer >= 0", at + ".appliedSeq");
      }
      e.applied_seq = seq;
    }
    // Absent in states saved before serverTime existed.
    if (auto q = find_renamed(ej, "queuedMs", "queued_ms"); q != ej.end() && !q->is_null()) {
      if (!json_as_int64(*q, e.queued_ms)) {
        return make_error(codes::kInvalidSnapshot, "queuedMs must be an integer", at + ".queuedMs");
      }
    }
    out.entries_.push_back(std::move(e));
  }
  // A group still waiting for a verdict is sent whole: every member must be here, in mid order.
  for (std::size_t i = 0; i < out.entries_.size();) {
    const Mutation& first = out.entries_[i].mutation;
    std::size_t end = i + 1;
    while (end < out.entries_.size() && out.entries_[end].mutation.group == first.group) ++end;
    if (first.group && out.group_unacknowledged(*first.group)) {
      bool whole = static_cast<std::int64_t>(end - i) == first.group_size && first.mid == *first.group;
      for (std::size_t k = i; whole && k < end; ++k) {
        const Mutation& m = out.entries_[k].mutation;
        whole = m.group_size == first.group_size && m.mid == first.mid + static_cast<std::int64_t>(k - i);
      }
      if (!whole) {
        return make_error(codes::kInvalidSnapshot,
                          "outbox group " + std::to_string(*first.group) + " lacks members while awaiting a verdict",
                          "outbox.entries");
      }
    }
    i = end;
  }
  return out;
}

}  // namespace syncline
