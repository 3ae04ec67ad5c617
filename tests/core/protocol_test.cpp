// Layer: tests/core. Wire protocol v1 codec: round trips, precise errors, and a fuzz-ish loop
// that only checks decoding never crashes and always answers ok or a coded error.
#include "core/protocol.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/random.hpp"

namespace syncline {
namespace {

ChangeMsg sample_change() {
  ChangeMsg c;
  c.seq = 124;
  c.collection = "bills";
  c.id = "01HZX-bill.1";
  c.op = ChangeOp::Update;
  c.version = 124;
  c.fields = Json{{"status", "paid"}, {"amount", 42}, {"items", Json::array({1, 2})}};
  c.origin = Origin{"client-a", 17};
  return c;
}

MutationBatch sample_batch() {
  MutationBatch b;
  b.client = "client-a";
  Mutation ins;
  ins.mid = 17;
  ins.op = MutationOp::Insert;
  ins.collection = "bills";
  ins.id = "b1";
  ins.fields = Json{{"amount", 10}};
  Mutation upd;
  upd.mid = 18;
  upd.op = MutationOp::Update;
  upd.collection = "bills";
  upd.id = "b1";
  upd.fields = Json{{"status", "paid"}, {"note", nullptr}};
  upd.base_version = 123;
  Mutation del;
  del.mid = 19;
  del.op = MutationOp::Delete;
  del.collection = "bills";
  del.id = "b2";
  b.mutations = {ins, upd, del};
  return b;
}

MutationResults sample_results() {
  MutationResults r;
  r.seq = 130;
  r.results.push_back({17, ResultStatus::Applied, 124, "", ""});
  r.results.push_back({18, ResultStatus::Rejected, 0, "conflict", "base_version mismatch"});
  r.results.push_back({19, ResultStatus::Duplicate, 120, "", ""});
  r.results.push_back({20, ResultStatus::Duplicate, 0, "constraint", "slot taken"});
  return r;
}

EventMsg sample_event() {
  EventMsg e;
  e.seq = 7;
  e.name = "order:stage_change";
  e.collection = "orders";
  e.id = "o-1";
  e.data = Json{{"stage", "cooking"}};
  return e;
}

PublishRequest sample_publish() {
  PublishRequest p;
  p.name = "order:stage_change";
  p.collection = "orders";
  p.id = "o-1";
  p.data = Json{{"stage", "ready"}};
  return p;
}

// A group of two (an increment bounded at 0 and a serverTime insert) and a conditional update.
MutationBatch atomic_batch() {
  MutationBatch b;
  b.client = "client-a";
  Mutation sale;
  sale.mid = 40;
  sale.op = MutationOp::Update;
  sale.collection = "products";
  sale.id = "p1";
  sale.fields = Json{{"note", "sold"}};
  FieldOp dec;
  dec.by = -1;
  dec.min = 0;
  sale.ops["stock"] = dec;
  sale.group = 40;
  sale.group_size = 2;
  Mutation move;
  move.mid = 41;
  move.op = MutationOp::Insert;
  move.collection = "stock_moves";
  move.id = "m1";
  move.fields = Json{{"product", "p1"}};
  FieldOp at;
  at.kind = FieldOp::Kind::ServerTime;
  move.ops["at"] = at;
  FieldOp dbl;
  dbl.by = 0.5;
  dbl.min = -1.5;
  dbl.max = 10;
  move.ops["weight"] = dbl;
  move.group = 40;
  move.group_size = 2;
  Mutation pay;
  pay.mid = 42;
  pay.op = MutationOp::Update;
  pay.collection = "bills";
  pay.id = "b1";
  pay.fields = Json{{"status", "paid"}};
  pay.condition = *Filter::parse("status=eq.unpaid");
  b.mutations = {sale, move, pay};
  return b;
}

MutationResults atomic_results() {
  MutationResults r;
  r.seq = 131;
  MutationResult failed{40, ResultStatus::Rejected, 0, "constraint", "stock would be -1, below min 0"};
  failed.failed_mid = 40;
  MutationResult other{41, ResultStatus::Rejected, 0, "constraint", "stock would be -1, below min 0"};
  other.failed_mid = 40;
  MutationResult cond{42, ResultStatus::Rejected, 0, "conflict", "condition status=eq.unpaid does not hold"};
  cond.current = Json{{"version", 120}, {"fields", {{"status", "paid"}}}};
  MutationResult gone{43, ResultStatus::Rejected, 0, "conflict", "condition status=eq.unpaid does not hold"};
  gone.current = Json(nullptr);
  r.results = {failed, other, cond, gone};
  return r;
}

std::vector<ServerMessage> all_server_messages() {
  ChangeMsg del;
  del.seq = 200;
  del.collection = "bills";
  del.id = "b2";
  del.op = ChangeOp::Delete;
  del.version = 200;
  EventMsg bare;
  bare.seq = 8;
  bare.name = "ping";
  return {HelloMsg{42},
          sample_change(),
          del,
          sample_event(),
          bare,
          ResetMsg{"cursor_expired", 900},
          sample_results(),
          atomic_results(),
          ErrorMsg{make_error("forbidden", "no access", "mutations[3].id")},
          ErrorMsg{make_error("rate_limited", "slow down")}};
}

void expect_error(const Error& e, const std::string& code, const std::string& field) {
  EXPECT_EQ(e.code, code) << e.message;
  EXPECT_EQ(e.field, field) << e.message;
  EXPECT_FALSE(e.message.empty());
}

template <typename T>
void expect_error(const Result<T>& r, const std::string& code, const std::string& field) {
  ASSERT_FALSE(r.ok());
  expect_error(r.error(), code, field);
}

Json parse(const std::string& s) {
  Json j = parse_json_nothrow(s);
  EXPECT_FALSE(j.is_discarded()) << s;
  return j;
}

// --- encoding matches docs/protocol.md exactly ---

TEST(ProtocolEncode, ChangeMatchesProtocolDoc) {
  EXPECT_EQ(encode(sample_change()),
            parse(R"({"seq":124,"collection":"bills","id":"01HZX-bill.1","op":"update","version":124,
                      "fields":{"status":"paid","amount":42,"items":[1,2]},
                      "origin":{"client":"client-a","mid":17}})"));
  ChangeMsg c = sample_change();
  c.origin.reset();
  EXPECT_TRUE(encode(c).at("origin").is_null());
}

TEST(ProtocolEncode, MutationBatchMatchesProtocolDoc) {
  EXPECT_EQ(encode(sample_batch()),
            parse(R"({"client":"client-a","mutations":[
              {"mid":17,"op":"insert","collection":"bills","id":"b1","fields":{"amount":10}},
              {"mid":18,"op":"update","collection":"bills","id":"b1","fields":{"status":"paid","note":null},
               "base_version":123},
              {"mid":19,"op":"delete","collection":"bills","id":"b2"}]})"));
}

TEST(ProtocolEncode, MutationResultsMatchProtocolDoc) {
  EXPECT_EQ(encode(sample_results()),
            parse(R"({"seq":130,"results":[
              {"mid":17,"status":"applied","seq":124},
              {"mid":18,"status":"rejected","code":"conflict","message":"base_version mismatch"},
              {"mid":19,"status":"duplicate","seq":120},
              {"mid":20,"status":"duplicate","seq":0,"code":"constraint","message":"slot taken"}]})"));
}

