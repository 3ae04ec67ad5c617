// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Wire protocol v1 codec (docs/protocol.md). Nothing here throws on bad input: every nlohmann
// access is type-checked first (find() instead of at(), is_*() before get<>()), texts are parsed
// with parse_json_nothrow, and dumps replace invalid UTF-8 instead of throwing.
//
// Decoding rules, shared by every message:
// - the body must be a JSON object; unknown members are ignored, a known member of the wrong
//   type is an error; an optional member that is null counts as absent. Ignoring unknown
//   members is the protocol's compatibility rule (docs/protocol.md): a peer of a later revision
//   may add members, and one that predates them must still read the rest;
// - integers (seq, version, mid, base_version) are int64, never negative, mid >= 1;
//   1.0 is not an integer;
// - errors carry the JSON path of the problem in `field` ("mutations[3].id", "error.code", ...):
//   "invalid_message" for server -> client messages, "invalid_request" for client -> server
//   requests, "invalid_json" when the text does not parse (or nests deeper than kMaxDepth),
//   "payload_too_large" for a batch over DecodeLimits::max_batch.
#include "core/protocol.hpp"

#include <array>
#include <cstdint>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/json_bounded.hpp"
#include "core/json_reader.hpp"
#include "core/live_query.hpp"  // compare_values: the exact order of JSON numbers

namespace syncline {

namespace {

// Text decoders refuse deeper nesting: copying and dumping a json value recurses once per
// level, and the wasm stack is small. No real document comes close.
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxEventNameChars = 128;
constexpr std::size_t kMaxOpsPerMutation = 64;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;


Result<Json> parse_text(std::string_view text) {
  JsonParseError err = JsonParseError::None;
  Json j = parse_json_bounded(text, kMaxDepth, &err);
  if (err == JsonParseError::TooDeep) {
    return make_error(codes::kInvalidJson, "JSON nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  if (j.is_discarded()) return make_error(codes::kInvalidJson, "body is not valid JSON");
  return j;
}

// A short, printable rendering of untrusted text for error messages (which end up in JSON).
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 40) out += "...";
  return out;
}

std::string join(const std::string& prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  return prefix + "." + std::string(name);
}

std::string indexed(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}


std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool is_valid_event_name(std::string_view name) {
  // No U+0000: a name is stored as database text, which cannot hold it.
  return !name.empty() && utf8_length(name) <= kMaxEventNameChars && name.find('\0') == std::string_view::npos;
}

// The members of a parsed JSON value, as ObjectReader sees them. A frame read by
// decode_server_batch supplies the same two operations from its own member slots (FrameMembers
// below), so one set of decoders serves both and their validation cannot drift apart.
class JsonMembers {
 public:
  explicit JsonMembers(const Json& j) : j_(j) {}
  bool is_object() const { return j_.is_object(); }
  // The member, or nullptr when absent (it may be null).
  const Json* member(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  // An object member's value for the decoded message: a copy, the input is const.
  Json take(const Json* v) const { return *v; }

 private:
  const Json& j_;
};

// The members of one frame object as decode_server_batch reads it. Only the keys that some
// server message decoder reads get a slot (a Json each: scalars cost nothing, `fields` is
// parsed straight into its slot and later moved into the message); every other member is
// validated and skipped. A repeated key overwrites its slot, as it does in nlohmann's DOM.
class FrameSlots {
 public:
  static constexpr std::string_view kKeys[] = {"type", "seq",  "collection", "id",     "op",      "version", "fields",
                                               "origin", "name", "data",       "reason", "results", "error"};
  static constexpr std::size_t kCount = std::size(kKeys);

  static int index(std::string_view key) {
    for (std::size_t i = 0; i < kCount; ++i) {
      if (kKeys[i] == key) return static_cast<int>(i);
    }
    return -1;
  }
  void clear() { present_ = {}; }
  // The slot to parse the member into, reset; nullptr for a key no decoder reads.
  Json* slot(std::string_view key) {
    const int i = index(key);
    if (i < 0) return nullptr;
    present_[i] = true;
    slots_[i] = Json();
    return &slots_[i];
  }
  const Json* get(const char* key) const {
    const int i = index(key);
    return i >= 0 && present_[i] ? &slots_[i] : nullptr;
  }
  Json take(const Json* v) { return std::move(slots_[static_cast<std::size_t>(v - slots_.data())]); }

