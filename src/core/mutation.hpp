// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Local mutations and the one set of rules for applying them to a document, shared by the
// client's optimistic overlay and the server's commit path so both compute the same result.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/document.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

namespace syncline {

enum class MutationOp { Insert, Update, Delete };
const char* to_string(MutationOp op);
std::optional<MutationOp> mutation_op_from_string(std::string_view s);

struct Mutation {
  std::int64_t mid = 0;
  MutationOp op = MutationOp::Insert;
  std::string collection;
  std::string id;
  Json fields = Json::object();              // insert: full fields; update: shallow patch
  std::optional<std::int64_t> base_version;  // update/delete: conflict unless it matches

  DocKey key() const { return {collection, id}; }
  bool operator==(const Mutation&) const = default;
};

// Applies a mutation on top of `current` (nullptr or a tombstone = document absent).
// Returns the resulting fields (nullopt = the document is deleted/absent afterwards),
// or an Error with code "conflict" (base_version mismatch, insert over a live document,
// update/delete of a missing document) or "invalid_mutation".
// Update is a shallow patch: each key replaces the top-level field; a null value removes it.
struct MutationOutcome {
  std::optional<Json> fields;  // nullopt: absent after the mutation
};
Result<MutationOutcome> apply_mutation(const Document* current, const Mutation& m);

// Shallow patch: keys of `patch` overwrite `target`; null values remove the key. The result
// holds no top-level null, even where `target` did.
void apply_patch(Json& target, const Json& patch);

}  // namespace syncline