TEST(ProtocolEncode, SmallMessages) {
  EXPECT_EQ(encode(HelloMsg{5}), parse(R"({"seq":5})"));
  EXPECT_EQ(encode(ResetMsg{"cursor_expired", 9}), parse(R"({"reason":"cursor_expired","seq":9})"));
  EXPECT_EQ(encode(ErrorMsg{make_error("invalid_request", "bad", "mutations[3].id")}),
            parse(R"({"error":{"code":"invalid_request","message":"bad","field":"mutations[3].id"}})"));
  EXPECT_EQ(encode(ErrorMsg{make_error("unauthorized", "no token")}),
            parse(R"({"error":{"code":"unauthorized","message":"no token"}})"));
  EXPECT_EQ(encode(sample_event()),
            parse(R"({"seq":7,"name":"order:stage_change","collection":"orders","id":"o-1",
                      "data":{"stage":"cooking"}})"));
}

TEST(ProtocolEncode, WsTypes) {
  EXPECT_EQ(parse(encode_ws(ServerMessage{HelloMsg{1}})).at("type"), "hello");
  EXPECT_EQ(parse(encode_ws(ServerMessage{sample_change()})).at("type"), "change");
  EXPECT_EQ(parse(encode_ws(ServerMessage{sample_event()})).at("type"), "event");
  EXPECT_EQ(parse(encode_ws(ServerMessage{ResetMsg{"cursor_expired", 1}})).at("type"), "reset");
  EXPECT_EQ(parse(encode_ws(ServerMessage{sample_results()})).at("type"), "results");
  EXPECT_EQ(parse(encode_ws(ServerMessage{ErrorMsg{Error{"x", "y", ""}}})).at("type"), "error");
  EXPECT_EQ(parse(encode_ws(ClientMessage{sample_batch()})).at("type"), "mutate");
  EXPECT_EQ(parse(encode_ws(ClientMessage{sample_publish()})).at("type"), "publish");
}

TEST(ProtocolEncode, InvalidUtf8DoesNotThrow) {
  ErrorMsg e{Error{"x", std::string("bad \xff\xfe utf8"), ""}};
  std::string out;
  EXPECT_NO_THROW(out = encode_ws(ServerMessage{e}));
  EXPECT_TRUE(decode_server_ws(out).ok());
}

// --- round trips ---

TEST(ProtocolRoundTrip, EveryServerMessageOverWs) {
  for (const ServerMessage& m : all_server_messages()) {
    auto back = decode_server_ws(encode_ws(m));
    ASSERT_TRUE(back.ok()) << back.error().code << " " << back.error().message << " in " << encode_ws(m);
    EXPECT_EQ(*back, m) << encode_ws(m);
  }
}

TEST(ProtocolRoundTrip, EveryServerMessageOverSse) {
  for (const ServerMessage& m : all_server_messages()) {
    std::visit(
        [&](const auto& msg) {
          auto back = decode_server_message(message_type(m), encode(msg).dump());
          ASSERT_TRUE(back.ok()) << back.error().message;
          EXPECT_EQ(*back, m);
        },
        m);
  }
}

TEST(ProtocolRoundTrip, ClientMessages) {
  for (const ClientMessage& m : {ClientMessage{sample_batch()}, ClientMessage{sample_publish()},
                                 ClientMessage{PublishRequest{"ping", "", "", Json::object()}}}) {
    auto back = decode_client_ws(encode_ws(m));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, m);
  }
}

