#include "core/mutation.hpp"

namespace syncline {

const char* to_string(MutationOp op) {
  switch (op) {
    case MutationOp::Insert: return "insert";
    case MutationOp::Update: return "update";
    case MutationOp::Delete: return "delete";
  }
  return "insert";
}

std::optional<MutationOp> mutation_op_from_string(std::string_view s) {
  if (s == "insert") return MutationOp::Insert;
  if (s == "update") return MutationOp::Update;
  if (s == "delete") return MutationOp::Delete;
  return std::nullopt;
}

void apply_patch(Json& target, const Json& patch) {
  if (!target.is_object()) target = Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else {
      target[it.key()] = it.value();
    }
  }
  // A document this code produced never holds a null field, but one that came from elsewhere (a
  // restored snapshot, a frame of a faulty server) may: the result of a patch never does, so a
  // null cannot mean "absent" in one place and be kept in another (fuzz mutation_apply).
  for (auto it = target.begin(); it != target.end();) {
    if (it->is_null()) it = target.erase(it);
    else ++it;
  }
}

Result<MutationOutcome> apply_mutation(const Document* current, const Mutation& m) {
  const bool exists = current != nullptr && !current->deleted;
  if (m.base_version && (!current || current->version != *m.base_version)) {
    return make_error(codes::kConflict,
                      "base_version " + std::to_string(*m.base_version) + " does not match " +
                          (current ? std::to_string(current->version) : std::string("absent")),
                      "base_version");
  }
  switch (m.op) {
    case MutationOp::Insert: {
      if (!m.fields.is_object()) {
        return make_error(codes::kInvalidMutation, "insert fields must be an object", "fields");
      }
      if (exists) {
        return make_error(codes::kConflict, "document " + m.collection + "/" + m.id + " already exists", "id");
      }
      Json fields = Json::object();
      apply_patch(fields, m.fields);  // nulls in an insert mean "no such field"
      return MutationOutcome{std::move(fields)};
    }
    case MutationOp::Update: {
      if (!m.fields.is_object()) {
        return make_error(codes::kInvalidMutation, "update fields must be an object", "fields");
      }
      if (!exists) {
        return make_error(codes::kConflict, "document " + m.collection + "/" + m.id + " does not exist", "id");
      }
      Json fields = current->fields;
      apply_patch(fields, m.fields);
      return MutationOutcome{std::move(fields)};
    }
    case MutationOp::Delete: {
      if (!exists) {
        return make_error(codes::kConflict, "document " + m.collection + "/" + m.id + " does not exist", "id");
      }
      return MutationOutcome{std::nullopt};
    }
  }
  return make_error(codes::kInvalidMutation, "unknown op", "op");
}

}  // namespace syncline