 private:
  std::array<Json, kCount> slots_;
  std::array<bool, kCount> present_{};
};

// ObjectReader's view of FrameSlots (a pointer, so decoders can take it by value).
class FrameMembers {
 public:
  explicit FrameMembers(FrameSlots& s) : s_(&s) {}
  bool is_object() const { return true; }
  const Json* member(const char* key) const { return s_->get(key); }
  // The decoded message owns the value from now on: move it out of the slot.
  Json take(const Json* v) { return s_->take(v); }

 private:
  FrameSlots* s_;
};

// Reads the members of one JSON object, keeping the first error. Every getter returns a usable
// default after a failure, so decoders read straight through and check failed() at the end.
template <typename Members>
class ObjectReader {
 public:
  ObjectReader(Members obj, RegisteredCode code, std::string prefix)
      : obj_(std::move(obj)), code_(code), prefix_(std::move(prefix)) {
    if (!obj_.is_object()) {
      fail(prefix_, (prefix_.empty() ? std::string("body") : prefix_) + " must be a JSON object");
    }
  }

  bool failed() const { return error_.has_value(); }
  const Error& error() const { return *error_; }
  const std::string& prefix() const { return prefix_; }
  std::string path(std::string_view key) const { return join(prefix_, key); }

  void fail(const std::string& field, const std::string& message) {
    if (!error_) error_ = make_error(code_, message, field);
  }

  // The member even when it is null; nullptr when absent or the reader already failed.
  const Json* find_raw(const char* key) const {
    if (error_ || !obj_.is_object()) return nullptr;
    return obj_.member(key);
  }

  // The member, or nullptr when absent, null, or the reader already failed.
  const Json* find(const char* key) const {
    if (error_ || !obj_.is_object()) return nullptr;
    const Json* v = obj_.member(key);
    if (!v || v->is_null()) return nullptr;
    return v;
  }

  std::int64_t int64(const char* key, std::int64_t min, bool required, std::int64_t fallback = 0) {
    const Json* v = find(key);
    if (!v) {
      if (required) missing(key);
      return fallback;
    }
    std::int64_t out = 0;
    if (!json_as_int64(*v, out) || out < min) {
      fail(path(key), path(key) + " must be an integer >= " + std::to_string(min));
      return fallback;
    }
    return out;
  }

  std::string string(const char* key, bool required) {
    const Json* v = find(key);
    if (!v) {
      if (required) missing(key);
      return {};
    }
    if (!v->is_string()) {
      fail(path(key), path(key) + " must be a string");
      return {};
    }
    return v->get<std::string>();
  }

  std::string collection(const char* key, bool required) {
    std::string s = string(key, required);
    if (failed() || (!required && s.empty())) return s;
    if (!is_valid_collection(s)) {
      fail(path(key), path(key) + " must match ^[a-z][a-z0-9_]{0,63}$");
      return {};
    }
    return s;
  }

  std::string id(const char* key, bool required) {
    std::string s = string(key, required);
    if (failed() || (!required && s.empty())) return s;
    if (!is_valid_id(s)) {
      fail(path(key), path(key) + " must match ^[A-Za-z0-9_.:-]{1,128}$");
      return {};
    }
    return s;
  }

  std::string event_name(const char* key) {
    std::string s = string(key, true);
    if (failed()) return s;
    if (!is_valid_event_name(s)) {
      fail(path(key), path(key) + " must be a non-empty string of at most " +
                          std::to_string(kMaxEventNameChars) + " characters, without U+0000");
      return {};
    }
    return s;
  }

  // An object member; absent/null yields {} unless required.
  Json object(const char* key, bool required) {
    const Json* v = find(key);
    if (!v) {
      if (required) missing(key);
      return Json::object();
    }
    if (!v->is_object()) {
      fail(path(key), path(key) + " must be an object");
      return Json::object();
    }
    return obj_.take(v);
  }

  // An array member (required); nullptr after a failure.
  const Json* array(const char* key) {
    const Json* v = find(key);
    if (!v) {
      missing(key);
      return nullptr;
    }
    if (!v->is_array()) {
      fail(path(key), path(key) + " must be an array");
      return nullptr;
    }
    return v;
  }

