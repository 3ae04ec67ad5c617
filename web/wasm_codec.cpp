#include "wasm_codec.hpp"

#include <algorithm>

namespace syncline::web {

Json error_json(const Error& e) {
  Json j = {{"code", e.code}, {"message", e.message}};
  if (!e.field.empty()) j["field"] = e.field;
  return j;
}

std::optional<Error> unknown_member(const Json& j, std::initializer_list<std::string_view> known, RegisteredCode code,
                                    const std::string& at) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      return make_error(code, "unknown member \"" + it.key() + "\"", at.empty() ? it.key() : at + "." + it.key());
    }
  }
  return std::nullopt;
}

namespace {

// A JSON string: names are plain ASCII almost always, written as they are; anything to escape
// goes through the serializer.
void append_string(std::string& out, const std::string& s) {
  for (char c : s) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      out += dump_nothrow(Json(s));
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

}  // namespace

// The changes as JSON text. With detail, each side's fields are the text the engine wrote.
std::string changes_text(const Engine& engine, const std::vector<DocChange>& changes) {
  const bool detail = engine.change_detail();
  std::string out = "[";
  const auto side = [&](const char* name, const std::optional<std::string>& v) {
    out += name;
    out += v ? *v : "null";
  };
  for (const auto& c : changes) {
    if (out.size() > 1) out += ',';
    out += R"({"collection":)";
    append_string(out, c.collection);
    out += R"(,"id":)";
    append_string(out, c.id);
    if (detail) {
      side(R"(,"before":)", c.before);
      side(R"(,"after":)", c.after);
      out += engine.is_pending(c.collection, c.id) ? R"(,"pending":true)" : R"(,"pending":false)";
    }
    out += '}';
  }
  out += ']';
  return out;
}

std::string EngineReply::dump() const {
  std::string rest_text = rest.dump();
  std::string text;
  text.reserve(changes.size() + rest_text.size() + 16);
  text += R"({"changes":)";
  text += changes;
  if (rest_text.size() > 2) {
    text += ',';
    text.append(rest_text, 1);
  } else {
    text += '}';
  }
  return text;
}

EngineReply output_to_json(const Engine& engine, EngineOutput&& out) {
  EngineReply o;
  o.changes = changes_text(engine, out.changes);
  Json& j = o.rest;
  j = Json::object();
  j["queries"] = Json(std::vector<int>(out.queries_changed.begin(), out.queries_changed.end()));
  j["aggregates"] = Json(std::vector<int>(out.aggregates_changed.begin(), out.aggregates_changed.end()));
  Json settled = Json::array();
  for (const auto& s : out.settled) {
    Json e = {{"mid", s.mid}, {"applied", s.applied}, {"collection", s.collection}, {"id", s.id}};
    if (s.applied) {
      e["seq"] = s.seq;
    } else {
      e["code"] = s.code;
      e["message"] = s.message;
      if (s.failed_mid != 0) e["failedMid"] = s.failed_mid;  // a group member: the one that failed
      if (s.current) e["current"] = *s.current;              // {"version","fields"} or null (absent)
    }
    settled.push_back(std::move(e));
  }
  j["settled"] = std::move(settled);
  Json events = Json::array();
  for (const auto& e : out.events) events.push_back(encode(e));
  j["events"] = std::move(events);
  j["needSnapshot"] = out.need_snapshot;
  j["cursor"] = engine.cursor();
  j["pending"] = engine.outbox().size();
  return o;
}

void PendingPersistence::merge(const EngineOutput& out) {
  docs.insert(out.dirty_docs.begin(), out.dirty_docs.end());
  outbox = outbox || out.outbox_dirty;
  meta = meta || out.meta_dirty;
  history = history || out.history_dirty;
}

Json persistence_to_json(const Engine& engine, const PendingPersistence& p) {
  Json j = Json::object();
  Json put = Json::array();
  Json del = Json::array();
  for (const auto& key : p.docs) {
    if (const Document* d = engine.base().find(key)) {
      put.push_back(document_to_json(*d));
    } else {
      del.push_back({{"collection", key.collection}, {"id", key.id}});
    }
  }
  j["putDocs"] = std::move(put);
  j["deleteDocs"] = std::move(del);
  if (p.outbox) j["outbox"] = engine.outbox().to_json();
  // The subscription the replica is built for, and whether it still needs a snapshot for it,
  // travel with the cursor: a replica belongs to a subscription (see Engine::restore_json).
  if (p.meta) {
    j["meta"] = {{"cursor", engine.cursor()},
                 {"clientId", engine.client_id()},
                 {"subscription", engine.subscription()},
                 {"needSnapshot", engine.needs_snapshot()}};
  }
  if (p.history) j["history"] = engine.history().to_json();
  return j;
}

static std::optional<std::vector<std::string>> path_of(const Json& j) {
  if (!j.is_string()) return std::nullopt;
  std::vector<std::string> path;
  std::string s = j.get<std::string>(), part;
  for (char c : s) {
    if (c == '.') {
      path.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  path.push_back(part);
  for (const auto& p : path) {
    if (p.empty()) return std::nullopt;
  }
  return path;
}

Result<std::vector<MutationRequest>> decode_requests(const Json& j) {
  if (!j.is_array()) return make_error(codes::kInvalidMutation, "mutations must be an array", "mutations");
  std::vector<MutationRequest> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const Json& m = j[i];
    std::string at = "mutations[" + std::to_string(i) + "]";
    if (!m.is_object()) return make_error(codes::kInvalidMutation, "mutation must be an object", at);
    MutationRequest r;
    auto op = m.find("op");
    auto op_v = (op != m.end() && op->is_string()) ? mutation_op_from_string(op->get<std::string>()) : std::nullopt;
    if (!op_v) return make_error(codes::kInvalidMutation, "op must be insert, update or delete", at + ".op");
    r.op = *op_v;
    auto c = m.find("collection");
    if (c == m.end() || !c->is_string()) return make_error(codes::kInvalidMutation, "collection must be a string", at + ".collection");
    r.collection = c->get<std::string>();
    auto id = m.find("id");
    if (id == m.end() || !id->is_string()) return make_error(codes::kInvalidMutation, "id must be a string", at + ".id");
    r.id = id->get<std::string>();
    if (auto f = m.find("fields"); f != m.end() && !f->is_null()) {
      if (!f->is_object()) return make_error(codes::kInvalidMutation, "fields must be an object", at + ".fields");
      r.fields = *f;
    } else if (r.op != MutationOp::Delete && !m.contains("ops")) {
      // An update made of ops alone ({"ops":{"stock":{"increment":-1}}}) needs no fields.
      return make_error(codes::kInvalidMutation, "fields are required", at + ".fields");
    }
    if (auto b = m.find("base_version"); b != m.end() && !b->is_null()) {
      if (!b->is_number_integer()) return make_error(codes::kInvalidMutation, "base_version must be an integer", at + ".base_version");
      r.base_version = b->get<std::int64_t>();
    }
    // Field operations in their wire form ({"stock":{"increment":-1,"min":0}}), read by the
    // protocol's own decoder so the two cannot disagree; Engine::mutate checks the rest.
    if (auto ops = m.find("ops"); ops != m.end() && !ops->is_null()) {
      if (!ops->is_object()) return make_error(codes::kInvalidMutation, "ops must be an object", at + ".ops");
      for (auto it = ops->begin(); it != ops->end(); ++it) {
        auto op = decode_field_op(*it, at + ".ops." + it.key());
        if (!op) return make_error(codes::kInvalidMutation, op.error().message, op.error().field);
        r.ops.emplace(it.key(), std::move(*op));
      }
    }
    if (auto c = m.find("if"); c != m.end() && !c->is_null()) {
      if (!c->is_string()) return make_error(codes::kInvalidMutation, "if must be a filter string", at + ".if");
      r.condition = c->get<std::string>();
    }
    out.push_back(std::move(r));
  }
  return out;
}

static Result<Filter> decode_where(const Json& j, RegisteredCode code) {
  auto w = j.find("where");
  if (w == j.end() || w->is_null()) return Filter{};
  if (!w->is_string()) return make_error(code, "where must be a filter string", "where");
  return Filter::parse(w->get<std::string>());
}

Result<QuerySpec> decode_query(const Json& j) {
  if (!j.is_object()) return make_error(codes::kInvalidQuery, "query must be an object");
  if (auto e = unknown_member(j, {"collection", "where", "orderBy", "limit"}, codes::kInvalidQuery)) return *e;
  QuerySpec spec;
  auto c = j.find("collection");
  if (c == j.end() || !c->is_string() || !is_valid_collection(c->get<std::string>())) {
    return make_error(codes::kInvalidQuery, "collection must be a valid collection name", "collection");
  }
  spec.collection = c->get<std::string>();
  auto where = decode_where(j, codes::kInvalidQuery);
  if (!where) return where.error();
  spec.where = std::move(*where);
  if (auto o = j.find("orderBy"); o != j.end() && !o->is_null()) {
    if (!o->is_string()) return make_error(codes::kInvalidQuery, "orderBy must be a string", "orderBy");
    auto ob = parse_order_by(o->get<std::string>());
    if (!ob) return ob.error();
    spec.order_by = *ob;
  }
  if (auto l = j.find("limit"); l != j.end() && !l->is_null()) {
    if (!l->is_number_integer() || l->get<std::int64_t>() < 0) {
      return make_error(codes::kInvalidQuery, "limit must be a non-negative integer", "limit");
    }
    spec.limit = l->get<std::size_t>();
  }
  return spec;
}

Result<AggregateSpec> decode_aggregate(const Json& j) {
  if (!j.is_object()) return make_error(codes::kInvalidQuery, "aggregate must be an object");
  if (auto e = unknown_member(j, {"collection", "where", "groupBy", "sum"}, codes::kInvalidQuery)) return *e;
  AggregateSpec spec;
  auto c = j.find("collection");
  if (c == j.end() || !c->is_string() || !is_valid_collection(c->get<std::string>())) {
    return make_error(codes::kInvalidQuery, "collection must be a valid collection name", "collection");
  }
  spec.collection = c->get<std::string>();
  auto where = decode_where(j, codes::kInvalidQuery);
  if (!where) return where.error();
  spec.where = std::move(*where);
  if (auto g = j.find("groupBy"); g != j.end() && !g->is_null()) {
    auto p = path_of(*g);
    if (!p) return make_error(codes::kInvalidQuery, "groupBy must be a field name", "groupBy");
    spec.group_by = *p;
  }
  if (auto s = j.find("sum"); s != j.end() && !s->is_null()) {
    auto p = path_of(*s);
    if (!p) return make_error(codes::kInvalidQuery, "sum must be a field name", "sum");
    spec.sum_of = *p;
  }
  return spec;
}

Result<Document> decode_document(Json&& dj, const std::string& at) {
  if (!dj.is_object()) return make_error(codes::kInvalidMessage, "document must be an object", at);
  auto c = dj.find("collection");
  auto id = dj.find("id");
  auto ver = dj.find("version");
  auto fields = dj.find("fields");
  if (c == dj.end() || !c->is_string() || !is_valid_collection(c->get<std::string>())) {
    return make_error(codes::kInvalidMessage, "collection missing or invalid", at + ".collection");
  }
  if (id == dj.end() || !id->is_string() || !is_valid_id(id->get<std::string>())) {
    return make_error(codes::kInvalidMessage, "id missing or invalid", at + ".id");
  }
  if (ver == dj.end() || !ver->is_number_integer()) {
    return make_error(codes::kInvalidMessage, "version must be an integer", at + ".version");
  }
  if (fields == dj.end() || !fields->is_object()) {
    return make_error(codes::kInvalidMessage, "fields must be an object", at + ".fields");
  }
  bool deleted = false;
  if (auto del = dj.find("deleted"); del != dj.end() && !del->is_null()) {
    if (!del->is_boolean()) return make_error(codes::kInvalidMessage, "deleted must be a boolean", at + ".deleted");
    deleted = del->get<bool>();
  }
  // Checked in full first: the fields move out of the caller's value only once it is valid.
  return Document{std::move(c->get_ref<std::string&>()), std::move(id->get_ref<std::string&>()), ver->get<std::int64_t>(),
                  std::move(*fields), deleted};
}

}  // namespace syncline::web