TEST(ProtocolRoundTrip, TypedDecoders) {
  EXPECT_EQ(*decode_change(encode(sample_change())), sample_change());
  EXPECT_EQ(*decode_event(encode(sample_event())), sample_event());
  EXPECT_EQ(*decode_hello(encode(HelloMsg{0})), HelloMsg{0});
  EXPECT_EQ(*decode_reset(encode(ResetMsg{"cursor_expired", 3})), (ResetMsg{"cursor_expired", 3}));
  EXPECT_EQ(*decode_mutation_batch(encode(sample_batch())), sample_batch());
  EXPECT_EQ(*decode_mutation_results(encode(sample_results())), sample_results());
  EXPECT_EQ(*decode_publish(encode(sample_publish())), sample_publish());
  for (const Mutation& m : sample_batch().mutations) EXPECT_EQ(*decode_mutation(encode(m)), m);
}

// --- lenient but well-defined inputs ---

TEST(ProtocolDecode, UnknownMembersIgnoredAndNullOptionals) {
  auto c = decode_change(parse(R"({"seq":5,"collection":"bills","id":"b1","op":"insert","version":5,
                                   "fields":{"a":1},"origin":null,"extra":[1,2,3]})"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->origin.has_value());
  auto no_origin = decode_change(parse(R"({"seq":5,"collection":"bills","id":"b1","op":"insert","fields":{}})"));
  ASSERT_TRUE(no_origin.ok());
  EXPECT_EQ(no_origin->version, 0);
}

TEST(ProtocolDecode, DeleteChangeFieldsAbsentOrEmpty) {
  for (const char* text : {R"({"seq":9,"collection":"bills","id":"b1","op":"delete","version":9})",
                           R"({"seq":9,"collection":"bills","id":"b1","op":"delete","version":9,"fields":{}})"}) {
    auto c = decode_change(parse(text));
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->fields, Json::object());
    EXPECT_EQ(c->op, ChangeOp::Delete);
  }
  expect_error(decode_change(parse(R"({"seq":9,"collection":"bills","id":"b1","op":"delete","fields":3})")),
               "invalid_message", "fields");
}

TEST(ProtocolDecode, ChangeToDocument) {
  Document d = change_to_document(sample_change());
  EXPECT_EQ(d.collection, "bills");
  EXPECT_EQ(d.id, "01HZX-bill.1");
  EXPECT_EQ(d.version, 124);
  EXPECT_EQ(d.fields, sample_change().fields);
  EXPECT_FALSE(d.deleted);

  ChangeMsg del;
  del.seq = 300;
  del.collection = "bills";
  del.id = "b1";
  del.op = ChangeOp::Delete;
  del.version = 0;
  Document t = change_to_document(del);
  EXPECT_TRUE(t.deleted);
  EXPECT_EQ(t.version, 300);
  EXPECT_EQ(t.fields, Json::object());
  del.version = 299;
  EXPECT_EQ(change_to_document(del).version, 299);
}

TEST(ProtocolDecode, EventWithoutDocument) {
  auto e = decode_event(parse(R"({"seq":3,"name":"announce","data":{"x":1}})"));
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->collection.empty());
  EXPECT_TRUE(e->id.empty());
  auto no_data = decode_publish(parse(R"({"name":"announce"})"));
  ASSERT_TRUE(no_data.ok());
  EXPECT_EQ(no_data->data, Json::object());
}

// --- malformed inputs: code and field ---

TEST(ProtocolErrors, NotJson) {
  expect_error(decode_server_ws("{not json"), "invalid_json", "");
  expect_error(decode_client_ws(""), "invalid_json", "");
  expect_error(decode_server_message("hello", "{\"seq\":"), "invalid_json", "");
  expect_error(decode_client_ws(std::string(1000, '[')), "invalid_json", "");
}

TEST(ProtocolErrors, NotAnObject) {
  expect_error(decode_server_ws("[1,2]"), "invalid_message", "");
  expect_error(decode_client_ws("\"mutate\""), "invalid_request", "");
  expect_error(decode_server_message("hello", "42"), "invalid_message", "");
  expect_error(decode_mutation_batch(Json::array()), "invalid_request", "");
}

TEST(ProtocolErrors, UnknownOrMissingType) {
  expect_error(decode_server_ws(R"({"type":"bogus","seq":1})"), "invalid_message", "type");
  expect_error(decode_server_ws(R"({"seq":1})"), "invalid_message", "type");
  expect_error(decode_server_ws(R"({"type":7,"seq":1})"), "invalid_message", "type");
  expect_error(decode_client_ws(R"({"type":"subscribe"})"), "invalid_request", "type");
  expect_error(decode_client_ws(R"({"type":"hello","seq":1})"), "invalid_request", "type");
  expect_error(decode_server_message("bogus", "{}"), "invalid_message", "type");
  expect_error(decode_server_message("mutate", "{}"), "invalid_message", "type");
}

TEST(ProtocolErrors, SeqProblems) {
  expect_error(decode_server_ws(R"({"type":"hello"})"), "invalid_message", "seq");
  expect_error(decode_server_ws(R"({"type":"hello","seq":"5"})"), "invalid_message", "seq");
  expect_error(decode_server_ws(R"({"type":"hello","seq":-1})"), "invalid_message", "seq");
  expect_error(decode_server_ws(R"({"type":"hello","seq":1.5})"), "invalid_message", "seq");
  expect_error(decode_server_ws(R"({"type":"hello","seq":18446744073709551615})"), "invalid_message", "seq");
  expect_error(decode_server_ws(R"({"type":"hello","seq":null})"), "invalid_message", "seq");
  EXPECT_TRUE(decode_server_ws(R"({"type":"hello","seq":9223372036854775807})").ok());
  expect_error(decode_server_message("change", R"({"collection":"bills","id":"b","op":"insert","fields":{}})"),
               "invalid_message", "seq");
  expect_error(decode_server_message("reset", R"({"reason":"cursor_expired"})"), "invalid_message", "seq");
  expect_error(decode_server_message("results", R"({"results":[]})"), "invalid_message", "seq");
}

