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