 private:
  void missing(const char* key) { fail(path(key), path(key) + " is required"); }

  Members obj_;
  RegisteredCode code_;
  std::string prefix_;
  std::optional<Error> error_;
};

std::optional<ChangeOp> change_op_from_string(std::string_view s) {
  if (s == "insert") return ChangeOp::Insert;
  if (s == "update") return ChangeOp::Update;
  if (s == "delete") return ChangeOp::Delete;
  return std::nullopt;
}

std::optional<ResultStatus> result_status_from_string(std::string_view s) {
  if (s == "applied") return ResultStatus::Applied;
  if (s == "rejected") return ResultStatus::Rejected;
  if (s == "duplicate") return ResultStatus::Duplicate;
  return std::nullopt;
}

ObjectReader<JsonMembers> json_reader(const Json& j, RegisteredCode code, std::string prefix) {
  return ObjectReader<JsonMembers>(JsonMembers(j), code, std::move(prefix));
}

Result<MutationResult> decode_mutation_result(const Json& j, const std::string& prefix) {
  auto r = json_reader(j, codes::kInvalidMessage, prefix);
  MutationResult out;
  out.mid = r.int64("mid", 1, true);
  const std::string status = r.string("status", true);
  if (!r.failed()) {
    if (auto s = result_status_from_string(status)) {
      out.status = *s;
    } else {
      r.fail(r.path("status"), r.path("status") + " must be \"applied\", \"rejected\" or \"duplicate\"");
    }
  }
  out.seq = r.int64("seq", 0, !r.failed() && out.status == ResultStatus::Applied);
  out.code = r.string("code", !r.failed() && out.status == ResultStatus::Rejected);
  out.message = r.string("message", false);
  if (!r.failed() && out.status == ResultStatus::Rejected && out.code.empty()) {
    r.fail(r.path("code"), r.path("code") + " must not be empty");
  }
  out.failed_mid = r.int64("failed_mid", 0, false);
  // "current": null is a value here (the document is absent), not "no current".
  if (const Json* c = r.find_raw("current")) {
    if (c->is_null()) {
      out.current = Json(nullptr);
    } else {
      auto cr = json_reader(*c, codes::kInvalidMessage, r.path("current"));
      Json doc = Json::object();
      doc["version"] = cr.int64("version", 0, true);
      doc["fields"] = cr.object("fields", true);
      if (cr.failed()) return cr.error();
      out.current = std::move(doc);
    }
  }
  if (r.failed()) return r.error();
  if (out.status == ResultStatus::Rejected) out.seq = 0;  // not part of a rejection
  // Keep only what encode() writes, so decode(encode(x)) == x.
  if (out.status == ResultStatus::Applied || out.code.empty()) {
    out.code.clear();
    out.message.clear();
  }
  return out;
}

template <typename Members>
Result<ChangeMsg> decode_change_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  ChangeMsg out;
  out.seq = r.int64("seq", 0, true);
  out.collection = r.collection("collection", true);
  out.id = r.id("id", true);
  const std::string op = r.string("op", true);
  if (!r.failed()) {
    if (auto o = change_op_from_string(op)) {
      out.op = *o;
    } else {
      r.fail("op", "op must be \"insert\", \"update\" or \"delete\"");
    }
  }
  // version is optional: 0 means "the change's own seq" (see change_to_document).
  out.version = r.int64("version", 0, false);
  // A delete carries no document: fields may be absent or {} and always decode to {}.
  out.fields = r.object("fields", !r.failed() && out.op != ChangeOp::Delete);
  if (out.op == ChangeOp::Delete) out.fields = Json::object();
  if (const Json* o = r.find("origin")) {
    auto orr = json_reader(*o, codes::kInvalidMessage, "origin");
    Origin origin;
    origin.client = orr.id("client", true);
    origin.mid = orr.int64("mid", 1, true);
    if (orr.failed()) return orr.error();
    out.origin = std::move(origin);
  }
  if (r.failed()) return r.error();
  return out;
}

template <typename Members>
Result<EventMsg> decode_event_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  EventMsg out;
  out.seq = r.int64("seq", 0, true);
  out.name = r.event_name("name");
  out.collection = r.collection("collection", false);
  out.id = r.id("id", false);
  out.data = r.object("data", false);
  if (r.failed()) return r.error();
  return out;
}

template <typename Members>
Result<HelloMsg> decode_hello_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  HelloMsg out;
  out.seq = r.int64("seq", 0, true);
  if (r.failed()) return r.error();
  return out;
}

