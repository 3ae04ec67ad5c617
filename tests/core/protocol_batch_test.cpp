// Layer: tests/core. decode_server_batch (the browser engine's receive path) against the DOM
// path it replaces: parse_json_nothrow of the whole batch, then decode_server_frame per
// element. Same batch-level error, same per-frame messages and errors (code, message, field).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/protocol.hpp"
#include "core/random.hpp"
#include "json_strict.hpp"

namespace syncline {
namespace {

using Batch = Result<std::vector<Result<ServerMessage>>>;

Batch reference(const std::string& text) {
  const Json j = parse_json_nothrow(text);
  if (j.is_discarded() || !j.is_array()) return make_error(codes::kInvalidJson, "message batch must be a JSON array");
  std::vector<Result<ServerMessage>> out;
  for (const Json& frame : j) out.push_back(decode_server_frame(frame));
  return out;
}

void expect_same(const std::string& text) {
  const Batch want = reference(text);
  const Batch got = decode_server_batch(text);
  ASSERT_EQ(got.ok(), want.ok()) << text;
  if (!want.ok()) {
    EXPECT_EQ(got.error(), want.error()) << text;
    return;
  }
  ASSERT_EQ(got->size(), want->size()) << text;
  for (std::size_t i = 0; i < want->size(); ++i) {
    const auto& g = (*got)[i];
    const auto& w = (*want)[i];
    ASSERT_EQ(g.ok(), w.ok()) << "frame " << i << " of " << text;
    if (!w.ok()) {
      EXPECT_EQ(g.error(), w.error()) << "frame " << i << " of " << text;
      continue;
    }
    EXPECT_EQ(*g, *w) << "frame " << i << " of " << text;
    if (const auto* c = std::get_if<ChangeMsg>(&*w)) {
      EXPECT_TRUE(test::strictly_equal(std::get<ChangeMsg>(*g).fields, c->fields)) << text;
    }
  }
}

const std::vector<std::string> kFrames = {
    R"({"type":"change","seq":5,"collection":"bills","id":"b1","op":"insert","version":5,"fields":{"total":1.5,"n":3,"neg":-3,"s":"x"},"origin":null})",
    R"({"type":"change","seq":6,"collection":"bills","id":"b1","op":"update","fields":{"status":"paid"},"origin":{"client":"c-1","mid":2}})",
    R"({"type":"change","seq":7,"collection":"bills","id":"b1","op":"delete"})",
    R"({"type":"change","seq":7,"collection":"bills","id":"b1","op":"delete","fields":{"ignored":1}})",
    R"({"type":"hello","seq":0})",
    R"({"type":"reset","reason":"cursor_expired","seq":9})",
    R"({"type":"event","seq":3,"name":"order:stage_change","collection":"orders","id":"o1","data":{"stage":2}})",
    R"({"type":"event","seq":3,"name":"ping"})",
    R"({"type":"results","seq":4,"results":[{"mid":1,"status":"applied","seq":4},{"mid":2,"status":"rejected","code":"conflict","message":"m"},{"mid":3,"status":"duplicate","seq":2}]})",
    R"({"type":"error","error":{"code":"forbidden","message":"no","field":"x"}})",
    R"({"type":"results","seq":4,"results":[{"mid":5,"status":"rejected","code":"constraint","message":"m","failed_mid":5},{"mid":6,"status":"rejected","code":"conflict","message":"m","failed_mid":5,"current":{"version":3,"fields":{"a":1}}},{"mid":7,"status":"rejected","code":"conflict","current":null}]})",
    R"({"type":"results","seq":4,"results":[{"mid":5,"status":"rejected","code":"conflict","current":{"version":"3","fields":{}}}]})",
    R"({"type":"results","seq":4,"results":[{"mid":5,"status":"rejected","code":"conflict","failed_mid":1.5}]})",
    // Errors, one per rule.
    R"({"type":"change","collection":"bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":-1,"collection":"bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":1.0,"collection":"bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":18446744073709551615,"collection":"bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":1,"collection":"Bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":1,"collection":"bills","id":"a b","op":"insert","fields":{}})",
    R"({"type":"change","seq":1,"collection":"bills","id":"b","op":"upsert","fields":{}})",
    R"({"type":"change","seq":1,"collection":"bills","id":"b","op":"update","fields":[1]})",
    R"({"type":"change","seq":1,"collection":"bills","id":"b","op":"update"})",
    R"({"type":"change","seq":1,"collection":"bills","id":"b","op":"update","fields":{},"origin":"me"})",
    R"({"type":"change","seq":1,"collection":"bills","id":"b","op":"update","fields":{},"origin":{"client":"c","mid":0}})",
    R"({"type":"change","seq":1,"version":-2,"collection":"bills","id":"b","op":"insert","fields":{}})",
    R"({"type":"change","seq":null,"collection":null,"id":"b","op":"insert","fields":{}})",
    R"({"type":"bogus","seq":1})",
    R"({"seq":1})",
    R"({"type":7})",
    R"({"type":null})",
    R"({"type":"event","seq":1,"name":""})",
    R"({"type":"event","seq":1,"name":"n","data":5})",
    R"({"type":"results","seq":1,"results":{}})",
    R"({"type":"results","seq":1,"results":[{"mid":1,"status":"ok"}]})",
    R"({"type":"error","error":"boom"})",
    R"({"type":"error","error":{"message":"m"}})",
    R"({"type":"hello","seq":1,"type":"reset","reason":"r"})",
    R"({"type":"change","seq":1,"seq":2,"collection":"bills","id":"b","op":"insert","fields":{"a":1},"fields":{"b":2}})",
    R"({"type":"hello","seq":1,"extra":{"deep":[[[{"x":"\u00e9"}]]]},"more":[1,2,3]})",
    R"(42)",
    R"("change")",
    R"([{"type":"hello","seq":1}])",
    R"(null)",
};

TEST(ProtocolBatch, EachFrameAloneAndAllTogether) {
  std::string all = "[";
  for (const std::string& f : kFrames) {
    expect_same("[" + f + "]");
    if (all.size() > 1) all += ",";
    all += f;
  }
  expect_same(all + "]");
}

TEST(ProtocolBatch, BatchLevelErrors) {
  for (const char* t : {"", "[", "]", "{}", "{\"type\":\"hello\",\"seq\":1}", "[{\"type\":\"hello\",\"seq\":1}",
                        "[{\"type\":\"hello\",\"seq\":1},]", "[{\"type\":\"hello\",\"seq\":1}] x", "[{\"type\":}]",
                        "[{\"type\":\"hello\",\"seq\":1},{not json}]", "[1,2", "null", "\"[]\"", "[]", " [ ] ",
                        "\xef\xbb\xbf[]"}) {
    expect_same(t);
  }
  const Batch bad = decode_server_batch("[{\"type\":\"hello\",\"seq\":1},{");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, codes::kInvalidJson);
}

TEST(ProtocolBatch, RandomEditsAgreeWithDomPath) {
  Rng rng(7);
  const std::vector<std::string> tokens = {"{", "}", "[", "]", ",", ":", "\"", "null", "1", "-1", "1.5", "\"x\"",
                                           "\"type\"", "\"seq\"", "\"fields\"", "\"origin\"", "\"change\"", " "};
  for (int iter = 0; iter < 5000; ++iter) {
    std::string text = "[";
    const int n = 1 + static_cast<int>(rng.below(3));
    for (int i = 0; i < n; ++i) {
      if (i) text += ",";
      text += kFrames[rng.below(kFrames.size())];
    }
    text += "]";
    const std::size_t pos = rng.below(text.size() + 1);
    if (rng.below(2)) {
      text.insert(pos, tokens[rng.below(tokens.size())]);
    } else if (pos < text.size()) {
      text.erase(pos, 1 + rng.below(4));
    }
    expect_same(text);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace syncline
