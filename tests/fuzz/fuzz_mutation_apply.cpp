// Layer: tests/fuzz. Target "mutation_apply": decoding one mutation and applying it to a document
// (src/core/mutation, decode_mutation of src/core/protocol).
//
// Input: a JSON text, either a mutation object or [mutation, current] where current is null
// (absent) or {"version": n, "fields": {...}, "deleted": bool} (any member may be missing or of
// the wrong type: the harness turns whatever is there into a Document).
// Invariants:
//   - decode_mutation never crashes; decode(encode(m)) == m;
//   - apply_mutation never crashes and only fails with "conflict" or "invalid_mutation";
//   - base_version: a mismatch is always a conflict;
//   - insert succeeds exactly on an absent/tombstoned document and yields fields minus nulls;
//   - update succeeds exactly on a live document: patched keys take the patch value, null keys
//     are removed, every other key is unchanged, and nothing else appears;
//   - delete succeeds exactly on a live document and leaves it absent;
//   - the result never contains a top-level null and applying the same patch again is a no-op.
#include "core/mutation.hpp"
#include "core/protocol.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

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
  if (input.is_array() && !input.empty()) {
    mj = &input[0];
    if (input.size() > 1 && !input[1].is_null()) current = doc_from(input[1]);
  }

  auto decoded = decode_mutation(*mj, "m");
  if (!decoded) {
    FUZZ_CHECK(decoded.error().code == codes::kInvalidRequest, "unexpected code " + decoded.error().code);
    FUZZ_CHECK(decoded.error().field.rfind("m", 0) == 0, "error field lacks the prefix: " + decoded.error().field);
    return 0;
  }
  const Mutation& m = *decoded;
  auto again = decode_mutation(encode(m));
  FUZZ_CHECK(again.ok() && *again == m, "mutation changed in a round trip: " + fuzz::dump(encode(m)));

  const Document* cur = current ? &*current : nullptr;
  const bool exists = cur && !cur->deleted;
  const bool version_ok = !m.base_version || (cur && cur->version == *m.base_version);
  auto r = apply_mutation(cur, m);
  const std::string ctx = fuzz::dump(input);
  if (!r) {
    const std::string& code = r.error().code;
    FUZZ_CHECK(code == codes::kConflict || code == codes::kInvalidMutation, "unexpected code " + code + ": " + ctx);
    if (version_ok) {
      switch (m.op) {
        case MutationOp::Insert: FUZZ_CHECK(exists, "insert on an absent document failed: " + ctx); break;
        case MutationOp::Update: FUZZ_CHECK(!exists, "update of a live document failed: " + ctx); break;
        case MutationOp::Delete: FUZZ_CHECK(!exists, "delete of a live document failed: " + ctx); break;
      }
    }
    return 0;
  }
  FUZZ_CHECK(version_ok, "base_version mismatch accepted: " + ctx);
  const auto& out = r->fields;
  switch (m.op) {
    case MutationOp::Insert: {
      FUZZ_CHECK(!exists, "insert over a live document accepted: " + ctx);
      FUZZ_CHECK(out && out->is_object(), "insert without fields: " + ctx);
      for (auto it = m.fields.begin(); it != m.fields.end(); ++it) {
        if (it->is_null()) {
          FUZZ_CHECK(!out->contains(it.key()), "insert kept a null field: " + ctx);
        } else {
          FUZZ_CHECK(out->contains(it.key()) && (*out)[it.key()] == *it, "insert lost a field: " + ctx);
        }
      }
      FUZZ_CHECK(out->size() <= m.fields.size(), "insert invented fields: " + ctx);
      break;
    }
    case MutationOp::Update: {
      FUZZ_CHECK(exists, "update of an absent document accepted: " + ctx);
      FUZZ_CHECK(out && out->is_object(), "update without fields: " + ctx);
      const Json before = cur->fields.is_object() ? cur->fields : Json::object();
      for (auto it = out->begin(); it != out->end(); ++it) {
        auto p = m.fields.find(it.key());
        if (p != m.fields.end()) {
          FUZZ_CHECK(!p->is_null() && *p == *it, "update result differs from the patch: " + ctx);
        } else {
          FUZZ_CHECK(before.contains(it.key()) && before[it.key()] == *it, "update changed an unpatched key: " + ctx);
        }
      }
      for (auto it = before.begin(); it != before.end(); ++it) {
        // A null field of the stored document means "absent": the result drops it.
        if (!m.fields.contains(it.key()) && !it->is_null()) FUZZ_CHECK(out->contains(it.key()), "update dropped a key: " + ctx);
      }
      Json twice = *out;
      apply_patch(twice, m.fields);
      FUZZ_CHECK(twice == *out, "the patch is not idempotent: " + ctx);
      break;
    }
    case MutationOp::Delete:
      FUZZ_CHECK(exists, "delete of an absent document accepted: " + ctx);
      FUZZ_CHECK(!out, "delete left a document: " + ctx);
      break;
  }
  if (out) {
    for (auto it = out->begin(); it != out->end(); ++it) {
      FUZZ_CHECK(!it->is_null(), "result holds a null field: " + ctx);
    }
  }
  return 0;
}