template <typename Members>
Result<ResetMsg> decode_reset_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  ResetMsg out;
  out.reason = r.string("reason", true);
  out.seq = r.int64("seq", 0, true);
  if (r.failed()) return r.error();
  return out;
}

template <typename Members>
Result<MutationResults> decode_mutation_results_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  MutationResults out;
  out.seq = r.int64("seq", 0, true);
  const Json* results = r.array("results");
  if (r.failed()) return r.error();
  out.results.reserve(results->size());
  for (std::size_t i = 0; i < results->size(); ++i) {
    auto res = decode_mutation_result((*results)[i], indexed("results", i));
    if (!res) return res.error();
    out.results.push_back(std::move(res.value()));
  }
  return out;
}

template <typename Members>
Result<ErrorMsg> decode_error_from(Members j) {
  ObjectReader<Members> r(std::move(j), codes::kInvalidMessage, "");
  const Json* e = r.find("error");
  if (!e) r.fail("error", "error is required");
  if (r.failed()) return r.error();
  auto er = json_reader(*e, codes::kInvalidMessage, "error");
  ErrorMsg out;
  out.error.code = er.string("code", true);
  if (!er.failed() && out.error.code.empty()) er.fail("error.code", "error.code must not be empty");
  out.error.message = er.string("message", false);
  out.error.field = er.string("field", false);
  if (er.failed()) return er.error();
  return out;
}

template <typename T>
Result<ServerMessage> widen(Result<T> r) {
  if (!r) return r.error();
  return ServerMessage{std::move(r.value())};
}

template <typename T>
Result<ClientMessage> widen_client(Result<T> r) {
  if (!r) return r.error();
  return ClientMessage{std::move(r.value())};
}

template <typename Members>
Result<ServerMessage> decode_server_json(std::string_view type, Members j) {
  if (type == "hello") return widen(decode_hello_from(std::move(j)));
  if (type == "change") return widen(decode_change_from(std::move(j)));
  if (type == "event") return widen(decode_event_from(std::move(j)));
  if (type == "reset") return widen(decode_reset_from(std::move(j)));
  if (type == "results") return widen(decode_mutation_results_from(std::move(j)));
  if (type == "error") return widen(decode_error_from(std::move(j)));
  return make_error(codes::kInvalidMessage, "unknown message type \"" + printable(type) + "\"", "type");
}

bool is_known_server_type(std::string_view type) {
  return type == "hello" || type == "change" || type == "event" || type == "reset" ||
         type == "results" || type == "error";
}

}  // namespace

// --- names ---

const char* to_string(ChangeOp op) {
  switch (op) {
    case ChangeOp::Insert: return "insert";
    case ChangeOp::Update: return "update";
    case ChangeOp::Delete: return "delete";
  }
  return "insert";
}

const char* to_string(ResultStatus s) {
  switch (s) {
    case ResultStatus::Applied: return "applied";
    case ResultStatus::Rejected: return "rejected";
    case ResultStatus::Duplicate: return "duplicate";
  }
  return "applied";
}

// --- encoding ---

Json encode(const ChangeMsg& m) {
  Json j = Json::object();
  j["seq"] = m.seq;
  j["collection"] = m.collection;
  j["id"] = m.id;
  j["op"] = to_string(m.op);
  j["version"] = m.version;
  j["fields"] = (m.op == ChangeOp::Delete || !m.fields.is_object()) ? Json::object() : m.fields;
  if (m.origin) {
    j["origin"] = Json{{"client", m.origin->client}, {"mid", m.origin->mid}};
  } else {
    j["origin"] = nullptr;
  }
  return j;
}

// collection and id are omitted when empty (an event about no document).
Json encode(const EventMsg& m) {
  Json j = Json::object();
  j["seq"] = m.seq;
  j["name"] = m.name;
  if (!m.collection.empty()) j["collection"] = m.collection;
  if (!m.id.empty()) j["id"] = m.id;
  j["data"] = m.data.is_object() ? m.data : Json::object();
  return j;
}

