// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Documents and their naming rules (docs/protocol.md, Data model).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.hpp"

namespace syncline {

// collection: ^[a-z][a-z0-9_]{0,63}$
bool is_valid_collection(std::string_view name);
// id: ^[A-Za-z0-9_.:-]{1,128}$
bool is_valid_id(std::string_view id);

struct DocKey {
  std::string collection;
  std::string id;
  // Written out: the libc++ of Emscripten 3.1.6 has no operator<=> for std::string.
  bool operator<(const DocKey& o) const {
    int c = collection.compare(o.collection);
    return c != 0 ? c < 0 : id < o.id;
  }
  bool operator==(const DocKey&) const = default;
};

struct Document {
  std::string collection;
  std::string id;
  std::int64_t version = 0;  // seq of the last change the replica has seen (0: never synced)
  Json fields = Json::object();
  bool deleted = false;       // tombstone: kept so replays of older changes stay no-ops

  DocKey key() const { return {collection, id}; }
  bool operator==(const Document&) const = default;
};

// {"collection","id","version","fields"} as on the wire (tombstones add "deleted": true).
Json document_to_json(const Document& doc);

}  // namespace syncline