TEST(ProtocolErrors, ChangeFields) {
  const std::string base = R"("seq":5,"version":5)";
  auto change = [&](const std::string& rest) { return decode_server_message("change", "{" + base + "," + rest + "}"); };
  expect_error(change(R"("collection":"Bills","id":"b","op":"insert","fields":{})"), "invalid_message", "collection");
  expect_error(change(R"("collection":5,"id":"b","op":"insert","fields":{})"), "invalid_message", "collection");
  expect_error(change(R"("collection":"bills","id":"a b","op":"insert","fields":{})"), "invalid_message", "id");
  expect_error(change(R"("collection":"bills","id":"","op":"insert","fields":{})"), "invalid_message", "id");
  expect_error(change(R"("collection":"bills","id":")" + std::string(129, 'x') + R"(","op":"insert","fields":{})"),
               "invalid_message", "id");
  expect_error(change(R"("collection":"bills","id":"b","op":"upsert","fields":{})"), "invalid_message", "op");
  expect_error(change(R"("collection":"bills","id":"b","op":"update","fields":[1])"), "invalid_message", "fields");
  expect_error(change(R"("collection":"bills","id":"b","op":"update")"), "invalid_message", "fields");
  expect_error(change(R"("collection":"bills","id":"b","op":"update","fields":{},"origin":"me")"),
               "invalid_message", "origin");
  expect_error(change(R"("collection":"bills","id":"b","op":"update","fields":{},"origin":{"client":"c","mid":0})"),
               "invalid_message", "origin.mid");
  expect_error(change(R"("collection":"bills","id":"b","op":"update","fields":{},"origin":{"mid":3})"),
               "invalid_message", "origin.client");
  expect_error(decode_server_message("change", R"({"seq":5,"version":-2,"collection":"bills","id":"b","op":"insert","fields":{}})"),
               "invalid_message", "version");
}

TEST(ProtocolErrors, EventAndPublish) {
  expect_error(decode_server_message("event", R"({"seq":1,"name":""})"), "invalid_message", "name");
  expect_error(decode_server_message("event", R"({"seq":1})"), "invalid_message", "name");
  expect_error(decode_server_message("event", R"({"seq":1,"name":"n","data":5})"), "invalid_message", "data");
  expect_error(decode_server_message("event", R"({"seq":1,"name":"n","collection":"X"})"), "invalid_message",
               "collection");
  expect_error(decode_client_ws(R"({"type":"publish","name":")" + std::string(129, 'n') + "\"}"), "invalid_request",
               "name");
  EXPECT_TRUE(decode_client_ws(R"({"type":"publish","name":")" + std::string(128, 'n') + "\"}").ok());
  // Database text cannot hold U+0000: refused, not cut.
  expect_error(decode_client_ws(R"({"type":"publish","name":"a\u0000b"})"), "invalid_request", "name");
  expect_error(decode_client_ws(R"({"type":"publish","name":"n","id":"no spaces"})"), "invalid_request", "id");
  expect_error(decode_client_ws(R"({"type":"publish","name":7})"), "invalid_request", "name");
}

TEST(ProtocolErrors, ResultsAndError) {
  expect_error(decode_server_message("results", R"({"seq":1,"results":{}})"), "invalid_message", "results");
  expect_error(decode_server_message("results", R"({"seq":1,"results":[{"mid":1,"status":"ok"}]})"),
               "invalid_message", "results[0].status");
  expect_error(decode_server_message("results", R"({"seq":1,"results":[{"mid":1,"status":"applied"}]})"),
               "invalid_message", "results[0].seq");
  expect_error(decode_server_message("results",
                                     R"({"seq":1,"results":[{"mid":1,"status":"applied","seq":1},{"mid":2,"status":"rejected"}]})"),
               "invalid_message", "results[1].code");
  expect_error(decode_server_message("results", R"({"seq":1,"results":[{"mid":-1,"status":"applied","seq":1}]})"),
               "invalid_message", "results[0].mid");
  expect_error(decode_server_message("error", R"({"code":"x"})"), "invalid_message", "error");
  expect_error(decode_server_message("error", R"({"error":"boom"})"), "invalid_message", "error");
  expect_error(decode_server_message("error", R"({"error":{"message":"m"}})"), "invalid_message", "error.code");
  expect_error(decode_server_message("error", R"({"error":{"code":"x","field":3}})"), "invalid_message",
               "error.field");
}

std::string batch_text(const std::string& mutations) {
  return R"({"type":"mutate","client":"client-a","mutations":[)" + mutations + "]}";
}

