// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Pending writes of the other tabs of the same user. Each tab has its own outbox (its own client
// id and mids) and sends its own writes; the engine of every other tab shows them too, on top of
// the base and under its own pending writes, so a write in one tab is visible in the others at
// once, offline as well. They are never sent or persisted here.
//
// A client's set leaves when the server has decided it: a change with that client's origin and
// mid M decides every mid <= M (the server applies a client's mids in order), or the owning tab
// says so (drop). A set its owner stopped refreshing for kTtlMs is dropped: that tab is gone, and
// the leader drains its stored outbox under the same client id.
//
// Cost: per_key_ indexes the entries by document, so a rebase of one document looks only at the
// entries for it: O(log n + entries on that document).
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/mutation.hpp"

namespace syncline {

class ForeignPending {
 public:
  static constexpr std::int64_t kTtlMs = 30'000;

  // Replaces a client's whole set (its owner's periodic full state). Returns the documents whose
  // foreign entries changed.
  std::set<DocKey> replace(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms);
  // Adds to a client's set (a write just made in that tab).
  std::set<DocKey> add(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms);
  std::set<DocKey> drop(const std::string& client, const std::vector<std::int64_t>& mids);
  // Drops a client's mids <= mid: a change with that origin arrived.
  std::set<DocKey> drop_through(const std::string& client, std::int64_t mid);
  // Drops the sets of clients not refreshed since now - kTtlMs.
  std::set<DocKey> expire(std::int64_t now_ms);

  // The entries for one document in a stable order (client, then mid).
  std::vector<const Mutation*> for_key(const DocKey& key) const;
  bool empty() const { return clients_.empty(); }
  std::size_t size() const;

 private:
  struct ClientSet {
    std::map<std::int64_t, Mutation> by_mid;
    std::int64_t refreshed_ms = 0;
  };
  void insert(const std::string& client, ClientSet& set, Mutation m, std::set<DocKey>& touched);
  void erase(const std::string& client, ClientSet& set, std::map<std::int64_t, Mutation>::iterator it,
             std::set<DocKey>& touched);

  std::map<std::string, ClientSet> clients_;
  std::map<DocKey, std::set<std::pair<std::string, std::int64_t>>> per_key_;
};

}  // namespace syncline
