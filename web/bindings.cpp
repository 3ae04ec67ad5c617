// Layer: web/ (Emscripten bindings). Depends on src/core; nothing in src/core depends on it.
// The bound surface is deliberately small and batch-oriented: every call takes and returns
// one JSON text (or bytes), so a batch of 1,000 server messages is one crossing, not 1,000.
// Every method returns either a result object or {"error":{"code","message","field"?}};
// the JS layer turns the latter into a SyncError. Nothing here throws into JS.
// Texts are parsed with parse_json_fast (src/core/json_reader), which accepts and builds
// exactly what parse_json_nothrow does: it is faster, and with no call left to nlohmann's
// own text parser the linker drops that parser from the wasm.
#include <emscripten/bind.h>
#include <emscripten/val.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/backoff.hpp"
#include "core/connection.hpp"
#include "core/base_image.hpp"
#include "core/engine.hpp"
#include "core/json_reader.hpp"
#include "wasm_codec.hpp"

using namespace emscripten;
using namespace syncline;
using syncline::web::error_json;

namespace {

std::string err(const Error& e) { return Json{{"error", error_json(e)}}.dump(); }
std::string err(RegisteredCode code, const std::string& message, const std::string& field = {}) {
  return err(make_error(code, message, field));
}

template <typename F>
std::string guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& ex) {
    return err(codes::kInternal, ex.what());
  } catch (...) {
    return err(codes::kInternal, "unknown failure");
  }
}

// A JS number that must be a whole number of milliseconds (or a count) in [min, max]: the range
// check comes first because casting a double outside int64 is undefined.
bool whole_in(const Json& v, double min, double max, std::int64_t& out) {
  if (!v.is_number()) return false;
  const double d = v.get<double>();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<std::int64_t>(d))) return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

// Beyond this a double no longer holds every integer: the bound of every number JS passes in.
constexpr double kMaxSafe = 9007199254740991.0;

// Engine options, as engine.ts builds them (EngineOptions there). See web::unknown_member for
// the decoding rules: unknown members are refused, null counts as absent.
Result<EngineOptions> decode_options(const std::string& text) {
  Json j = parse_json_fast(text);
  if (j.is_discarded() || !j.is_object()) return make_error(codes::kInvalidJson, "options must be a JSON object");
  if (auto e = web::unknown_member(j, {"clientId", "collections", "where", "nowMs", "historyLimit", "maxBatch",
                                       "requestTimeoutMs"},
                                   codes::kInvalidRequest)) {
    return *e;
  }
  auto given = [&](const char* name) {
    auto it = j.find(name);
    return it != j.end() && !it->is_null() ? &*it : nullptr;
  };
  EngineOptions o;
  const Json* c = given("clientId");
  if (!c || !c->is_string() || !is_valid_id(c->get<std::string>())) {
    return make_error(codes::kInvalidRequest, "clientId must be a valid id", "clientId");
  }
  o.client_id = c->get<std::string>();
  if (const Json* cs = given("collections")) {
    if (!cs->is_array()) return make_error(codes::kInvalidRequest, "collections must be an array", "collections");
    for (std::size_t i = 0; i < cs->size(); ++i) {
      const Json& name = (*cs)[i];
      if (!name.is_string() || !is_valid_collection(name.get<std::string>())) {
        return make_error(codes::kInvalidRequest, "invalid collection name", "collections[" + std::to_string(i) + "]");
      }
      o.collections.push_back(name.get<std::string>());
    }
  }
  if (const Json* w = given("where")) {
    if (!w->is_string()) return make_error(codes::kInvalidRequest, "where must be a filter string", "where");
    auto f = Filter::parse(w->get<std::string>());
    if (!f) return f.error();
    o.where = w->get<std::string>();
  }
  std::int64_t n = 0;
  if (const Json* t = given("nowMs")) {
    if (!whole_in(*t, -kMaxSafe, kMaxSafe, n)) return make_error(codes::kInvalidRequest, "nowMs must be a whole number of ms", "nowMs");
    o.now_ms = n;
  }
  if (const Json* h = given("historyLimit")) {
    if (!whole_in(*h, 0, 100000, n)) {
      return make_error(codes::kInvalidRequest, "historyLimit must be an integer in [0, 100000]", "historyLimit");
    }
    o.history_limit = static_cast<std::size_t>(n);
  }
  if (const Json* b = given("maxBatch")) {
    if (!whole_in(*b, 1, kMaxSafe, n)) return make_error(codes::kInvalidRequest, "maxBatch must be a positive integer", "maxBatch");
    o.max_batch = static_cast<std::size_t>(n);
  }
  if (const Json* t = given("requestTimeoutMs")) {
    if (!whole_in(*t, 1, kMaxSafe, n)) {
      return make_error(codes::kInvalidRequest, "requestTimeoutMs must be a positive integer", "requestTimeoutMs");
    }
    o.request_timeout_ms = n;
  }
  return o;
}

