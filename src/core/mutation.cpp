// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The one rule for applying a mutation (see mutation.hpp): the server at commit and the client
// replaying its pending writes both call apply_mutation, so both compute the same document.
#include "core/mutation.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/live_query.hpp"  // compare_values: the exact order of JSON numbers

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

namespace {


std::string number_text(const Json& v) { return v.dump(); }

// base + by for one increment, or the rejection. Integers stay integers while the sum fits
// int64 (a counter must not lose units to rounding); anything else is summed as double.
Result<Json> increment(const std::string& name, const Json* base, const FieldOp& op) {
  const std::string field = "ops." + name;
  if (!op.by.is_number()) {
    return make_error(codes::kInvalidMutation, "increment of " + name + " must be a number", field);
  }
  Json start = 0;
  if (base && !base->is_null()) {
    if (!base->is_number()) {
      return make_error(codes::kConflict, name + " is not a number, cannot increment it", field);
    }
    start = *base;
  }
  Json sum;
  std::int64_t a = 0, b = 0;
  if (json_as_int64(start, a) && json_as_int64(op.by, b)) {
    std::int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) {
      return make_error(codes::kConstraint, name + " would leave the int64 range", field);
    }
    sum = r;
  } else {
    const double r = start.get<double>() + op.by.get<double>();
    if (!std::isfinite(r)) return make_error(codes::kConstraint, name + " would leave the double range", field);
    sum = r;
  }
  if (op.min && op.min->is_number() && compare_values(&sum, &*op.min) < 0) {
    return make_error(codes::kConstraint,
                      name + " would be " + number_text(sum) + ", below min " + number_text(*op.min), field);
  }
  if (op.max && op.max->is_number() && compare_values(&sum, &*op.max) > 0) {
    return make_error(codes::kConstraint,
                      name + " would be " + number_text(sum) + ", above max " + number_text(*op.max), field);
  }
  return sum;
}

// The ops of an insert or update on the fields the patch produced, in key order.
std::optional<Error> apply_ops(Json& fields, const Mutation& m, const ApplyContext& ctx) {
  for (const auto& [name, op] : m.ops) {
    if (m.fields.is_object() && m.fields.contains(name)) {
      return make_error(codes::kInvalidMutation, name + " is named both in fields and in ops", "ops." + name);
    }
    switch (op.kind) {
      case FieldOp::Kind::Increment: {
        auto it = fields.find(name);
        auto r = increment(name, it == fields.end() ? nullptr : &*it, op);
        if (!r) return r.error();
        fields[name] = std::move(*r);
        break;
      }
      case FieldOp::Kind::ServerTime:
        fields[name] = ctx.now_ms;
        break;
    }
  }
  return std::nullopt;
}

Error not_exists(const Mutation& m) {
  return make_error(codes::kConflict, "document " + m.collection + "/" + m.id + " does not exist", "id");
}

}  // namespace

Result<MutationOutcome> apply_mutation(const Document* current, const Mutation& m, const ApplyContext& ctx) {
  const bool exists = current != nullptr && !current->deleted;
  if (m.base_version && (!current || current->version != *m.base_version)) {
    return make_error(codes::kConflict,
                      "base_version " + std::to_string(*m.base_version) + " does not match " +
                          (current ? std::to_string(current->version) : std::string("absent")),
                      "base_version");
  }
  // The decoder refuses these shapes; a mutation built in code gets the same answer here.
  if (m.op == MutationOp::Insert && m.condition) {
    return make_error(codes::kInvalidMutation, "an insert cannot carry a condition", "if");
  }
  if (m.op == MutationOp::Delete && !m.ops.empty()) {
    return make_error(codes::kInvalidMutation, "a delete cannot carry ops", "ops");
  }
  if (m.condition) {
    static const Json kNoFields = Json::object();
    const Json& fields = exists && current->fields.is_object() ? current->fields : kNoFields;
    if (!exists || !m.condition->matches(m.id, fields)) {
      return make_error(codes::kConflict, "condition " + m.condition->to_string() + " does not hold", "if");
    }
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
      if (auto e = apply_ops(fields, m, ctx)) return *e;
      return MutationOutcome{std::move(fields)};
    }
    case MutationOp::Update: {
      if (!m.fields.is_object()) {
        return make_error(codes::kInvalidMutation, "update fields must be an object", "fields");
      }
      if (!exists) return not_exists(m);
      Json fields = current->fields;
      apply_patch(fields, m.fields);
      if (auto e = apply_ops(fields, m, ctx)) return *e;
      return MutationOutcome{std::move(fields)};
    }
    case MutationOp::Delete: {
      if (!exists) return not_exists(m);
      return MutationOutcome{std::nullopt};
    }
  }
  return make_error(codes::kInvalidMutation, "unknown op", "op");
}

}  // namespace syncline
