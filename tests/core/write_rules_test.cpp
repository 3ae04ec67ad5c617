// The server's write rules (core/write_rules.hpp) on the in-memory store: the same rules the
// SQLite and PostgreSQL stores run.
#include <gtest/gtest.h>

#include "core/filter.hpp"
#include "core/memory_write_store.hpp"
#include "core/write_rules.hpp"

namespace syncline {
namespace {

const std::vector<std::vector<std::string>> kSkuUnique{{"sku"}};

struct Rig {
  testing::MemoryWriteStore store;
  WriteRules rules{[](const std::string& c) { return c == "products" ? &kSkuUnique : nullptr; }, 3};
  std::int64_t head = 0;

  Result<BatchResult> apply(const std::vector<Mutation>& ms, const std::string& client = "c1",
                            const std::string& subject = "alice", const WriteCheck& check = nullptr,
                            const ReadCheck& readable = nullptr) {
    store.begin_scope();
    std::int64_t h = head;
    auto r = rules.apply_batch(store, h, client, subject, ms, check, readable, 1000);
    if (r) {
      store.release_scope();
      head = h;
    } else {
      store.rollback_scope();
    }
    return r;
  }
};

Mutation insert(std::int64_t mid, std::string collection, std::string id, Json fields) {
  Mutation m;
  m.mid = mid;
  m.op = MutationOp::Insert;
  m.collection = std::move(collection);
  m.id = std::move(id);
  m.fields = std::move(fields);
  return m;
}

Mutation increment(std::int64_t mid, std::string id, std::int64_t by, std::optional<std::int64_t> min = std::nullopt) {
  Mutation m;
  m.mid = mid;
  m.op = MutationOp::Update;
  m.collection = "stock";
  m.id = std::move(id);
  FieldOp op;
  op.by = by;
  if (min) op.min = Json(*min);
  m.ops["qty"] = op;
  return m;
}

Mutation grouped(Mutation m, std::int64_t group, std::int64_t size) {
  m.group = group;
  m.group_size = size;
  return m;
}

TEST(WriteRules, AppliesInSeqOrderAndAnswersAResentMidAsDuplicateOfItsOutcome) {
  Rig rig;
  auto r = rig.apply({insert(1, "stock", "a", {{"qty", 5}}), insert(2, "stock", "b", {{"qty", 1}})});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->results.results.size(), 2u);
  EXPECT_EQ(r->results.results[0].seq, 1);
  EXPECT_EQ(r->results.results[1].seq, 2);
  EXPECT_EQ(r->results.seq, 2);
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[1].origin->mid, 2);

  auto again = rig.apply({insert(2, "stock", "b", {{"qty", 1}}), increment(3, "a", -1)});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->results.results[0].status, ResultStatus::Duplicate);
  EXPECT_EQ(again->results.results[0].seq, 2) << "the duplicate names the seq it produced";
  EXPECT_EQ(again->results.results[1].status, ResultStatus::Applied);
  EXPECT_EQ(rig.store.log().size(), 3u) << "the resend wrote nothing";
}

TEST(WriteRules, AClientIdBelongsToTheSubjectThatUsedItFirst) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "stock", "a", {{"qty", 1}})}, "c1", "alice"));
  auto r = rig.apply({insert(2, "stock", "b", {{"qty", 1}})}, "c1", "mallory");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "forbidden");
  EXPECT_EQ(rig.store.log().size(), 1u);
}

TEST(WriteRules, AGroupAppliesWholeOrNotAtAllAndGivesItsSeqsBack) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "stock", "a", {{"qty", 1}}), insert(2, "stock", "b", {{"qty", 0}})}));
  // A transfer of 2 from a (which holds 1) to b: the second member breaks min 0.
  auto r = rig.apply({grouped(increment(3, "b", 2), 3, 2), grouped(increment(4, "a", -2, 0), 3, 2),
                      increment(5, "b", 1)});
  ASSERT_TRUE(r);
  const auto& res = r->results.results;
  ASSERT_EQ(res.size(), 3u);
  EXPECT_EQ(res[0].status, ResultStatus::Rejected);
  EXPECT_EQ(res[0].failed_mid, 4);
  EXPECT_EQ(res[0].code, "constraint");
  EXPECT_EQ(res[1].failed_mid, 4);
  EXPECT_EQ(res[2].status, ResultStatus::Applied);
  EXPECT_EQ(res[2].seq, 3) << "the failed group's seqs were given back";
  auto b = rig.store.document("stock", "b");
  EXPECT_EQ((**b).fields["qty"], 1) << "only the lone increment applied";
  // The group's outcome is kept: resent, every member is a duplicate of the rejection.
  auto again = rig.apply({grouped(increment(3, "b", 2), 3, 2), grouped(increment(4, "a", -2, 0), 3, 2)});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->results.results[0].status, ResultStatus::Duplicate);
  EXPECT_EQ(again->results.results[0].code, "constraint");
}