// A time or count passed from JS as a plain number (not JSON): NaN, infinities and values beyond
// the safe range cannot come from Date.now() or a counter; they are clamped instead of cast
// (casting them is undefined behaviour), and the JS facades refuse them before they get here.
std::int64_t to_int(double v) {
  if (!(v == v)) return 0;
  return static_cast<std::int64_t>(std::clamp(v, -kMaxSafe, kMaxSafe));
}

// A buffer in the wasm heap that JS writes UTF-8 into (TextEncoder.encodeInto) before a call
// reads it. It grows as needed (release() gives it back); its address stays valid until the
// next reserve() or release().
class InputBuffer {
 public:
  std::uintptr_t reserve(std::size_t size) {
    if (size > capacity_) {
      capacity_ = std::max(size, capacity_ * 2);
      data_ = std::make_unique<char[]>(capacity_);
    }
    return reinterpret_cast<std::uintptr_t>(data_.get());
  }
  void release() {
    data_.reset();
    capacity_ = 0;
  }
  void release_above(std::size_t bytes) {
    if (capacity_ > bytes) release();
  }
  // The first `length` bytes, or nullopt past the capacity.
  std::optional<std::string_view> view(std::size_t length) const {
    if (length > capacity_) return std::nullopt;
    return std::string_view(data_.get(), length);
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
};

class WasmEngine {
  static constexpr std::size_t kKeptInputBytes = 1 << 20;

 public:
  explicit WasmEngine(std::unique_ptr<Engine> e) : engine_(std::move(e)) {}


  // The batch is a JSON array of mutations, or {"mutations":[...],"atomic":true} for one atomic
  // group (applied all or none by the server). Returns the output with "mids", or an error.
  val mutate(const std::string& batch_text, double now) {
    return reply(guarded([&] {
      Json j = parse_json_fast(batch_text);
      if (j.is_discarded()) return err(codes::kInvalidJson, "mutation batch is not valid JSON");
      bool atomic = false;
      if (j.is_object()) {
        if (auto a = j.find("atomic"); a != j.end() && !a->is_null()) {
          if (!a->is_boolean()) return err(codes::kInvalidMutation, "atomic must be a boolean", "atomic");
          atomic = a->get<bool>();
        }
        auto ms = j.find("mutations");
        if (ms == j.end()) return err(codes::kInvalidMutation, "mutations must be an array", "mutations");
        Json list = std::move(*ms);
        j = std::move(list);
      }
      auto reqs = web::decode_requests(j);
      if (!reqs) return err(reqs.error());
      auto mids = engine_->mutate(*reqs, to_int(now), atomic);
      if (!mids) return err(mids.error());
      web::EngineReply out = output();
      out["mids"] = *mids;
      return out.dump();
    }));
  }

  // Bytes in instead of a JS string: the JS side writes the input's UTF-8 straight into this
  // buffer in the wasm heap (TextEncoder.encodeInto) and calls receiveInput or
  // applySnapshotInput with its length. That skips Embind's std::string conversion, a JS loop
  // slower than JSON.parse itself. The returned address stays valid until the next
  // inputBuffer() call, but the JS heap view must be re-read after this call because the
  // allocation may grow the memory.
  std::uintptr_t input_buffer(std::size_t size) { return input_.reserve(size); }
  // A JSON array of server messages, each an object with "type" (WebSocket frame form).
  // Malformed entries are reported in "errors" with their index; the others still apply.
  val receive_input(std::size_t length, double now) {
    return from_input(length, [&](std::string_view text) { return receive_text(text, now); });
  }
  // {"collections":[...], "docs":[document...], "seq":N}
  val apply_snapshot_input(std::size_t length, double now) {
    return from_input(length, [&](std::string_view text) { return apply_snapshot_text(text, now); });
  }