TEST(ProtocolErrors, MutationBatch) {
  const std::string ok1 = R"({"mid":1,"op":"insert","collection":"bills","id":"b1","fields":{}})";
  EXPECT_TRUE(decode_client_ws(batch_text(ok1)).ok());

  expect_error(decode_client_ws(R"({"type":"mutate","mutations":[)" + ok1 + "]}"), "invalid_request", "client");
  expect_error(decode_client_ws(R"({"type":"mutate","client":"bad id!","mutations":[)" + ok1 + "]}"),
               "invalid_request", "client");
  expect_error(decode_client_ws(R"({"type":"mutate","client":"c"})"), "invalid_request", "mutations");
  expect_error(decode_client_ws(R"({"type":"mutate","client":"c","mutations":{}})"), "invalid_request", "mutations");
  expect_error(decode_client_ws(batch_text("")), "invalid_request", "mutations");

  expect_error(decode_client_ws(batch_text(ok1 + ",5")), "invalid_request", "mutations[1]");
  expect_error(decode_client_ws(batch_text(R"({"mid":-3,"op":"insert","collection":"bills","id":"b1","fields":{}})")),
               "invalid_request", "mutations[0].mid");
  expect_error(decode_client_ws(batch_text(R"({"mid":0,"op":"insert","collection":"bills","id":"b1","fields":{}})")),
               "invalid_request", "mutations[0].mid");
  expect_error(decode_client_ws(batch_text(R"({"op":"insert","collection":"bills","id":"b1","fields":{}})")),
               "invalid_request", "mutations[0].mid");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":2,"op":"patch","collection":"bills","id":"b1"})")),
               "invalid_request", "mutations[1].op");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":2,"op":"delete","collection":"9bills","id":"b1"})")),
               "invalid_request", "mutations[1].collection");
  expect_error(
      decode_client_ws(batch_text(ok1 + "," + ok1 + "," + ok1 + "," +
                                  R"({"mid":4,"op":"update","collection":"bills","id":"b/1","fields":{}})")),
      "invalid_request", "mutations[1].mid");  // mids 1,1 are not increasing
  expect_error(
      decode_client_ws(batch_text(ok1 + R"(,{"mid":2,"op":"update","collection":"bills","id":"b1","fields":{}},
                                         {"mid":3,"op":"update","collection":"bills","id":"b1","fields":{}},
                                         {"mid":4,"op":"update","collection":"bills","id":"b/1","fields":{}})")),
      "invalid_request", "mutations[3].id");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":2,"op":"update","collection":"bills","id":"b1"})")),
               "invalid_request", "mutations[1].fields");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":2,"op":"insert","collection":"bills","id":"b1","fields":"x"})")),
               "invalid_request", "mutations[1].fields");
  expect_error(decode_client_ws(batch_text(
                   ok1 + R"(,{"mid":2,"op":"update","collection":"bills","id":"b1","fields":{},"base_version":"7"})")),
               "invalid_request", "mutations[1].base_version");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":5,"op":"delete","collection":"bills","id":"b1"},
                                                   {"mid":5,"op":"delete","collection":"bills","id":"b2"})")),
               "invalid_request", "mutations[2].mid");
  expect_error(decode_client_ws(batch_text(ok1 + R"(,{"mid":5,"op":"delete","collection":"bills","id":"b1"},
                                                   {"mid":4,"op":"delete","collection":"bills","id":"b2"})")),
               "invalid_request", "mutations[2].mid");
}

TEST(ProtocolErrors, DeleteMutationWithoutFields) {
  auto b = decode_client_ws(batch_text(R"({"mid":9,"op":"delete","collection":"bills","id":"b1","base_version":4})"));
  ASSERT_TRUE(b.ok()) << b.error().message;
  const Mutation& m = std::get<MutationBatch>(*b).mutations.at(0);
  EXPECT_EQ(m.op, MutationOp::Delete);
  EXPECT_EQ(m.fields, Json::object());
  EXPECT_EQ(m.base_version, 4);
}

TEST(ProtocolErrors, OversizedBatch) {
  DecodeLimits limits;
  limits.max_batch = 3;
  std::string muts;
  for (int i = 1; i <= 4; ++i) {
    if (i > 1) muts += ",";
    muts += R"({"mid":)" + std::to_string(i) + R"(,"op":"delete","collection":"bills","id":"b"})";
  }
  auto r = decode_client_ws(batch_text(muts), limits);
  expect_error(r, "payload_too_large", "mutations");
  EXPECT_NE(r.error().message.find('3'), std::string::npos) << r.error().message;
  limits.max_batch = 4;
  EXPECT_TRUE(decode_client_ws(batch_text(muts), limits).ok());
  // The default limit is 500.
  MutationBatch big;
  big.client = "c";
  for (int i = 1; i <= 501; ++i) big.mutations.push_back(Mutation{i, MutationOp::Delete, "bills", "b", {}, {}});
  expect_error(decode_mutation_batch(encode(big)), "payload_too_large", "mutations");
  big.mutations.pop_back();
  EXPECT_TRUE(decode_mutation_batch(encode(big)).ok());
}

TEST(ProtocolErrors, DecodeMutationPrefix) {
  expect_error(decode_mutation(parse(R"({"mid":1,"op":"insert","collection":"bills","id":"b1"})")),
               "invalid_request", "fields");
  expect_error(decode_mutation(parse(R"({"mid":1,"op":"insert","collection":"bills","id":"b1"})"), "mutations[7]"),
               "invalid_request", "mutations[7].fields");
}

// --- field operations, conditions, atomic groups (protocol revision 1.1) ---