Json encode(const HelloMsg& m) { return Json{{"seq", m.seq}}; }

Json encode(const ResetMsg& m) { return Json{{"reason", m.reason}, {"seq", m.seq}}; }

Json encode(const FieldOp& op) {
  Json j = Json::object();
  switch (op.kind) {
    case FieldOp::Kind::Increment:
      j["increment"] = op.by;
      if (op.min) j["min"] = *op.min;
      if (op.max) j["max"] = *op.max;
      break;
    case FieldOp::Kind::ServerTime:
      j["serverTime"] = true;
      break;
  }
  return j;
}

Json encode(const Mutation& m) {
  Json j = Json::object();
  j["mid"] = m.mid;
  j["op"] = to_string(m.op);
  j["collection"] = m.collection;
  j["id"] = m.id;
  if (m.op != MutationOp::Delete) j["fields"] = m.fields.is_object() ? m.fields : Json::object();
  if (m.base_version) j["base_version"] = *m.base_version;
  if (!m.ops.empty()) {
    Json ops = Json::object();
    for (const auto& [name, op] : m.ops) ops[name] = encode(op);
    j["ops"] = std::move(ops);
  }
  if (m.condition) j["if"] = m.condition->to_string();
  if (m.group) {
    j["group"] = *m.group;
    j["group_size"] = m.group_size;
  }
  return j;
}

Json encode(const MutationBatch& m) {
  Json muts = Json::array();
  for (const Mutation& mu : m.mutations) muts.push_back(encode(mu));
  return Json{{"client", m.client}, {"mutations", std::move(muts)}};
}

Json encode(const MutationResult& r) {
  Json j = Json::object();
  j["mid"] = r.mid;
  j["status"] = to_string(r.status);
  switch (r.status) {
    case ResultStatus::Applied:
      j["seq"] = r.seq;
      break;
    case ResultStatus::Rejected:
      j["code"] = r.code;
      j["message"] = r.message;
      break;
    case ResultStatus::Duplicate:
      j["seq"] = r.seq;
      if (!r.code.empty()) {  // the original outcome was a rejection
        j["code"] = r.code;
        j["message"] = r.message;
      }
      break;
  }
  if (r.failed_mid != 0) j["failed_mid"] = r.failed_mid;
  if (r.current) j["current"] = *r.current;
  return j;
}

Json encode(const MutationResults& m) {
  Json results = Json::array();
  for (const MutationResult& r : m.results) results.push_back(encode(r));
  return Json{{"seq", m.seq}, {"results", std::move(results)}};
}

// collection and id are omitted when empty.
Json encode(const PublishRequest& m) {
  Json j = Json::object();
  j["name"] = m.name;
  if (!m.collection.empty()) j["collection"] = m.collection;
  if (!m.id.empty()) j["id"] = m.id;
  j["data"] = m.data.is_object() ? m.data : Json::object();
  return j;
}

Json encode(const ErrorMsg& m) {
  Json e = Json{{"code", m.error.code}, {"message", m.error.message}};
  if (!m.error.field.empty()) e["field"] = m.error.field;
  return Json{{"error", std::move(e)}};
}

const char* message_type(const ServerMessage& m) {
  return std::visit(Overloaded{
                        [](const HelloMsg&) { return "hello"; },
                        [](const ChangeMsg&) { return "change"; },
                        [](const EventMsg&) { return "event"; },
                        [](const ResetMsg&) { return "reset"; },
                        [](const MutationResults&) { return "results"; },
                        [](const ErrorMsg&) { return "error"; },
                    },
                    m);
}

std::string encode_ws(const ServerMessage& m) {
  Json j = std::visit([](const auto& msg) { return encode(msg); }, m);
  j["type"] = message_type(m);
  return dump_nothrow(j);
}

std::string encode_ws(const ClientMessage& m) {
  Json j = std::visit([](const auto& msg) { return encode(msg); }, m);
  j["type"] = std::holds_alternative<MutationBatch>(m) ? "mutate" : "publish";
  return dump_nothrow(j);
}

// --- decoding ---