 private:
  std::string apply_snapshot_text(std::string_view text, double now) {
    return guarded([&] {
      Json j = parse_json_fast(text);
      if (j.is_discarded() || !j.is_object()) return err(codes::kInvalidJson, "snapshot must be a JSON object");
      auto seq = j.find("seq");
      auto docs = j.find("docs");
      std::int64_t at_seq = 0;
      if (seq == j.end() || !json_as_int64(*seq, at_seq) || at_seq < 0) {
        return err(codes::kInvalidMessage, "seq must be an integer >= 0", "seq");
      }
      if (docs == j.end() || !docs->is_array()) return err(codes::kInvalidMessage, "docs must be an array", "docs");
      std::vector<std::string> colls;
      if (auto c = j.find("collections"); c != j.end() && !c->is_null()) {
        if (!c->is_array()) return err(codes::kInvalidMessage, "collections must be an array", "collections");
        for (std::size_t i = 0; i < c->size(); ++i) {
          const Json& n = (*c)[i];
          if (!n.is_string() || !is_valid_collection(n.get<std::string>())) {
            return err(codes::kInvalidMessage, "invalid collection name", "collections[" + std::to_string(i) + "]");
          }
          colls.push_back(n.get<std::string>());
        }
      }
      std::vector<Document> list;
      list.reserve(docs->size());
      for (std::size_t i = 0; i < docs->size(); ++i) {
        auto d = web::decode_document(std::move((*docs)[i]), "docs[" + std::to_string(i) + "]");
        if (!d) return err(d.error());
        list.push_back(std::move(*d));
      }
      engine_->apply_snapshot(colls, std::move(list), at_seq, to_int(now));
      return output().dump();
    });
  }

 public:
  // The next mutation batch to send as a JSON request body, or "" when there is none.
  // Only mids below durable_next_mid are taken (see Engine::take_batch).
  std::string take_batch(double now, double durable_next_mid) {
    return guarded([&]() -> std::string {
      auto b = engine_->take_batch(to_int(now), to_int(durable_next_mid));
      return b ? encode(*b).dump() : std::string();
    });
  }
  void batch_failed() { engine_->on_batch_failed(); }
  val mark_all_dirty() {
    return reply(guarded([&] {
      engine_->mark_all_dirty();
      return output().dump();
    }));
  }
  void set_transport_ready(bool ready) { engine_->set_transport_ready(ready); }
  // Whether replies carry before/after/pending for every changed document (the default) or
  // only its collection and id; see Engine::set_change_detail.
  void set_change_detail(bool detail) { engine_->set_change_detail(detail); }
  val tick(double now) {
    return reply(guarded([&] {
      engine_->tick(to_int(now));
      return output().dump();
    }));
  }
  // Other tabs' pending writes (see Engine::add_foreign), as one batch of operations in the
  // order the tabs sent them: [{"op":"add"|"replace","client":..,"mutations":[wire mutation..]},
  // {"op":"drop","client":..,"mids":[..]}]. One crossing and one output for the whole batch, so
  // a tab catching up on hundreds of messages refreshes its queries once.
  val foreign(const std::string& text, double now) {
    return reply(guarded([&] {
      Json ops = parse_json_fast(text);
      if (ops.is_discarded() || !ops.is_array()) return err(codes::kInvalidJson, "foreign operations must be a JSON array");
      const auto t = to_int(now);
      for (std::size_t i = 0; i < ops.size(); ++i) {
        const Json& o = ops[i];
        const std::string at = "[" + std::to_string(i) + "]";
        if (!o.is_object()) return err(codes::kInvalidRequest, "each operation must be an object", at);
        auto op = o.find("op");
        auto client = o.find("client");
        if (op == o.end() || !op->is_string() || (*op != "add" && *op != "replace" && *op != "drop")) {
          return err(codes::kInvalidRequest, "op must be add, replace or drop", at + ".op");
        }
        if (client == o.end() || !client->is_string() || !is_valid_id(client->get<std::string>())) {
          return err(codes::kInvalidRequest, "client must be a valid client id", at + ".client");
        }
        const std::string& name = client->get_ref<const std::string&>();
        if (*op == "drop") {
          auto m = o.find("mids");
          if (m == o.end() || !m->is_array()) return err(codes::kInvalidRequest, "mids must be an array", at + ".mids");
          std::vector<std::int64_t> mids;
          for (std::size_t k = 0; k < m->size(); ++k) {
            std::int64_t mid = 0;
            if (!json_as_int64((*m)[k], mid) || mid < 1) {
              return err(codes::kInvalidRequest, "mids must be integers >= 1", at + ".mids[" + std::to_string(k) + "]");
            }
            mids.push_back(mid);
          }
          engine_->drop_foreign(name, mids);
          continue;
        }
        auto ms = o.find("mutations");
        if (ms == o.end() || !ms->is_array()) return err(codes::kInvalidRequest, "mutations must be an array", at + ".mutations");
        std::vector<Mutation> list;
        list.reserve(ms->size());
        for (std::size_t k = 0; k < ms->size(); ++k) {
          auto m = decode_mutation((*ms)[k], at + ".mutations[" + std::to_string(k) + "]");
          if (!m) return err(m.error());
          list.push_back(std::move(*m));
        }
        if (*op == "replace") engine_->replace_foreign(name, std::move(list), t);
        else engine_->add_foreign(name, std::move(list), t);
      }
      return output().dump();
    }));
  }
  // The stream whose frames this engine receives is of this subscription ({"collections",
  // "where"}; null: unknown): see Engine::follow_subscription. A subscription of the wrong shape
  // is an error; a well-formed one whose `where` this version does not parse (announced by a tab
  // running another version) counts as unknown, which is always safe (the replica then fetches
  // snapshots of its own).
  val follow_subscription(const std::string& text, double now) {
    return reply(guarded([&] {
      Json j = parse_json_fast(text);
      if (j.is_discarded()) return err(codes::kInvalidJson, "subscription is not valid JSON", "subscription");
      std::optional<Json> upstream;
      if (!j.is_null()) {
        if (auto bad = subscription_shape_error(j, codes::kInvalidRequest)) return err(*bad);
        upstream = std::move(j);
      }
      engine_->follow_subscription(upstream, to_int(now));
      return output().dump();
    }));
  }
  // This engine's subscription in canonical form (what the leader announces to its followers).
  val subscription() const {
    return reply(guarded([&] { return engine_->subscription().dump(); }));
  }
  val record(const std::string& type, const std::string& data_text, double now) {
    return reply(guarded([&] {
      if (type.empty()) return err(codes::kInvalidRequest, "a history entry needs a type", "type");
      Json data = parse_json_fast(data_text);
      if (data.is_discarded() || !data.is_object()) {
        return err(codes::kInvalidRequest, "history entry data must be a JSON object", "data");
      }
      engine_->record(HistoryEntry{to_int(now), type, 0, {}, {}, std::move(data)});
      return output().dump();
    }));
  }

