// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Local mutations and the one set of rules for applying them to a document, shared by the
// client's optimistic overlay and the server's commit path so both compute the same result.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/document.hpp"
#include "core/error.hpp"
#include "core/filter.hpp"
#include "core/json.hpp"

namespace syncline {

enum class MutationOp { Insert, Update, Delete };
const char* to_string(MutationOp op);
std::optional<MutationOp> mutation_op_from_string(std::string_view s);

// An operation on one top-level field, computed from the document as committed (the server) or
// as currently seen (the client's optimistic replay), never from the writer's copy: concurrent
// increments all count.
struct FieldOp {
  enum class Kind { Increment, ServerTime };
  Kind kind = Kind::Increment;
  // Increment: the amount (a JSON number; integers stay integers while the sum fits int64). An
  // absent or null field counts as 0; a field of another type rejects with `conflict`.
  Json by = 0;
  // Increment bounds (JSON numbers): a result outside [min, max] rejects with `constraint`.
  std::optional<Json> min;
  std::optional<Json> max;
  bool operator==(const FieldOp&) const = default;
};

struct Mutation {
  std::int64_t mid = 0;
  MutationOp op = MutationOp::Insert;
  std::string collection;
  std::string id;
  Json fields = Json::object();              // insert: full fields; update: shallow patch
  std::optional<std::int64_t> base_version;  // update/delete: conflict unless it matches
  // insert/update: field -> operation, applied after `fields` (a field may not be in both).
  std::map<std::string, FieldOp> ops;
  // update/delete: precondition in the `where` grammar, checked against the document as it is
  // before this mutation; a document that does not match rejects with `conflict`.
  std::optional<Filter> condition;
  // Atomic group: the mid of the group's first member and the number of members. Members have
  // consecutive mids, travel in one batch, and are applied all or none.
  std::optional<std::int64_t> group;
  std::int64_t group_size = 0;

  DocKey key() const { return {collection, id}; }
  bool operator==(const Mutation&) const = default;
};

// What the one applying a mutation knows that the mutation does not: the commit's timestamp
// (serverTime; the client's optimistic replay passes its own clock).
struct ApplyContext {
  std::int64_t now_ms = 0;
};

// Applies a mutation on top of `current` (nullptr or a tombstone = document absent).
// Returns the resulting fields (nullopt = the document is deleted/absent afterwards),
// or an Error with code "conflict" (base_version mismatch, insert over a live document,
// update/delete of a missing document) or "invalid_mutation".
// Update is a shallow patch: each key replaces the top-level field; a null value removes it.
struct MutationOutcome {
  std::optional<Json> fields;  // nullopt: absent after the mutation
};
// Errors also: "conflict" when `condition` does not match (field "if") or an increment meets a
// non-number (field "ops.<name>"); "constraint" when an increment leaves its bounds or int64
// (field "ops.<name>").
Result<MutationOutcome> apply_mutation(const Document* current, const Mutation& m, const ApplyContext& ctx = {});

// Shallow patch: keys of `patch` overwrite `target`; null values remove the key. The result
// holds no top-level null, even where `target` did.
void apply_patch(Json& target, const Json& patch);

}  // namespace syncline