TEST(ProtocolEncode, AtomicMembersMatchTheDoc) {
  EXPECT_EQ(encode(atomic_batch()),
            parse(R"({"client":"client-a","mutations":[
              {"mid":40,"op":"update","collection":"products","id":"p1","fields":{"note":"sold"},
               "ops":{"stock":{"increment":-1,"min":0}},"group":40,"group_size":2},
              {"mid":41,"op":"insert","collection":"stock_moves","id":"m1","fields":{"product":"p1"},
               "ops":{"at":{"serverTime":true},"weight":{"increment":0.5,"min":-1.5,"max":10}},
               "group":40,"group_size":2},
              {"mid":42,"op":"update","collection":"bills","id":"b1","fields":{"status":"paid"},
               "if":"status=eq.unpaid"}]})"));
  EXPECT_EQ(encode(atomic_results()),
            parse(R"({"seq":131,"results":[
              {"mid":40,"status":"rejected","code":"constraint","message":"stock would be -1, below min 0","failed_mid":40},
              {"mid":41,"status":"rejected","code":"constraint","message":"stock would be -1, below min 0","failed_mid":40},
              {"mid":42,"status":"rejected","code":"conflict","message":"condition status=eq.unpaid does not hold",
               "current":{"version":120,"fields":{"status":"paid"}}},
              {"mid":43,"status":"rejected","code":"conflict","message":"condition status=eq.unpaid does not hold",
               "current":null}]})"));
  // Without them, nothing new is written.
  EXPECT_FALSE(encode(sample_batch()).at("mutations")[1].contains("ops"));
  EXPECT_FALSE(encode(sample_results()).at("results")[1].contains("current"));
}

TEST(ProtocolRoundTrip, AtomicBatchAndResults) {
  EXPECT_EQ(*decode_mutation_batch(encode(atomic_batch())), atomic_batch());
  auto c = decode_client_ws(encode_ws(ClientMessage{atomic_batch()}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(std::get<MutationBatch>(*c), atomic_batch());
  EXPECT_EQ(*decode_mutation_results(encode(atomic_results())), atomic_results());
  // The receive path without a DOM (decode_server_batch) gives the same results.
  auto b = decode_server_batch("[" + encode_ws(ServerMessage{atomic_results()}) + "]");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)[0].ok());
  EXPECT_EQ(std::get<MutationResults>(*(*b)[0]), atomic_results());
  // An integer increment stays an integer, a double a double.
  const Mutation back = decode_mutation_batch(encode(atomic_batch()))->mutations[1];
  EXPECT_TRUE(back.ops.at("weight").by.is_number_float());
  EXPECT_TRUE(decode_mutation_batch(encode(atomic_batch()))->mutations[0].ops.at("stock").by.is_number_integer());
}

TEST(ProtocolDecode, NullOptionalsOfTheNewMembers) {
  auto m = decode_mutation(parse(R"({"mid":1,"op":"update","collection":"c","id":"i","fields":{},
                                     "ops":null,"if":null,"group":null,"group_size":null})"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->ops.empty());
  EXPECT_FALSE(m->condition);
  EXPECT_FALSE(m->group);
  auto op = decode_mutation(parse(R"({"mid":1,"op":"update","collection":"c","id":"i","fields":{},
                                      "ops":{"n":{"increment":2,"min":null,"max":null}}})"));
  ASSERT_TRUE(op.ok()) << op.error().message;
  EXPECT_FALSE(op->ops.at("n").min);
  // A result's failed_mid 0 is "none"; current null is a value (the document is absent).
  auto r = decode_mutation_results(parse(R"({"seq":1,"results":[{"mid":1,"status":"rejected","code":"c",
                                             "failed_mid":0,"current":null}]})"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->results[0].failed_mid, 0);
  ASSERT_TRUE(r->results[0].current.has_value());
  EXPECT_TRUE(r->results[0].current->is_null());
  // Members of current beyond version and fields are not kept.
  r = decode_mutation_results(parse(R"({"seq":1,"results":[{"mid":1,"status":"rejected","code":"c",
                                        "current":{"version":3,"fields":{"a":1},"x":2}}]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->results[0].current, parse(R"({"version":3,"fields":{"a":1}})"));
}

std::string mut(const std::string& extra, const char* op = "update", int mid = 1) {
  std::string m = R"({"mid":)" + std::to_string(mid) + R"(,"op":")" + op + R"(","collection":"bills","id":"b1")";
  if (std::string(op) != "delete") m += R"(,"fields":{"status":"paid"})";
  if (!extra.empty()) m += "," + extra;
  return m + "}";
}