  // A visible document as JS sees it: the stored form plus whether it holds a pending write.
  Json visible_json(const Document& d) const {
    Json j = document_to_json(d);
    j["pending"] = engine_->is_pending(d.collection, d.id);
    return j;
  }

  val get(const std::string& collection, const std::string& id) const {
    return reply(guarded([&] {
      const Document* d = engine_->get(collection, id);
      if (!d) return std::string("null");
      return visible_json(*d).dump();
    }));
  }
  val documents(const std::string& collection) const {
    return reply(guarded([&] {
      Json list = Json::array();
      for (const auto& d : engine_->documents(collection)) list.push_back(visible_json(d));
      return list.dump();
    }));
  }

  val add_query(const std::string& spec_text) {
    return reply(guarded([&] {
      Json j = parse_json_fast(spec_text);
      if (j.is_discarded()) return err(codes::kInvalidJson, "query spec is not valid JSON");
      auto spec = web::decode_query(j);
      if (!spec) return err(spec.error());
      return Json{{"id", engine_->add_query(std::move(*spec))}}.dump();
    }));
  }
  void remove_query(int id) { engine_->remove_query(id); }
  val query_result(int id) const {
    return reply(guarded([&] {
      auto r = engine_->query_result(id);
      if (!r) return err(r.error());
      Json list = Json::array();
      for (const auto& d : *r) list.push_back(visible_json(d));
      return Json{{"docs", std::move(list)}, {"total", *engine_->query_total(id)}}.dump();
    }));
  }
  val query_ids(int id) const {
    return reply(guarded([&] {
      auto ids = engine_->query_ids(id);
      if (!ids) return err(ids.error());
      return Json{{"ids", std::move(*ids)}, {"total", *engine_->query_total(id)}}.dump();
    }));
  }
  // The visible documents of `collection` named by a JSON array of ids, in that order (null for
  // one that is not visible): one call for every document a query refresh needs.
  val get_many(const std::string& collection, const std::string& ids_text) const {
    return reply(guarded([&] {
      Json ids = parse_json_fast(ids_text);
      if (!ids.is_array()) return err(codes::kInvalidJson, "ids must be a JSON array of strings");
      Json list = Json::array();
      for (const Json& id : ids) {
        if (!id.is_string()) return err(codes::kInvalidJson, "ids must be a JSON array of strings");
        const std::string& s = id.get_ref<const std::string&>();
        const Document* d = engine_->get(collection, s);
        if (!d) {
          list.push_back(nullptr);
          continue;
        }
        list.push_back(visible_json(*d));
      }
      return list.dump();
    }));
  }
  val add_aggregate(const std::string& spec_text) {
    return reply(guarded([&] {
      Json j = parse_json_fast(spec_text);
      if (j.is_discarded()) return err(codes::kInvalidJson, "aggregate spec is not valid JSON");
      auto spec = web::decode_aggregate(j);
      if (!spec) return err(spec.error());
      return Json{{"id", engine_->add_aggregate(std::move(*spec))}}.dump();
    }));
  }
  void remove_aggregate(int id) { engine_->remove_aggregate(id); }
  val aggregate_result(int id) const {
    return reply(guarded([&] {
      const GroupedAggregate* a = engine_->aggregate(id);
      if (!a) return err(codes::kUnknownQuery, "no aggregate " + std::to_string(id));
      Json groups = Json::object();
      for (const auto& [key, t] : a->groups()) groups[key] = {{"count", t.count}, {"sum", t.sum}};
      GroupTotals total = a->total();
      return Json{{"groups", std::move(groups)}, {"total", {{"count", total.count}, {"sum", total.sum}}}}.dump();
    }));
  }

