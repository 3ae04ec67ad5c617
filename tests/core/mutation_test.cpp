// Tests for src/core/mutation: apply_mutation / apply_patch semantics that the fuzz target
// mutation_apply found wanting.
#include "core/mutation.hpp"

#include <gtest/gtest.h>

using namespace syncline;

TEST(Mutation, AnUpdateOfADocumentHoldingANullFieldLeavesNoNull) {
  // Found by fuzz mutation_apply (crashers/mutation_apply/update_keeps_stored_null): a stored
  // document with a null field (not one this code wrote) kept it through an update that did not
  // name it.
  Document current{"bills", "b1", 4, Json::parse(R"({"a":null,"b":{"d":1},"keep":1})"), false};
  Mutation m;
  m.op = MutationOp::Update;
  m.collection = "bills";
  m.id = "b1";
  m.fields = Json::parse(R"({"z":null,"c":2})");
  auto r = apply_mutation(&current, m);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->fields.has_value());
  EXPECT_EQ(*r->fields, Json::parse(R"({"b":{"d":1},"keep":1,"c":2})"));
}

TEST(Mutation, APatchRemovesNamedNullsAndKeepsNestedNulls) {
  Json target = Json::parse(R"({"a":1,"b":{"x":null}})");
  apply_patch(target, Json::parse(R"({"a":null,"c":[null]})"));
  EXPECT_EQ(target, Json::parse(R"({"b":{"x":null},"c":[null]})")) << "only top-level nulls go";
}

// ---------------------------------------------------------------------------------------------
// Field operations and conditions: the one rule the server applies at commit and the
// client replays over its newest base.

namespace {

Document doc(const char* fields_json, std::int64_t version = 7) {
  return Document{"items", "i1", version, Json::parse(fields_json), false};
}

Mutation update(const char* fields_json = "{}") {
  Mutation m;
  m.mid = 1;
  m.op = MutationOp::Update;
  m.collection = "items";
  m.id = "i1";
  m.fields = Json::parse(fields_json);
  return m;
}

FieldOp inc(Json by, std::optional<Json> min = std::nullopt, std::optional<Json> max = std::nullopt) {
  FieldOp op;
  op.kind = FieldOp::Kind::Increment;
  op.by = std::move(by);
  op.min = std::move(min);
  op.max = std::move(max);
  return op;
}

Json field_after(const Document* cur, const Mutation& m, const char* name, ApplyContext ctx = {}) {
  auto r = apply_mutation(cur, m, ctx);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok() || !r->fields) return Json();
  return r->fields->value(name, Json());
}

}  // namespace

TEST(MutationOps, IntegerIncrementStaysAnInteger) {
  Document cur = doc(R"({"stock":10,"name":"x"})");
  Mutation m = update();
  m.ops["stock"] = inc(-3);
  Json v = field_after(&cur, m, "stock");
  EXPECT_TRUE(v.is_number_integer());
  EXPECT_EQ(v, 7);
  auto r = apply_mutation(&cur, m);
  EXPECT_EQ((*r->fields)["name"], "x") << "other fields are kept";
}

TEST(MutationOps, UnsignedBaseAndIncrementAreIntegers) {
  Document cur = doc(R"({"n":5})");  // parsed as uint64
  ASSERT_TRUE(cur.fields["n"].is_number_unsigned());
  Mutation m = update();
  m.ops["n"] = inc(Json(std::uint64_t{2}));
  Json v = field_after(&cur, m, "n");
  EXPECT_TRUE(v.is_number_integer());
  EXPECT_FALSE(v.is_number_float());
  EXPECT_EQ(v, 7);
}

