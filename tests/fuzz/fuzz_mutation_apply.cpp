// Layer: tests/fuzz. Target "mutation_apply": decoding one mutation and applying it to a document
// (src/core/mutation, decode_mutation of src/core/protocol).
//
// Input: a JSON text, either a mutation object or [mutation, current, now] where current is null
// (absent) or {"version": n, "fields": {...}, "deleted": bool} (any member may be missing or of
// the wrong type: the harness turns whatever is there into a Document) and now (optional) is
// the ApplyContext clock.
// Invariants:
//   - decode_mutation never crashes, fails only with invalid_request or invalid_mutation at a
//     path under the prefix; decode(encode(m)) == m;
//   - apply_mutation never crashes and only fails with "conflict", "constraint" or
//     "invalid_mutation";
//   - base_version: a mismatch is always a conflict (checked first);
//   - a condition is checked next: on an absent document or one it does not match, the result is
//     a conflict at "if"; when it holds, the result is what the mutation gives without it;
//   - insert succeeds exactly on an absent/tombstoned document (and ops that apply) and yields
//     fields minus nulls, plus the ops' fields;
//   - update succeeds exactly on a live document (and ops that apply): patched keys take the
//     patch value, null keys are removed, every other key is unchanged, nothing else appears;
//   - ops, in key order, on the patched fields, computed here by an independent model: an
//     increment of an absent/null field starts at 0, of a non-number is a conflict at
//     "ops.<name>"; integer + integer is exact (outside int64: constraint), anything else a
//     double (not finite: constraint); outside [min, max]: constraint at "ops.<name>";
//     serverTime is `now`. The first op that fails names the error;
//   - delete succeeds exactly on a live document and leaves it absent;
//   - the result never contains a top-level null and applying the same patch again is a no-op.
#include "core/mutation.hpp"
#include "core/protocol.hpp"
#include "fuzz_common.hpp"

#include <cmath>
#include <cstdint>

using namespace syncline;

namespace {

// The independent model of one op: the value, or the error code.
struct OpOutcome {
  std::optional<Json> value;
  std::string code;
};

bool to_int64(const Json& v, std::int64_t& out) {
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return false;
    out = static_cast<std::int64_t>(v.get<std::uint64_t>());
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return true;
  }
  return false;
}

// Numbers compared through long double: exact for every int64 and double on x86-64 (64-bit
// mantissa), which is where the fuzzer runs.
long double as_ld(const Json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<std::uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<std::int64_t>());
  return static_cast<long double>(v.get<double>());
}

OpOutcome model_op(const FieldOp& op, const Json* base, std::int64_t now) {
  if (op.kind == FieldOp::Kind::ServerTime) return {Json(now), ""};
  Json start = 0;
  if (base && !base->is_null()) {
    if (!base->is_number()) return {std::nullopt, codes::kConflict};
    start = *base;
  }
  Json sum;
  std::int64_t a = 0, b = 0;
  if (to_int64(start, a) && to_int64(op.by, b)) {
    const __int128 wide = static_cast<__int128>(a) + b;
    if (wide > INT64_MAX || wide < INT64_MIN) return {std::nullopt, codes::kConstraint};
    sum = static_cast<std::int64_t>(wide);
  } else {
    const double d = start.get<double>() + op.by.get<double>();
    if (!std::isfinite(d)) return {std::nullopt, codes::kConstraint};
    sum = d;
  }
  if (op.min && as_ld(sum) < as_ld(*op.min)) return {std::nullopt, codes::kConstraint};
  if (op.max && as_ld(sum) > as_ld(*op.max)) return {std::nullopt, codes::kConstraint};
  return {sum, ""};
}