  val history() const {
    return reply(guarded([&] { return engine_->history().to_json().dump(); }));
  }
  // The cursor alone, as a number: read after every frame batch, so no JSON round trip.
  double cursor() const { return static_cast<double>(engine_->cursor()); }
  val state() const {
    return reply(guarded([&] {
      return Json{{"clientId", engine_->client_id()},
                  {"cursor", engine_->cursor()},
                  {"pending", engine_->outbox().size()},
                  // The other tabs' pending writes this view shows (their own outboxes).
                  {"foreignPending", engine_->foreign().size()},
                  {"unacknowledged", engine_->outbox().unacknowledged_count()},
                  {"inFlight", engine_->in_flight()},
                  {"needSnapshot", engine_->needs_snapshot()},
                  {"nextMid", engine_->outbox().next_mid()}}
          .dump();
    }));
  }
  // Storage work accumulated since the last call, as one batch.
  // with_history false: the history stays pending (it is written whole, so the runtime writes it
  // at most every so often instead of with every batch); the batch then says "historyHeld".
  // with_image: the caller stores the base replica as one image (baseImage(), read right after
  // this call) in the same transaction instead of document records.
  val take_persistence(bool with_history, bool with_image) {
    return reply(guarded([&] {
      web::PendingPersistence taken = std::move(persist_);
      persist_ = {};
      if (with_image) {
        // The image holds every document: none is written as a record, and the meta (cursor,
        // subscription) comes along whatever changed, since the records it replaces carried it.
        taken.docs.clear();
        taken.meta = true;
      }
      const bool held = taken.history && !with_history;
      if (held) taken.history = false;
      Json j = web::persistence_to_json(*engine_, taken);
      persist_.history = held;
      if (held) j["historyHeld"] = true;
      return j.dump();
    }));
  }
  // What a write would hold: documents marked dirty, and documents stored (tombstones too).
  double dirty_docs() const { return static_cast<double>(persist_.docs.size()); }
  double stored_docs() const { return static_cast<double>(engine_->base().size()); }
  // Every stored document (tombstones too) as one JSON array (encode_base_image).
  val base_image() const {
    return reply(guarded([&] { return encode_base_image(engine_->base()); }));
  }
  // The whole state as CBOR bytes (Uint8Array copy, safe after heap growth).
  val snapshot_bytes() const {
    std::string bytes = engine_->snapshot_bytes();
    val view = val(typed_memory_view(bytes.size(), reinterpret_cast<const unsigned char*>(bytes.data())));
    return val::global("Uint8Array").new_(view);
  }

 private:
  // Replies leave as a view of this string in the wasm heap (a Uint8Array the JS side decodes
  // with one TextDecoder pass) instead of an Embind std::string, whose conversion scans the
  // bytes twice in a JS loop before decoding them. The view is valid until the next reply or
  // heap growth: the caller decodes it at once (engine.ts, SyncEngine.reply).
  val reply(std::string text) const {
    reply_ = std::move(text);
    return val(typed_memory_view(reply_.size(), reinterpret_cast<const unsigned char*>(reply_.data())));
  }