TEST(MutationOps, DoubleOnEitherSideGivesADouble) {
  Document cur = doc(R"({"a":1.5,"b":2})");
  Mutation m = update();
  m.ops["a"] = inc(1);
  m.ops["b"] = inc(0.25);
  auto r = apply_mutation(&cur, m);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r->fields)["a"].is_number_float());
  EXPECT_DOUBLE_EQ((*r->fields)["a"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ((*r->fields)["b"].get<double>(), 2.25);
}

TEST(MutationOps, AnUnsignedAboveInt64IsSummedAsDouble) {
  Document cur = doc(R"({"n":18446744073709551615})");
  Mutation m = update();
  m.ops["n"] = inc(1);
  Json v = field_after(&cur, m, "n");
  EXPECT_TRUE(v.is_number_float());
}

TEST(MutationOps, Int64OverflowIsAConstraint) {
  Document cur = doc(R"({"n":9223372036854775807})");
  Mutation m = update();
  m.ops["n"] = inc(1);
  auto r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kConstraint);
  EXPECT_EQ(r.error().field, "ops.n");
  Document low = doc(R"({"n":-9223372036854775807})");
  m.ops["n"] = inc(-2);
  r = apply_mutation(&low, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kConstraint);
}

TEST(MutationOps, DoubleOverflowIsAConstraint) {
  Document cur = doc(R"({"n":1.7e308})");
  Mutation m = update();
  m.ops["n"] = inc(1.7e308);
  auto r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kConstraint);
}

TEST(MutationOps, BoundsRejectWithConstraintAndNameTheResult) {
  Document cur = doc(R"({"stock":0})");
  Mutation m = update();
  m.ops["stock"] = inc(-1, Json(0));
  auto r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kConstraint);
  EXPECT_EQ(r.error().field, "ops.stock");
  EXPECT_EQ(r.error().message, "stock would be -1, below min 0");

  m.ops["stock"] = inc(11, std::nullopt, Json(10));
  r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "stock would be 11, above max 10");

  // Exactly on a bound is inside; bounds compare numerically across int and double.
  m.ops["stock"] = inc(10, Json(0), Json(10.0));
  EXPECT_EQ(field_after(&cur, m, "stock"), 10);
  m.ops["stock"] = inc(-0.5, Json(-0.5));
  EXPECT_DOUBLE_EQ(field_after(&cur, m, "stock").get<double>(), -0.5);
  m.ops["stock"] = inc(1, Json(1.5));
  EXPECT_FALSE(apply_mutation(&cur, m).ok());
}

TEST(MutationOps, AbsentOrNullFieldCountsAsZero) {
  Document cur = doc(R"({"other":1})");
  Mutation m = update();
  m.ops["n"] = inc(4);
  EXPECT_EQ(field_after(&cur, m, "n"), 4);
  // A patch that removes the field first: the op sees it absent.
  Document has = doc(R"({"n":100})");
  Mutation cleared = update(R"({"x":null})");
  cleared.ops["n"] = inc(1);
  EXPECT_EQ(field_after(&has, cleared, "n"), 101);
  // Nothing below min on an absent field either.
  m.ops["n"] = inc(-1, Json(0));
  auto r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "n would be -1, below min 0");
}

TEST(MutationOps, IncrementOfANonNumberIsAConflict) {
  for (const char* fields : {R"({"n":"5"})", R"({"n":true})", R"({"n":[1]})", R"({"n":{"v":1}})"}) {
    Document cur = doc(fields);
    Mutation m = update();
    m.ops["n"] = inc(1);
    auto r = apply_mutation(&cur, m);
    ASSERT_FALSE(r.ok()) << fields;
    EXPECT_EQ(r.error().code, codes::kConflict) << fields;
    EXPECT_EQ(r.error().field, "ops.n") << fields;
  }
}

TEST(MutationOps, OpsRunAfterThePatchInKeyOrder) {
  Document cur = doc(R"({"a":1})");
  Mutation m = update(R"({"b":5})");
  m.ops["a"] = inc(1);
  m.ops["c"] = inc(2);
  auto r = apply_mutation(&cur, m);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->fields, Json::parse(R"({"a":2,"b":5,"c":2})"));
  // The first failing op (in key order) names itself.
  m.ops["a"] = inc(-5, Json(0));
  m.ops["c"] = inc(-5, Json(0));
  r = apply_mutation(&cur, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "ops.a");
}

TEST(MutationOps, ServerTimeTakesTheContextClock) {
  Document cur = doc(R"({"status":"unpaid"})");
  Mutation m = update(R"({"status":"paid"})");
  FieldOp st;
  st.kind = FieldOp::Kind::ServerTime;
  m.ops["paid_at"] = st;
  Json v = field_after(&cur, m, "paid_at", ApplyContext{1'700'000'000'123});
  EXPECT_TRUE(v.is_number_integer());
  EXPECT_EQ(v.get<std::int64_t>(), 1'700'000'000'123);
}

