// Layer: web/ (Emscripten bindings). Depends on src/core only; no Embind types here so the
// batch codec can also be compiled natively if needed.
// Turns engine outputs into the JSON batches that cross the wasm boundary.
#pragma once
#include <set>
#include <string>

#include "core/engine.hpp"

namespace syncline::web {

Json error_json(const Error& e);
// detail=false writes each entry of "changes" as {"collection","id"} only: before/after are
// two copies of the document that the JS runtime reads only for document listeners.
Json output_to_json(const Engine& engine, const EngineOutput& out, bool detail = true);
// A JSON array of mutations ({"op","collection","id","fields"?,"base_version"?,"ops"?,"if"?}).
Result<std::vector<MutationRequest>> decode_requests(const Json& j);
Result<QuerySpec> decode_query(const Json& j);
Result<AggregateSpec> decode_aggregate(const Json& j);
Result<Document> decode_document(const Json& j, const std::string& field);

// Storage work accumulated across calls until the adapter takes it.
struct PendingPersistence {
  std::set<DocKey> docs;
  bool outbox = false;
  bool meta = false;
  bool history = false;
  void merge(const EngineOutput& out);
  bool empty() const { return docs.empty() && !outbox && !meta && !history; }
};
Json persistence_to_json(const Engine& engine, const PendingPersistence& p);

}  // namespace syncline::web