  // Runs `f` on the first `length` bytes of the input buffer; a snapshot's worth of buffer is
  // given back afterwards, a frame batch's is kept for the next call.
  template <typename F>
  val from_input(std::size_t length, F&& f) {
    auto text = input_.view(length);
    if (!text) return reply(err(codes::kInvalidJson, "input length exceeds the input buffer"));
    std::string out = f(*text);
    input_.release_above(kKeptInputBytes);
    return reply(std::move(out));
  }

 public:
  // JS frees a large reply once decoded: a replica's worth of documents must not stay in the
  // heap until the next call.
  void release_reply() { std::string().swap(reply_); }

 private:
  web::EngineReply output() {
    EngineOutput out = engine_->take_output();
    persist_.merge(out);
    web::EngineReply o = web::output_to_json(*engine_, std::move(out));
    o["persist"] = !persist_.empty();
    return o;
  }

  // Decodes the whole batch first (a syntax error anywhere applies nothing), then applies the
  // frames in order; decode_server_batch builds no DOM of the batch (src/core/protocol.hpp).
  std::string receive_text(std::string_view batch_text, double now) {
    return guarded([&] {
      auto frames = decode_server_batch(batch_text);
      if (!frames) return err(frames.error());
      Json errors = Json::array();
      for (std::size_t i = 0; i < frames->size(); ++i) {
        Result<ServerMessage>& m = (*frames)[i];
        if (!m) {
          Json e = error_json(m.error());
          e["index"] = i;
          errors.push_back(std::move(e));
          continue;
        }
        engine_->receive(std::move(*m), to_int(now));
      }
      web::EngineReply out = output();
      out["errors"] = std::move(errors);
      return out.dump();
    });
  }

  std::unique_ptr<Engine> engine_;
  web::PendingPersistence persist_;
  InputBuffer input_;
  mutable std::string reply_;
};

// create(options) -> {"handle": WasmEngine} is awkward in Embind; instead a factory returns
// the engine or null and the error text is read from last_error().
std::string g_last_error;

// The three factories share one path: decode the options, build the engine, and on any
// failure leave the error text for _lastError() and return null.
template <typename Build>
WasmEngine* make_engine(const std::string& options_text, Build build) {
  g_last_error.clear();
  auto o = decode_options(options_text);
  if (!o) {
    g_last_error = err(o.error());
    return nullptr;
  }
  try {
    Result<std::unique_ptr<Engine>> e = build(std::move(*o));
    if (!e) {
      g_last_error = err(e.error());
      return nullptr;
    }
    return new WasmEngine(std::move(*e));
  } catch (const std::exception& ex) {
    g_last_error = err(codes::kInvalidSnapshot, ex.what());
    return nullptr;
  }
}

WasmEngine* create_engine(const std::string& options_text) {
  return make_engine(options_text, [](EngineOptions o) -> Result<std::unique_ptr<Engine>> {
    return std::make_unique<Engine>(std::move(o));
  });
}

WasmEngine* restore_engine(const std::string& bytes, const std::string& options_text) {
  return make_engine(options_text, [&](EngineOptions o) { return Engine::restore(bytes, std::move(o)); });
}

// The base replica image a restore reads (restoreBuffer, then restoreEngineJson with its
// length): its bytes go from storage to the wasm heap in one copy, not through a JS string.
InputBuffer g_restore_input;
std::uintptr_t restore_buffer(std::size_t size) { return g_restore_input.reserve(size); }

// The state as JSON parts: {"v":1,"client","cursor","docs":[...],"outbox":{...},"history":{...}},
// and, with image_length > 0, the base image in the restore buffer (docs: what changed since).
WasmEngine* restore_engine_json(const std::string& state_text, const std::string& options_text, std::size_t image_length) {
  WasmEngine* e = make_engine(options_text, [&](EngineOptions o) -> Result<std::unique_ptr<Engine>> {
    Json state = parse_json_fast(state_text);
    if (state.is_discarded()) return make_error(codes::kInvalidSnapshot, "saved state is not valid JSON");
    std::string_view image;
    if (image_length > 0) {
      auto v = g_restore_input.view(image_length);
      if (!v) return make_error(codes::kInvalidSnapshot, "image length exceeds the restore buffer", "image");
      image = *v;
    }
    return Engine::restore_json(state, std::move(o), image);
  });
  g_restore_input.release();  // read once; not kept for the page's lifetime
  return e;
}

std::string last_error() { return g_last_error; }

std::string parse_filter(const std::string& text) {
  return guarded([&] {
    auto f = Filter::parse(text);
    if (!f) return err(f.error());
    return Json{{"canonical", f->to_string()}}.dump();
  });
}

// Decodes a JSON array and returns how many elements it has: lets benchmarks measure the
// wasm JSON decoder of the receive path (JsonReader, building the whole value) against
// JSON.parse on the same bytes.
int json_decode_count(const std::string& text) {
  Json j = parse_json_fast(text);
  if (j.is_discarded()) return -1;
  return j.is_array() ? static_cast<int>(j.size()) : 1;
}

// Benchmarks: the receive path's decoder alone over bytes already in the wasm heap. JS writes a
// batch `[frame,...]` of UTF-8 into decode_buffer(size) and decode_server_input(length) runs
// decode_server_batch on it, what receiveInput does before the engine applies anything. The
// number of frames decoded without error, or -1 when the batch is not a JSON array.
InputBuffer g_decode_input;
std::uintptr_t decode_buffer(std::size_t size) { return g_decode_input.reserve(size); }
int decode_server_input(std::size_t length) {
  auto text = g_decode_input.view(length);
  if (!text) return -1;
  auto frames = decode_server_batch(*text);
  if (!frames) return -1;
  int ok = 0;
  for (const auto& m : *frames) ok += m ? 1 : 0;
  return ok;
}

// The allocator's view of the heap, for benchmarks: bytes in live allocations (mallinfo) and
// the top of the heap (sbrk(0)), the address memory growth has to cover. The size of the wasm
// memory alone misses what the allocator holds free below its top.
std::string heap_stats() {
  const struct mallinfo mi = mallinfo();
  return Json{{"inUse", static_cast<std::uint64_t>(mi.uordblks)},
              {"top", static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(sbrk(0)))}}
      .dump();
}

