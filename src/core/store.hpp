// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The replica's base state: what the server has told us, per collection, including
// tombstones. Applying a change is idempotent by version (docs/protocol.md, Data model): a
// change whose seq is not newer than the stored version of that document is ignored, so replays,
// duplicates and out-of-order deliveries of older changes are always safe.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/document.hpp"
#include "core/protocol.hpp"

namespace syncline {

class Store {
 public:
  // Returns true when the change was newer and got applied. By value: a caller that is done
  // with the message moves it in, and its fields become the stored document without a copy.
  // When applied and `replaced` is given, it receives the fields of the live document the change
  // replaced (moved out, not copied; nullopt if there was none or it was a tombstone).
  bool apply(ChangeMsg change, std::optional<Json>* replaced = nullptr);
  // Unconditionally sets a document (snapshot load). Tombstones allowed.
  void put(Document doc);
  // Removes a document entirely (used when a re-snapshot no longer contains it).
  bool erase(const DocKey& key);

  // Live or tombstoned; nullptr when unknown.
  const Document* find(const std::string& collection, const std::string& id) const;
  const Document* find(const DocKey& key) const { return find(key.collection, key.id); }

  // Visits live (non-deleted) documents of a collection in id order.
  void for_each_live(const std::string& collection, const std::function<void(const Document&)>& fn) const;
  // Visits every stored document (tombstones too).
  void for_each(const std::function<void(const Document&)>& fn) const;
  std::vector<std::string> collections() const;

  std::size_t live_count(const std::string& collection) const;
  std::size_t size() const;  // including tombstones
  // Drops tombstones with version <= up_to (compaction).
  std::size_t compact_tombstones(std::int64_t up_to);

  bool operator==(const Store& o) const { return collections_ == o.collections_; }

 private:
  // std::map keeps id order, which makes iteration deterministic across replicas.
  std::unordered_map<std::string, std::map<std::string, Document>> collections_;
};

}  // namespace syncline