TEST(ProtocolErrors, FieldOperations) {
  const auto one = [](const std::string& extra, const char* op = "update") {
    return decode_client_ws(batch_text(mut(extra, op)));
  };
  EXPECT_TRUE(one(R"("ops":{"n":{"increment":1}})").ok());
  EXPECT_TRUE(one(R"("ops":{"n":{"increment":-1.5,"min":-3,"max":0}})").ok());
  EXPECT_TRUE(one(R"("ops":{"t":{"serverTime":true}})", "insert").ok());
  EXPECT_TRUE(one(R"("ops":{})", "delete").ok()) << "no ops at all is fine on a delete";
  // Ops alone need no fields; empty ops do not stand in for them.
  auto bare = decode_mutation(parse(R"({"mid":1,"op":"update","collection":"c","id":"i","ops":{"n":{"increment":1}}})"));
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->fields, Json::object());
  expect_error(decode_mutation(parse(R"({"mid":1,"op":"update","collection":"c","id":"i","ops":{}})")),
               "invalid_request", "fields");
  expect_error(one(R"("ops":[1])"), "invalid_request", "mutations[0].ops");
  expect_error(one(R"("ops":"n")"), "invalid_request", "mutations[0].ops");
  expect_error(one(R"("ops":{"n":1})"), "invalid_request", "mutations[0].ops.n");
  expect_error(one(R"("ops":{"n":{}})"), "invalid_request", "mutations[0].ops.n");
  expect_error(one(R"("ops":{"n":{"increment":"1"}})"), "invalid_request", "mutations[0].ops.n.increment");
  expect_error(one(R"("ops":{"n":{"increment":true}})"), "invalid_request", "mutations[0].ops.n.increment");
  expect_error(one(R"("ops":{"n":{"increment":1,"min":"0"}})"), "invalid_request", "mutations[0].ops.n.min");
  expect_error(one(R"("ops":{"n":{"increment":1,"max":[]}})"), "invalid_request", "mutations[0].ops.n.max");
  expect_error(one(R"("ops":{"n":{"increment":1,"min":5,"max":4}})"), "invalid_request", "mutations[0].ops.n");
  expect_error(one(R"("ops":{"n":{"increment":1,"multiply":2}})"), "invalid_request",
               "mutations[0].ops.n.multiply");
  expect_error(one(R"("ops":{"n":{"increment":1,"serverTime":true}})"), "invalid_request", "mutations[0].ops.n");
  expect_error(one(R"("ops":{"t":{"serverTime":false}})"), "invalid_request", "mutations[0].ops.t.serverTime");
  expect_error(one(R"("ops":{"t":{"serverTime":1}})"), "invalid_request", "mutations[0].ops.t.serverTime");
  expect_error(one(R"("ops":{"t":{"serverTime":true,"min":0}})"), "invalid_request", "mutations[0].ops.t.min");
  expect_error(one(R"("ops":{"":{"increment":1}})"), "invalid_request", "mutations[0].ops");
  expect_error(one(R"("ops":{"n":{"increment":1}})", "delete"), "invalid_mutation", "mutations[0].ops");
  expect_error(one(R"("ops":{"status":{"increment":1}})"), "invalid_mutation", "mutations[0].ops.status");
  std::string many = R"("ops":{)";
  for (int i = 0; i <= 64; ++i) many += (i ? "," : "") + std::string("\"f") + std::to_string(i) + R"(":{"increment":1})";
  expect_error(one(many + "}"), "invalid_request", "mutations[0].ops");
  many = R"("ops":{)";
  for (int i = 0; i < 64; ++i) many += (i ? "," : "") + std::string("\"f") + std::to_string(i) + R"(":{"increment":1})";
  EXPECT_TRUE(one(many + "}").ok()) << "64 ops are allowed";
}