// The registry of error codes as this module was compiled with it: [{"code","status"}], status
// null when never an HTTP answer. tests/js-wrapper/error-codes.test.mjs checks it against the .def.
std::string error_codes() {
  Json out = Json::array();
  for (ErrorCode c : all_error_codes()) {
    int status = http_status(c);
    out.push_back({{"code", std::string(to_string(c))}, {"status", status ? Json(status) : Json(nullptr)}});
  }
  return out.dump();
}

// A policy from JS numbers: connection-machine.ts and retry-backoff.ts refuse non-finite or
// negative values first; here they are clamped so nothing undefined can happen either way.
BackoffPolicy policy_of(double base_ms, double cap_ms, double heartbeat_ms) {
  BackoffPolicy p;
  p.base_ms = std::max<std::int64_t>(0, to_int(base_ms));
  p.cap_ms = std::max<std::int64_t>(0, to_int(cap_ms));
  p.heartbeat_timeout_ms = to_int(heartbeat_ms);
  return p;
}
std::uint64_t seed_of(double seed) { return static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_int(seed))); }

// The connection machine (src/core/connection.hpp). Every input answers one JSON object:
// {"action":"open"|"close"|"none","state","attempt","online","lastError","backoffMs","deadline"}
// (deadline: when tick() is due, null: no timer); connection-machine.ts decodes it.
class WasmConnection {
 public:
  WasmConnection(double base_ms, double cap_ms, double heartbeat_ms, double seed)
      : m_(policy_of(base_ms, cap_ms, heartbeat_ms), seed_of(seed)) {}
  std::string start(double now) { return act(m_.start(to_int(now))); }
  std::string stop(double now) { return act(m_.stop(to_int(now))); }
  std::string on_open(double now) { return act(m_.on_open(to_int(now))); }
  std::string on_message(double now) { return act(m_.on_message(to_int(now))); }
  std::string on_failure(double now, const std::string& reason, bool fatal) {
    return act(m_.on_failure(to_int(now), reason, fatal));
  }
  std::string set_online(bool online, double now) { return act(m_.set_online(online, to_int(now))); }
  std::string retry_now(double now) { return act(m_.retry_now(to_int(now))); }
  std::string tick(double now) { return act(m_.tick(to_int(now))); }

