// Layer: tests/core. The base replica stored as one image plus the documents changed since:
// a restore from image + deltas holds what the engine held, deltas win, an erased marker
// removes, and a damaged image is an invalid_snapshot error naming the document.
#include "core/base_image.hpp"

#include <gtest/gtest.h>

#include "core/change_helpers.hpp"
#include "core/engine.hpp"
#include "core/event_history.hpp"

namespace syncline {
namespace {

using testing::change;

EngineOptions opts() {
  EngineOptions o;
  o.client_id = "c1";
  o.collections = {"bills"};
  return o;
}

Json state_with(std::int64_t cursor, Json docs) {
  return Json{{"v", 1},
              {"client", "c1"},
              {"cursor", cursor},
              {"docs", std::move(docs)},
              {"outbox", Json{{"nextMid", 1}, {"entries", Json::array()}}},
              {"history", EventHistory(10).to_json()},
              {"subscription", Json{{"collections", {"bills"}}, {"where", nullptr}}}};
}

TEST(BaseImage, EncodesEveryStoredDocumentAndDecodesToTheSame) {
  Engine e(opts());
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"total", 10}, {"note", "caf\u00e9 \"x\""}}), 0);
  e.receive(change(2, "bills", "b2", ChangeOp::Insert, {{"total", 20}}), 0);
  e.receive(change(3, "bills", "b2", ChangeOp::Delete, Json::object()), 0);
  const std::string image = encode_base_image(e.base());
  auto docs = decode_base_image(image, 64);
  ASSERT_TRUE(docs.ok()) << docs.error().message;
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0], *e.base().find("bills", "b1"));
  EXPECT_EQ(Json::parse(image).at(0), document_to_json((*docs)[0])) << "the form document_to_json writes";
  EXPECT_TRUE((*docs)[1].deleted) << "tombstones are part of the image";
  EXPECT_EQ((*docs)[1].version, 3);

  auto restored = Engine::restore_json(state_with(3, Json::array()), opts(), image);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_TRUE((*restored)->base() == e.base());
  EXPECT_FALSE((*restored)->needs_snapshot());
}

TEST(BaseImage, DocumentsStoredApartWinAndAnErasedMarkerRemoves) {
  Engine e(opts());
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"total", 10}}), 0);
  e.receive(change(2, "bills", "b2", ChangeOp::Insert, {{"total", 20}}), 0);
  const std::string image = encode_base_image(e.base());
  const Json deltas = Json::parse(R"([
    {"collection":"bills","id":"b1","version":5,"fields":{"total":11}},
    {"collection":"bills","id":"b2","erased":true},
    {"collection":"bills","id":"b3","version":6,"fields":{"total":30}}])");
  auto r = Engine::restore_json(state_with(6, deltas), opts(), image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Engine& got = **r;
  ASSERT_NE(got.get("bills", "b1"), nullptr);
  EXPECT_EQ(got.get("bills", "b1")->fields, (Json{{"total", 11}}));
  EXPECT_EQ(got.get("bills", "b1")->version, 5);
  EXPECT_EQ(got.base().find("bills", "b2"), nullptr) << "erased, not a tombstone";
  ASSERT_NE(got.get("bills", "b3"), nullptr);
  EXPECT_EQ(got.base().size(), 2u);
}

TEST(BaseImage, ARestoreUnderAnotherSubscriptionDropsWhatTheImageHoldsOutsideIt) {
  EngineOptions wide = opts();
  wide.collections = {"bills", "orders"};
  Engine e(wide);
  e.receive(change(1, "bills", "b1", ChangeOp::Insert, {{"total", 10}}), 0);
  e.receive(change(2, "orders", "o1", ChangeOp::Insert, {{"n", 1}}), 0);
  Json state = state_with(2, Json::array());
  state["subscription"] = Json{{"collections", {"bills", "orders"}}, {"where", nullptr}};
  auto r = Engine::restore_json(state, opts(), encode_base_image(e.base()));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE((*r)->get("bills", "b1"), nullptr);
  EXPECT_EQ((*r)->base().find("orders", "o1"), nullptr);
  EXPECT_TRUE((*r)->needs_snapshot());
  auto out = (*r)->take_output();
  EXPECT_TRUE(out.dirty_docs.count(DocKey{"orders", "o1"})) << "storage drops it too";
}

TEST(BaseImage, ADamagedImageIsAnErrorNamingTheDocument) {
  const auto expect_invalid = [](const std::string& image, const std::string& field) {
    auto r = Engine::restore_json(state_with(0, Json::array()), opts(), image);
    ASSERT_FALSE(r.ok()) << "accepted " << image;
    EXPECT_EQ(r.error().code, "invalid_snapshot");
    EXPECT_EQ(r.error().field, field) << image << ": " << r.error().message;
  };
  expect_invalid(R"({"collection":"bills"})", "image");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":1,"fields":{}},)", "image[1]");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":1,"fields":{"a":1}}] x)", "image");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":"1","fields":{}}])", "image[0].version");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":1,"fields":[]}])", "image[0].fields");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":1}])", "image[0]");
  expect_invalid(R"([{"collection":"bills","id":"b1","version":1,"fields":{},"deleted":1}])", "image[0].deleted");
  expect_invalid(R"([7])", "image[0]");
  expect_invalid(R"([{"collection":"bills","id":7,"version":1,"fields":{}}])", "image[0].id");
  std::string deep = R"([{"collection":"bills","id":"b1","version":1,"fields":)";
  for (int i = 0; i < 200; ++i) deep += R"({"a":)";
  deep += "1";
  for (int i = 0; i < 200; ++i) deep += "}";
  deep += "}]";
  expect_invalid(deep, "image[0].fields");
}

}  // namespace
}  // namespace syncline