Document doc_from(const Json& j) {
  Document d{"c", "d1", 0, Json::object(), false};
  if (!j.is_object()) return d;
  if (auto v = j.find("version"); v != j.end() && v->is_number_integer()) d.version = v->get<std::int64_t>();
  if (auto f = j.find("fields"); f != j.end()) d.fields = *f;  // may be a non-object on purpose
  if (auto del = j.find("deleted"); del != j.end() && del->is_boolean()) d.deleted = del->get<bool>();
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Json input = parse_json_nothrow(std::string_view(reinterpret_cast<const char*>(data), size));
  if (input.is_discarded()) return 0;
  const Json* mj = &input;
  std::optional<Document> current;
  std::int64_t now = 0;
  if (input.is_array() && !input.empty()) {
    mj = &input[0];
    if (input.size() > 1 && !input[1].is_null()) current = doc_from(input[1]);
    if (input.size() > 2 && input[2].is_number_integer()) now = input[2].get<std::int64_t>();
  }

  auto decoded = decode_mutation(*mj, "m");
  if (!decoded) {
    const std::string& code = decoded.error().code;
    FUZZ_CHECK(code == codes::kInvalidRequest || code == codes::kInvalidMutation, "unexpected code " + code);
    FUZZ_CHECK(decoded.error().field.rfind("m", 0) == 0, "error field lacks the prefix: " + decoded.error().field);
    return 0;
  }
  const Mutation& m = *decoded;
  auto again = decode_mutation(encode(m));
  FUZZ_CHECK(again.ok() && *again == m, "mutation changed in a round trip: " + fuzz::dump(encode(m)));
  FUZZ_CHECK(!(m.op == MutationOp::Delete && !m.ops.empty()), "decoded a delete with ops");
  FUZZ_CHECK(!(m.op == MutationOp::Insert && m.condition), "decoded an insert with a condition");
  for (const auto& [name, op] : m.ops) FUZZ_CHECK(!m.fields.contains(name), "decoded a field in fields and ops");

  const Document* cur = current ? &*current : nullptr;
  const bool exists = cur && !cur->deleted;
  const bool version_ok = !m.base_version || (cur && cur->version == *m.base_version);
  const ApplyContext ctx{now};
  auto r = apply_mutation(cur, m, ctx);
  const std::string ctxt = fuzz::dump(input);
  const Json current_fields = exists && cur->fields.is_object() ? cur->fields : Json::object();

  // The condition: checked after base_version, before anything else.
  if (version_ok && m.condition) {
    const bool holds = exists && m.condition->matches(m.id, current_fields);
    if (!holds) {
      FUZZ_CHECK(!r && r.error().code == codes::kConflict && r.error().field == "if",
                 "a condition that does not hold did not reject at if: " + ctxt);
      return 0;
    }
    Mutation plain = m;
    plain.condition.reset();
    auto p = apply_mutation(cur, plain, ctx);
    FUZZ_CHECK(p.ok() == r.ok(), "a condition that holds changed the outcome: " + ctxt);
    if (p.ok()) FUZZ_CHECK(p->fields == r->fields, "a condition that holds changed the result: " + ctxt);
    else FUZZ_CHECK(p.error() == r.error(), "a condition that holds changed the error: " + ctxt);
  }

  // The model of the ops, over the patched fields the op logic would start from.
  std::optional<Json> patched;
  if (version_ok && m.fields.is_object()) {
    if (m.op == MutationOp::Insert && !exists) {
      patched = Json::object();
      apply_patch(*patched, m.fields);
    } else if (m.op == MutationOp::Update && exists) {
      patched = cur->fields;
      apply_patch(*patched, m.fields);
    }
  }
  std::optional<std::pair<std::string, std::string>> op_failure;  // name, code
  Json expected;
  if (patched) {
    expected = *patched;
    for (const auto& [name, op] : m.ops) {
      auto it = expected.find(name);
      OpOutcome o = model_op(op, it == expected.end() ? nullptr : &*it, now);
      if (!o.value) {
        op_failure.emplace(name, o.code);
        break;
      }
      expected[name] = *o.value;
    }
  }

  if (!r) {
    const std::string& code = r.error().code;
    FUZZ_CHECK(code == codes::kConflict || code == codes::kInvalidMutation || code == codes::kConstraint,
               "unexpected code " + code + ": " + ctxt);
    if (version_ok) {
      if (op_failure) {
        FUZZ_CHECK(code == op_failure->second && r.error().field == "ops." + op_failure->first,
                   "an op failed differently than the model (" + op_failure->second + " at ops." + op_failure->first +
                       "): " + r.error().code + " at " + r.error().field + ": " + ctxt);
        return 0;
      }
      switch (m.op) {
        case MutationOp::Insert: FUZZ_CHECK(exists, "insert on an absent document failed: " + ctxt); break;
        case MutationOp::Update: FUZZ_CHECK(!exists, "update of a live document failed: " + ctxt); break;
        case MutationOp::Delete: FUZZ_CHECK(!exists, "delete of a live document failed: " + ctxt); break;
      }
    }
    return 0;
  }
  FUZZ_CHECK(version_ok, "base_version mismatch accepted: " + ctxt);
  FUZZ_CHECK(!op_failure, "an op the model rejects was applied: " + ctxt);
  const auto& out = r->fields;
  if (patched) FUZZ_CHECK(out && *out == expected, "the result differs from the model of patch + ops: " + ctxt);
  switch (m.op) {
    case MutationOp::Insert: {
      FUZZ_CHECK(!exists, "insert over a live document accepted: " + ctxt);
      FUZZ_CHECK(out && out->is_object(), "insert without fields: " + ctxt);
      for (auto it = m.fields.begin(); it != m.fields.end(); ++it) {
        if (it->is_null()) {
          FUZZ_CHECK(!out->contains(it.key()), "insert kept a null field: " + ctxt);
        } else {
          FUZZ_CHECK(out->contains(it.key()) && (*out)[it.key()] == *it, "insert lost a field: " + ctxt);
        }
      }
      FUZZ_CHECK(out->size() <= m.fields.size() + m.ops.size(), "insert invented fields: " + ctxt);
      break;
    }
    case MutationOp::Update: {
      FUZZ_CHECK(exists, "update of an absent document accepted: " + ctxt);
      FUZZ_CHECK(out && out->is_object(), "update without fields: " + ctxt);
      const Json before = cur->fields.is_object() ? cur->fields : Json::object();
      for (auto it = out->begin(); it != out->end(); ++it) {
        if (m.ops.count(it.key())) continue;  // checked against the model above
        auto p = m.fields.find(it.key());
        if (p != m.fields.end()) {
          FUZZ_CHECK(!p->is_null() && *p == *it, "update result differs from the patch: " + ctxt);
        } else {
          FUZZ_CHECK(before.contains(it.key()) && before[it.key()] == *it, "update changed an unpatched key: " + ctxt);
        }
      }
      for (auto it = before.begin(); it != before.end(); ++it) {
        // A null field of the stored document means "absent": the result drops it.
        if (!m.fields.contains(it.key()) && !it->is_null()) FUZZ_CHECK(out->contains(it.key()), "update dropped a key: " + ctxt);
      }
      if (m.ops.empty()) {
        Json twice = *out;
        apply_patch(twice, m.fields);
        FUZZ_CHECK(twice == *out, "the patch is not idempotent: " + ctxt);
      }
      break;
    }
    case MutationOp::Delete:
      FUZZ_CHECK(exists, "delete of an absent document accepted: " + ctxt);
      FUZZ_CHECK(!out, "delete left a document: " + ctxt);
      break;
  }
  if (out) {
    for (auto it = out->begin(); it != out->end(); ++it) {
      FUZZ_CHECK(!it->is_null(), "result holds a null field: " + ctxt);
    }
  }
  return 0;
}