TEST(ProtocolErrors, Conditions) {
  const auto one = [](const std::string& extra, const char* op = "update") {
    return decode_client_ws(batch_text(mut(extra, op)));
  };
  auto ok = one(R"x("if":"status=in.(unpaid,\"on hold\")")x");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(std::get<MutationBatch>(*ok).mutations[0].condition->to_string(), "status=in.(unpaid,on hold)");
  EXPECT_TRUE(one(R"("if":"status=eq.cancelled")", "delete").ok());
  expect_error(one(R"("if":5)"), "invalid_request", "mutations[0].if");
  expect_error(one(R"("if":{"status":"unpaid"})"), "invalid_request", "mutations[0].if");
  auto bad = one(R"("if":"status=zz.unpaid")");
  expect_error(bad, "invalid_request", "mutations[0].if");
  EXPECT_NE(bad.error().message.find("zz"), std::string::npos) << bad.error().message;
  expect_error(one(R"("if":"status=eq.unpaid")", "insert"), "invalid_mutation", "mutations[0].if");
}

TEST(ProtocolErrors, Groups) {
  const auto g = [](int mid, int group, int size, const char* op = "update") {
    return mut(R"("group":)" + std::to_string(group) + R"(,"group_size":)" + std::to_string(size), op, mid);
  };
  EXPECT_TRUE(decode_client_ws(batch_text(g(5, 5, 2) + "," + g(6, 5, 2))).ok());
  EXPECT_TRUE(decode_client_ws(batch_text(mut("", "update", 1) + "," + g(5, 5, 2) + "," + g(6, 5, 2) + "," +
                                          g(7, 7, 1) + "," + mut("", "delete", 9)))
                  .ok());
  // One of group / group_size alone, or of the wrong type or range.
  expect_error(decode_client_ws(batch_text(mut(R"("group":1)"))), "invalid_request", "mutations[0].group_size");
  expect_error(decode_client_ws(batch_text(mut(R"("group_size":2)"))), "invalid_request", "mutations[0].group");
  expect_error(decode_client_ws(batch_text(mut(R"("group":0,"group_size":1)"))), "invalid_request",
               "mutations[0].group");
  expect_error(decode_client_ws(batch_text(mut(R"("group":1,"group_size":0)"))), "invalid_request",
               "mutations[0].group_size");
  expect_error(decode_client_ws(batch_text(mut(R"("group":"1","group_size":1)"))), "invalid_request",
               "mutations[0].group");
  // A mid outside its group's range.
  expect_error(decode_client_ws(batch_text(g(4, 5, 2))), "invalid_request", "mutations[0].group");
  expect_error(decode_client_ws(batch_text(g(7, 5, 2))), "invalid_request", "mutations[0].group");
  // Does not start at its first mid in the batch.
  expect_error(decode_client_ws(batch_text(g(6, 5, 2))), "invalid_request", "mutations[0].group");
  // Incomplete at the end of the batch.
  expect_error(decode_client_ws(batch_text(mut("", "update", 1) + "," + g(5, 5, 3) + "," + g(6, 5, 3))),
               "invalid_request", "mutations[2].group");
  // Interrupted by a non-member, or by another group.
  expect_error(decode_client_ws(batch_text(g(5, 5, 2) + "," + mut("", "update", 6))), "invalid_request",
               "mutations[1].group");
  expect_error(decode_client_ws(batch_text(g(5, 5, 2) + "," + g(6, 6, 1))), "invalid_request",
               "mutations[1].group");
  // A gap in the mids.
  expect_error(decode_client_ws(batch_text(g(5, 5, 3) + "," + g(7, 5, 3))), "invalid_request", "mutations[1].group");
  // Members disagreeing on the size.
  expect_error(decode_client_ws(batch_text(g(5, 5, 2) + "," + g(6, 5, 3) + "," + g(7, 5, 3))), "invalid_request",
               "mutations[1].group");
}

TEST(ProtocolErrors, ResultMembers) {
  const auto res = [](const std::string& extra) {
    return decode_server_message(
        "results", R"({"seq":1,"results":[{"mid":1,"status":"rejected","code":"conflict",)" + extra + "}]}");
  };
  EXPECT_TRUE(res(R"("failed_mid":3)").ok());
  expect_error(res(R"("failed_mid":-1)"), "invalid_message", "results[0].failed_mid");
  expect_error(res(R"("failed_mid":"3")"), "invalid_message", "results[0].failed_mid");
  expect_error(res(R"("current":5)"), "invalid_message", "results[0].current");
  expect_error(res(R"("current":{"fields":{}})"), "invalid_message", "results[0].current.version");
  expect_error(res(R"("current":{"version":1})"), "invalid_message", "results[0].current.fields");
  expect_error(res(R"("current":{"version":1,"fields":[]})"), "invalid_message", "results[0].current.fields");
  expect_error(res(R"("current":{"version":-1,"fields":{}})"), "invalid_message", "results[0].current.version");
}

// --- never crash ---

std::string random_bytes(Rng& rng) {
  static const std::string alphabet = "{}[]\":,0123456789-.eEtruefalsnl \\/ubxyz\x01\xff\xc3\xa9";
  std::string s(rng.below(64), '\0');
  for (char& c : s) {
    c = rng.below(4) == 0 ? static_cast<char>(rng.below(256)) : alphabet[rng.below(alphabet.size())];
  }
  return s;
}

std::string mutate_text(std::string s, Rng& rng) {
  static const char* pieces[] = {"null", "-1", "0", "\"\"", "[]", "{}", "1.5", "true", "\"type\"", ",", ":", "\"",
                                 "99999999999999999999", "{\"a\":[[[[", "\\u0000"};
  const int edits = 1 + static_cast<int>(rng.below(4));
  for (int i = 0; i < edits && !s.empty(); ++i) {
    const std::size_t pos = rng.below(s.size());
    switch (rng.below(4)) {
      case 0: s.erase(pos, 1 + rng.below(8)); break;
      case 1: s.insert(pos, pieces[rng.below(std::size(pieces))]); break;
      case 2: s[pos] = static_cast<char>(rng.below(256)); break;
      default: s = s.substr(0, pos); break;
    }
  }
  return s;
}

// Replaces one value somewhere in a valid message with a value of another type.
void mutate_json(Json& j, Rng& rng, int depth = 0) {
  static const Json replacements[] = {nullptr, -1, 0, "", Json::array(), Json::object(), 1.5, true,
                                      "Bad Name!", 9223372036854775807LL, Json::array({1})};
  if ((j.is_object() || j.is_array()) && !j.empty() && depth < 6 && rng.below(4) != 0) {
    auto it = j.begin();
    std::advance(it, static_cast<long>(rng.below(j.size())));
    if (j.is_object() && rng.below(5) == 0) {
      j.erase(it.key());
      return;
    }
    mutate_json(*it, rng, depth + 1);
    return;
  }
  j = replacements[rng.below(std::size(replacements))];
}

void expect_clean(const Error& e) { EXPECT_FALSE(e.code.empty()); }

TEST(ProtocolFuzz, NeverCrashes) {
  const std::uint64_t seed = std::getenv("SYNCLINE_SEED") ? std::strtoull(std::getenv("SYNCLINE_SEED"), nullptr, 10) : 20240611;
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun with SYNCLINE_SEED)");
  Rng rng(seed);
  std::vector<std::string> valid;
  for (const ServerMessage& m : all_server_messages()) valid.push_back(encode_ws(m));
  valid.push_back(encode_ws(ClientMessage{sample_batch()}));
  valid.push_back(encode_ws(ClientMessage{atomic_batch()}));
  valid.push_back(encode_ws(ClientMessage{sample_publish()}));
  const char* types[] = {"hello", "change", "event", "reset", "results", "error", "mutate", ""};

  int oks = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string text;
    switch (i % 3) {
      case 0: text = random_bytes(rng); break;
      case 1: text = mutate_text(valid[rng.below(valid.size())], rng); break;
      default: {
        Json j = parse_json_nothrow(valid[rng.below(valid.size())]);
        mutate_json(j, rng);
        text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
      }
    }
    auto s = decode_server_ws(text);
    if (s.ok()) {
      ++oks;
      // Whatever decodes must re-encode and decode to the same value.
      auto again = decode_server_ws(encode_ws(*s));
      ASSERT_TRUE(again.ok()) << text;
      EXPECT_EQ(*again, *s) << text;
    } else {
      expect_clean(s.error());
    }
    auto c = decode_client_ws(text);
    if (c.ok()) {
      ++oks;
      auto again = decode_client_ws(encode_ws(*c));
      ASSERT_TRUE(again.ok()) << text;
      EXPECT_EQ(*again, *c) << text;
    } else {
      expect_clean(c.error());
    }
    auto sse = decode_server_message(types[rng.below(std::size(types))], text);
    if (!sse.ok()) expect_clean(sse.error());
  }
  EXPECT_GT(oks, 0);  // the mutations leave some messages valid
}

}  // namespace
}  // namespace syncline