 private:
  std::string act(ConnectionAction a) {
    const char* action = a == ConnectionAction::Open ? "open" : a == ConnectionAction::Close ? "close" : "none";
    Json j = {{"action", action},
              {"state", to_string(m_.state())},
              {"attempt", m_.attempt()},
              {"online", m_.online()},
              {"lastError", m_.last_error()},
              {"backoffMs", m_.backoff_delay_ms()}};
    auto d = m_.next_deadline();
    j["deadline"] = d ? Json(*d) : Json(nullptr);
    return j.dump();
  }
  ConnectionMachine m_;
};

// The retry delays of any other loop (src/core/backoff.hpp): the same full jitter as the
// connection machine. Plain numbers in and out, no JSON: nothing to decode.
class WasmRetryBackoff {
 public:
  WasmRetryBackoff(double base_ms, double cap_ms, double seed) : b_(policy_of(base_ms, cap_ms, 0), seed_of(seed)) {}
  double next_delay_ms() { return static_cast<double>(b_.next_delay_ms()); }
  void reset() { b_.reset(); }
  int failures() const { return b_.failures(); }

 private:
  RetryBackoff b_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(syncline) {
  class_<WasmEngine>("Engine")
      .function("mutate", &WasmEngine::mutate)
      .function("inputBuffer", &WasmEngine::input_buffer)
      .function("receiveInput", &WasmEngine::receive_input)
      .function("applySnapshotInput", &WasmEngine::apply_snapshot_input)
      .function("takeBatch", &WasmEngine::take_batch)
      .function("batchFailed", &WasmEngine::batch_failed)
      .function("markAllDirty", &WasmEngine::mark_all_dirty)
      .function("setTransportReady", &WasmEngine::set_transport_ready)
      .function("setChangeDetail", &WasmEngine::set_change_detail)
      .function("tick", &WasmEngine::tick)
      .function("foreign", &WasmEngine::foreign)
      .function("record", &WasmEngine::record)
      .function("followSubscription", &WasmEngine::follow_subscription)
      .function("subscription", &WasmEngine::subscription)
      .function("get", &WasmEngine::get)
      .function("documents", &WasmEngine::documents)
      .function("addQuery", &WasmEngine::add_query)
      .function("removeQuery", &WasmEngine::remove_query)
      .function("queryResult", &WasmEngine::query_result)
      .function("queryIds", &WasmEngine::query_ids)
      .function("getMany", &WasmEngine::get_many)
      .function("addAggregate", &WasmEngine::add_aggregate)
      .function("removeAggregate", &WasmEngine::remove_aggregate)
      .function("aggregateResult", &WasmEngine::aggregate_result)
      .function("history", &WasmEngine::history)
      .function("state", &WasmEngine::state)
      .function("cursor", &WasmEngine::cursor)
      .function("takePersistence", &WasmEngine::take_persistence)
      .function("baseImage", &WasmEngine::base_image)
      .function("releaseReply", &WasmEngine::release_reply)
      .function("dirtyDocs", &WasmEngine::dirty_docs)
      .function("storedDocs", &WasmEngine::stored_docs)
      .function("snapshotBytes", &WasmEngine::snapshot_bytes);
  function("_createEngine", &create_engine, allow_raw_pointers());
  function("_restoreEngine", &restore_engine, allow_raw_pointers());
  function("_restoreEngineJson", &restore_engine_json, allow_raw_pointers());
  function("_restoreBuffer", &restore_buffer);
  function("_lastError", &last_error);
  function("_parseFilter", &parse_filter);
  function("_jsonDecodeCount", &json_decode_count);
  function("_heapStats", &heap_stats);
  function("_decodeBuffer", &decode_buffer);
  function("_decodeServerInput", &decode_server_input);
  function("_errorCodes", &error_codes);
  class_<WasmConnection>("Connection")
      .constructor<double, double, double, double>()
      .function("start", &WasmConnection::start)
      .function("stop", &WasmConnection::stop)
      .function("onOpen", &WasmConnection::on_open)
      .function("onMessage", &WasmConnection::on_message)
      .function("onFailure", &WasmConnection::on_failure)
      .function("setOnline", &WasmConnection::set_online)
      .function("retryNow", &WasmConnection::retry_now)
      .function("tick", &WasmConnection::tick);
  class_<WasmRetryBackoff>("RetryBackoff")
      .constructor<double, double, double>()
      .function("nextDelayMs", &WasmRetryBackoff::next_delay_ms)
      .function("reset", &WasmRetryBackoff::reset)
      .function("failures", &WasmRetryBackoff::failures);
}
