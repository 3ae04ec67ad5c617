// Layer: web/ (Emscripten bindings). Depends on src/core only; no Embind types here so the
// batch codec can also be compiled natively if needed.
// Turns engine outputs into the JSON batches that cross the wasm boundary.
#pragma once
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "core/engine.hpp"

namespace syncline::web {

Json error_json(const Error& e);
// The engine's output as JS reads it: "changes" as text (written straight from the changes),
// everything else as a Json the caller may add members to. With change detail off
// (Engine::set_change_detail) each change is {"collection","id"} only.
struct EngineReply {
  std::string changes;  // a JSON array
  Json rest;            // an object
  Json& operator[](const char* key) { return rest[key]; }
  std::string dump() const;
};
EngineReply output_to_json(const Engine& engine, EngineOutput&& out);
// A JSON array of mutations ({"op","collection","id","fields"?,"base_version"?,"ops"?,"if"?}).
Result<std::vector<MutationRequest>> decode_requests(const Json& j);
Result<QuerySpec> decode_query(const Json& j);
Result<AggregateSpec> decode_aggregate(const Json& j);
// The document's members move out of `j` (left valid but unspecified) once it is valid.
Result<Document> decode_document(Json&& j, const std::string& field);

// Decoding what JS hands the engine follows the protocol's rules (src/core/protocol.cpp): a
// member of the wrong type is an error naming it, never skipped or defaulted; an optional member
// that is null counts as absent (JSON.stringify writes undefined members as nothing, but a
// caller may pass null). Objects this package builds itself (engine options, query and aggregate
// specs) also refuse members they do not know: a misspelt option is an error, not ignored.
// Anything that carries server data (documents, wire mutations) ignores unknown members, as
// the protocol does, so a newer server's additions pass through.
std::optional<Error> unknown_member(const Json& j, std::initializer_list<std::string_view> known, RegisteredCode code,
                                    const std::string& at = {});

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