TEST(MutationOps, InsertWithOps) {
  Mutation m;
  m.mid = 1;
  m.op = MutationOp::Insert;
  m.collection = "items";
  m.id = "i9";
  m.fields = Json::parse(R"({"name":"new"})");
  m.ops["count"] = inc(3, Json(0));
  FieldOp st;
  st.kind = FieldOp::Kind::ServerTime;
  m.ops["created_at"] = st;
  auto r = apply_mutation(nullptr, m, ApplyContext{42});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->fields, Json::parse(R"({"name":"new","count":3,"created_at":42})"));
  m.ops["count"] = inc(-3, Json(0));
  m.ops["count"].by = -1;
  EXPECT_EQ(apply_mutation(nullptr, m).error().code, codes::kConstraint);
}

TEST(MutationOps, ShapesTheDecoderRefusesAreRefusedHereToo) {
  Document cur = doc(R"({"n":1})");
  Mutation both = update(R"({"n":5})");
  both.ops["n"] = inc(1);
  EXPECT_EQ(apply_mutation(&cur, both).error().code, codes::kInvalidMutation);
  Mutation del = update();
  del.op = MutationOp::Delete;
  del.ops["n"] = inc(1);
  EXPECT_EQ(apply_mutation(&cur, del).error().code, codes::kInvalidMutation);
  Mutation ins = update();
  ins.op = MutationOp::Insert;
  ins.condition = *Filter::parse("n=eq.1");
  EXPECT_EQ(apply_mutation(nullptr, ins).error().code, codes::kInvalidMutation);
}

TEST(MutationCondition, PassesAndFails) {
  Document cur = doc(R"({"status":"unpaid","total":10})");
  Mutation m = update(R"({"status":"paid"})");
  m.condition = *Filter::parse("status=eq.unpaid,total=gte.10");
  EXPECT_EQ(field_after(&cur, m, "status"), "paid");

  Document paid = doc(R"({"status":"paid","total":10})");
  auto r = apply_mutation(&paid, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, codes::kConflict);
  EXPECT_EQ(r.error().field, "if");
  EXPECT_EQ(r.error().message, "condition status=eq.unpaid,total=gte.10 does not hold");

  // The special field id is the document's id.
  m.condition = *Filter::parse("id=eq.i1");
  EXPECT_TRUE(apply_mutation(&cur, m).ok());
  m.condition = *Filter::parse("id=eq.other");
  EXPECT_FALSE(apply_mutation(&cur, m).ok());
}

TEST(MutationCondition, AnAbsentDocumentNeverMatches) {
  Mutation m = update();
  m.condition = *Filter::parse("status=is.null");  // would match an empty document
  for (bool tombstone : {false, true}) {
    Document gone = doc("{}");
    gone.deleted = true;
    auto r = apply_mutation(tombstone ? &gone : nullptr, m);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, codes::kConflict);
    EXPECT_EQ(r.error().field, "if");
  }
  Mutation del = m;
  del.op = MutationOp::Delete;
  EXPECT_EQ(apply_mutation(nullptr, del).error().field, "if");
}

TEST(MutationCondition, ConditionOnDeleteAndOrderAfterBaseVersion) {
  Document cur = doc(R"({"status":"cancelled"})", 9);
  Mutation del = update();
  del.op = MutationOp::Delete;
  del.condition = *Filter::parse("status=eq.cancelled");
  auto r = apply_mutation(&cur, del);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->fields.has_value());
  // base_version is checked first.
  del.base_version = 8;
  del.condition = *Filter::parse("status=eq.open");
  EXPECT_EQ(apply_mutation(&cur, del).error().field, "base_version");
  // The condition sees the document before the mutation's own patch.
  Mutation m = update(R"({"status":"open"})");
  m.condition = *Filter::parse("status=eq.open");
  EXPECT_EQ(apply_mutation(&cur, m).error().field, "if");
}