TEST(WriteRules, UniqueKeysCollideAcrossDocumentsAndAreFreedByDelete) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "products", "p1", {{"sku", "X"}})}));
  auto dup = rig.apply({insert(2, "products", "p2", {{"sku", "X"}}), insert(3, "products", "p3", {{"name", "no sku"}})});
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->results.results[0].code, "constraint");
  EXPECT_EQ(dup->results.results[1].status, ResultStatus::Applied) << "a missing field never collides";
  Mutation del;
  del.mid = 4;
  del.op = MutationOp::Delete;
  del.collection = "products";
  del.id = "p1";
  ASSERT_TRUE(rig.apply({del, insert(5, "products", "p2", {{"sku", "X"}})}));
  EXPECT_TRUE(*rig.store.document("products", "p2"));
}

TEST(WriteRules, AConflictCarriesTheDocumentOnlyToAWriterWhoMayReadIt) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "stock", "a", {{"qty", 1}, {"owner", "bob"}})}));
  Mutation m = increment(2, "a", 1);
  m.condition = *Filter::parse("qty=eq.7");
  auto hidden = rig.apply({m}, "c1", "alice", nullptr, [](const Mutation&, const Document&) { return false; });
  ASSERT_TRUE(hidden);
  EXPECT_EQ(hidden->results.results[0].code, "conflict");
  EXPECT_FALSE(hidden->results.results[0].current.has_value());
  m.mid = 3;
  auto shown = rig.apply({m}, "c1", "alice", nullptr, [](const Mutation&, const Document&) { return true; });
  ASSERT_TRUE(shown);
  ASSERT_TRUE(shown->results.results[0].current.has_value());
  EXPECT_EQ((*shown->results.results[0].current)["fields"]["qty"], 1);
}

TEST(WriteRules, TheWriteCheckRunsBeforeTheChangeSoARefusedWriterLearnsNothing) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "stock", "a", {{"qty", 1}})}));
  int calls = 0;
  WriteCheck deny_before = [&](const Mutation&, const Document* before, const Json* after) -> std::optional<Error> {
    ++calls;
    if (before && !after) return make_error(codes::kForbidden, "not yours");
    return std::nullopt;
  };
  Mutation m = increment(2, "a", 1);
  m.base_version = 99;  // would be a conflict, but the check refuses first
  auto r = rig.apply({m}, "c1", "alice", deny_before);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->results.results[0].code, "forbidden");
  EXPECT_EQ(calls, 1);
}

TEST(WriteRules, OnlyTheNewestOutcomesAreKept) {
  Rig rig;  // retention 3
  for (std::int64_t mid = 1; mid <= 5; ++mid) ASSERT_TRUE(rig.apply({insert(mid, "stock", "d" + std::to_string(mid), {{"qty", 1}})}));
  EXPECT_FALSE(*rig.store.outcome("c1", 2));
  EXPECT_TRUE(*rig.store.outcome("c1", 3));
  auto old = rig.apply({insert(1, "stock", "d1", {{"qty", 1}})});
  ASSERT_TRUE(old);
  EXPECT_EQ(old->results.results[0].status, ResultStatus::Duplicate) << "still answered, without its seq";
  EXPECT_EQ(old->results.results[0].seq, 0);
}

TEST(WriteRules, AnEventIsCheckedAgainstItsDocumentAndTakesTheNextSeq) {
  Rig rig;
  ASSERT_TRUE(rig.apply({insert(1, "stock", "a", {{"qty", 1}})}));
  PublishRequest req{"restocked", "stock", "a", Json{{"by", 3}}};
  std::optional<Document> seen;
  auto row = rig.rules.publish(rig.store, rig.head, req, [&](const std::optional<Document>& d) -> std::optional<Error> {
    seen = d;
    return std::nullopt;
  }, 1000);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->seq, 2);
  EXPECT_EQ(rig.head, 2);
  ASSERT_TRUE(seen);
  EXPECT_EQ(row->visibility["qty"], 1);
  auto refused = rig.rules.publish(rig.store, rig.head, req, [](const std::optional<Document>&) -> std::optional<Error> {
    return make_error(codes::kForbidden, "no");
  }, 1000);
  EXPECT_FALSE(refused);
  EXPECT_EQ(rig.head, 2) << "a refused event takes no seq";
}

}  // namespace
}  // namespace syncline