Result<ChangeMsg> decode_change(const Json& j) {
  return decode_change_from(JsonMembers(j));
}

Result<EventMsg> decode_event(const Json& j) {
  return decode_event_from(JsonMembers(j));
}

Result<HelloMsg> decode_hello(const Json& j) {
  return decode_hello_from(JsonMembers(j));
}

Result<ResetMsg> decode_reset(const Json& j) {
  return decode_reset_from(JsonMembers(j));
}

// One member of "ops": exactly one of {"increment": number, "min"?: number, "max"?: number} or
// {"serverTime": true}. Unknown members are refused here (unlike elsewhere): an operation this
// decoder does not know must not be mistaken for another one.
Result<FieldOp> decode_field_op(const Json& j, const std::string& path) {
  const auto bad = [&](const std::string& field, const std::string& message) {
    return make_error(codes::kInvalidRequest, message, field);
  };
  if (!j.is_object()) return bad(path, path + " must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k != "increment" && k != "min" && k != "max" && k != "serverTime") {
      return bad(join(path, k), path + "." + printable(k) + " is not part of a field operation (increment, min, max or serverTime)");
    }
  }
  const auto member = [&](const char* key) -> const Json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  const Json* inc = member("increment");
  const Json* st = member("serverTime");
  const Json* min = member("min");
  const Json* max = member("max");
  if (inc && st) return bad(path, path + " must hold one of increment or serverTime, not both");
  FieldOp op;
  if (st) {
    if (!st->is_boolean() || !st->get<bool>()) return bad(join(path, "serverTime"), path + ".serverTime must be true");
    if (min || max) {
      return bad(join(path, min ? "min" : "max"), path + "." + (min ? "min" : "max") + " belongs to an increment");
    }
    op.kind = FieldOp::Kind::ServerTime;
    return op;
  }
  if (!inc) return bad(path, path + " must hold increment or serverTime");
  if (!inc->is_number()) return bad(join(path, "increment"), path + ".increment must be a number");
  op.kind = FieldOp::Kind::Increment;
  op.by = *inc;
  if (min) {
    if (!min->is_number()) return bad(join(path, "min"), path + ".min must be a number");
    op.min = *min;
  }
  if (max) {
    if (!max->is_number()) return bad(join(path, "max"), path + ".max must be a number");
    op.max = *max;
  }
  if (min && max && compare_values(min, max) > 0) return bad(path, path + ".min must not be above max");
  return op;
}

// field_prefix is the path of the mutation object itself, e.g. "mutations[3]".
Result<Mutation> decode_mutation(const Json& j, const std::string& field_prefix) {
  auto r = json_reader(j, codes::kInvalidRequest, field_prefix);
  Mutation out;
  out.mid = r.int64("mid", 1, true);
  const std::string op = r.string("op", true);
  if (!r.failed()) {
    if (auto o = mutation_op_from_string(op)) {
      out.op = *o;
    } else {
      r.fail(r.path("op"), r.path("op") + " must be \"insert\", \"update\" or \"delete\"");
    }
  }
  out.collection = r.collection("collection", true);
  out.id = r.id("id", true);
  // An insert or update made of ops alone may leave fields out.
  const Json* ops_member = r.find("ops");
  const bool has_ops = ops_member && ops_member->is_object() && !ops_member->empty();
  out.fields = r.object("fields", !r.failed() && out.op != MutationOp::Delete && !has_ops);
  if (out.op == MutationOp::Delete) out.fields = Json::object();
  if (r.find("base_version")) out.base_version = r.int64("base_version", 0, true);
  const Json* group = r.find("group");
  const Json* group_size = r.find("group_size");
  if (group || group_size) {
    out.group = r.int64("group", 1, true);
    out.group_size = r.int64("group_size", 1, true);
    if (!r.failed() && (out.mid < *out.group || out.mid - *out.group >= out.group_size)) {
      r.fail(r.path("group"), r.path("group") + " " + std::to_string(*out.group) + " of size " +
                                  std::to_string(out.group_size) + " cannot hold mid " + std::to_string(out.mid));
    }
  }
  if (r.failed()) return r.error();

  if (const Json* ops = r.find("ops")) {
    const std::string path = r.path("ops");
    if (!ops->is_object()) return make_error(codes::kInvalidRequest, path + " must be an object", path);
    if (ops->size() > kMaxOpsPerMutation) {
      return make_error(codes::kInvalidRequest,
                        path + " holds more than " + std::to_string(kMaxOpsPerMutation) + " operations", path);
    }
    if (out.op == MutationOp::Delete && !ops->empty()) {
      return make_error(codes::kInvalidMutation, "a delete cannot carry ops", path);
    }
    for (auto it = ops->begin(); it != ops->end(); ++it) {
      const std::string at = path + "." + it.key();
      if (it.key().empty()) return make_error(codes::kInvalidRequest, path + " names an empty field", path);
      auto fo = decode_field_op(*it, at);
      if (!fo) return fo.error();
      if (out.fields.contains(it.key())) {
        return make_error(codes::kInvalidMutation, printable(it.key()) + " is named both in fields and in ops", at);
      }
      out.ops.emplace(it.key(), std::move(*fo));
    }
  }
  if (const Json* cond = r.find("if")) {
    const std::string path = r.path("if");
    if (!cond->is_string()) return make_error(codes::kInvalidRequest, path + " must be a filter string", path);
    if (out.op == MutationOp::Insert) {
      return make_error(codes::kInvalidMutation, "an insert cannot carry a condition", path);
    }
    auto f = Filter::parse(cond->get_ref<const std::string&>());
    if (!f) return make_error(codes::kInvalidRequest, path + ": " + f.error().message, path);
    out.condition = std::move(*f);
  }
  return out;
}

Result<MutationBatch> decode_mutation_batch(const Json& j, const DecodeLimits& limits) {
  auto r = json_reader(j, codes::kInvalidRequest, "");
  MutationBatch out;
  out.client = r.id("client", true);
  const Json* muts = r.array("mutations");
  if (r.failed()) return r.error();
  if (muts->empty()) return make_error(codes::kInvalidRequest, "mutations must not be empty", "mutations");
  if (muts->size() > limits.max_batch) {
    return make_error(codes::kPayloadTooLarge,
                      "batch of " + std::to_string(muts->size()) + " mutations exceeds the limit of " +
                          std::to_string(limits.max_batch),
                      "mutations");
  }
  out.mutations.reserve(muts->size());
  // The atomic group being read: its members must follow one another, mid after mid, from the
  // group's first mid until group_size of them were read.
  const Mutation* open = nullptr;
  std::int64_t open_count = 0;
  const auto group_error = [](const std::string& path, const std::string& message) {
    return make_error(codes::kInvalidRequest, message, path + ".group");
  };
  for (std::size_t i = 0; i < muts->size(); ++i) {
    const std::string path = indexed("mutations", i);
    auto m = decode_mutation((*muts)[i], path);
    if (!m) return m.error();
    if (!out.mutations.empty() && m->mid <= out.mutations.back().mid) {
      return make_error(codes::kInvalidRequest,
                        "mids must increase strictly within a batch: " + std::to_string(m->mid) +
                            " follows " + std::to_string(out.mutations.back().mid),
                        path + ".mid");
    }
    if (open) {
      if (m->group != open->group || m->group_size != open->group_size || m->mid != out.mutations.back().mid + 1) {
        return group_error(path, "group " + std::to_string(*open->group) + " has " + std::to_string(open_count) +
                                     " of its " + std::to_string(open->group_size) +
                                     " members here; a group's members travel together with consecutive mids");
      }
      ++open_count;
    } else if (m->group) {
      if (m->mid != *m->group) {
        return group_error(path, "group " + std::to_string(*m->group) + " must start with mid " +
                                     std::to_string(*m->group) + " in the batch");
      }
      open_count = 1;
    }
    out.mutations.push_back(std::move(m.value()));
    open = nullptr;
    if (out.mutations.back().group && open_count < out.mutations.back().group_size) open = &out.mutations.back();
    else open_count = 0;
  }
  if (open) {
    return group_error(indexed("mutations", muts->size() - 1),
                       "group " + std::to_string(*open->group) + " has " + std::to_string(open_count) + " of its " +
                           std::to_string(open->group_size) + " members; a group travels in one batch");
  }
  return out;
}

Result<MutationResults> decode_mutation_results(const Json& j) {
  return decode_mutation_results_from(JsonMembers(j));
}

Result<PublishRequest> decode_publish(const Json& j) {
  auto r = json_reader(j, codes::kInvalidRequest, "");
  PublishRequest out;
  out.name = r.event_name("name");
  out.collection = r.collection("collection", false);
  out.id = r.id("id", false);
  out.data = r.object("data", false);
  if (r.failed()) return r.error();
  return out;
}

Result<ErrorMsg> decode_error(const Json& j) {
  return decode_error_from(JsonMembers(j));
}

Result<ServerMessage> decode_server_message(std::string_view event_type, std::string_view data) {
  if (!is_known_server_type(event_type)) {
    return make_error(codes::kInvalidMessage, "unknown message type \"" + printable(event_type) + "\"", "type");
  }
  auto j = parse_text(data);
  if (!j) return j.error();
  return decode_server_json(event_type, JsonMembers(*j));
}

Result<ServerMessage> decode_server_ws(std::string_view frame) {
  auto parsed = parse_text(frame);
  if (!parsed) return parsed.error();
  return decode_server_frame(*parsed);
}

Result<ServerMessage> decode_server_frame(const Json& j) {
  if (!j.is_object()) return make_error(codes::kInvalidMessage, "frame must be a JSON object");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) {
    return make_error(codes::kInvalidMessage, "type must be a string", "type");
  }
  return decode_server_json(t->get_ref<const std::string&>(), JsonMembers(j));
}

// One pass over the text: each frame's members go into FrameSlots and through the same
// decoders as decode_server_frame; nothing else is built. The whole batch is read before the
// caller applies anything, so a syntax error anywhere rejects all of it, as a DOM parse would.
Result<std::vector<Result<ServerMessage>>> decode_server_batch(std::string_view text) {
  const auto bad = [] { return make_error(codes::kInvalidJson, "message batch must be a JSON array"); };
  JsonReader in(text);
  if (!in.consume('[')) return bad();
  std::vector<Result<ServerMessage>> out;
  FrameSlots slots;
  std::string key;
  for (bool first = true; in.next_element(first); first = false) {
    if (in.peek() != '{') {
      if (!in.skip_value()) return bad();
      out.emplace_back(make_error(codes::kInvalidMessage, "frame must be a JSON object"));
      continue;
    }
    in.consume('{');
    slots.clear();
    for (bool f = true; in.next_member(f, key); f = false) {
      Json* slot = slots.slot(key);
      if (!(slot ? in.parse_value(*slot) : in.skip_value())) return bad();
    }
    if (in.failed()) return bad();
    const Json* t = slots.get("type");
    if (!t || !t->is_string()) {
      out.emplace_back(make_error(codes::kInvalidMessage, "type must be a string", "type"));
      continue;
    }
    out.push_back(decode_server_json(t->get_ref<const std::string&>(), FrameMembers(slots)));
  }
  if (!in.at_end()) return bad();
  return out;
}

Result<ClientMessage> decode_client_ws(std::string_view frame, const DecodeLimits& limits) {
  auto parsed = parse_text(frame);
  if (!parsed) return parsed.error();
  const Json& j = *parsed;
  if (!j.is_object()) return make_error(codes::kInvalidRequest, "frame must be a JSON object");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) {
    return make_error(codes::kInvalidRequest, "type must be a string", "type");
  }
  const std::string& type = t->get_ref<const std::string&>();
  if (type == "mutate") return widen_client(decode_mutation_batch(j, limits));
  if (type == "publish") return widen_client(decode_publish(j));
  return make_error(codes::kInvalidRequest, "unknown message type \"" + printable(type) + "\"", "type");
}

Document change_to_document(const ChangeMsg& c) { return change_to_document(ChangeMsg(c)); }

Document change_to_document(ChangeMsg&& c) {
  Document d;
  d.collection = std::move(c.collection);
  d.id = std::move(c.id);
  d.version = c.version != 0 ? c.version : c.seq;
  if (c.op == ChangeOp::Delete) {
    d.deleted = true;
    d.fields = Json::object();
  } else {
    d.fields = c.fields.is_object() ? std::move(c.fields) : Json::object();
  }
  return d;
}

}  // namespace syncline
