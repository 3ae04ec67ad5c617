// Layer: server. The PostgreSQL store's read path: log reads for resume, documents, paged
// snapshots. Used on reader connections, and (get_document) by the writer inside its group.
#include <libpq-fe.h>

#include <poll.h>

#include <algorithm>
#include <cstdint>

#include "pg_store.hpp"
#include "pg_store_util.hpp"

namespace syncline::server {
using namespace pg_util;

namespace {
// LIMIT is a bigint: a "no limit" of SIZE_MAX must not overflow it.
constexpr std::size_t kMaxLimit = static_cast<std::size_t>(INT64_MAX);
bool is_id_path(const std::vector<std::string>& path) { return path.size() == 1 && path[0] == "id"; }
}  // namespace

std::optional<Document> PgStore::get_document(const std::string& collection, const std::string& id) {
  // Inside a group the writer must stay on its transaction's connection: never reconnect there.
  if (!in_group_ && ensure_connected()) return std::nullopt;
  std::string err;
  auto r = run("SELECT version, fields, deleted FROM documents WHERE collection=$1 AND id=$2", {collection, id}, &err);
  if (!r || PQntuples(r.get()) != 1) return std::nullopt;
  Document d;
  d.collection = collection;
  d.id = id;
  d.version = col_int(r.get(), 0, 0);
  d.fields = parse_stored(col_text(r.get(), 0, 1));
  if (!d.fields.is_object()) d.fields = Json::object();
  d.deleted = col_int(r.get(), 0, 2) != 0;
  return d;
}

Result<std::vector<LogRow>> PgStore::read_log(std::int64_t after, std::int64_t upto, std::size_t limit,
                                              std::size_t max_bytes, bool* reached_upto) {
  if (reached_upto) *reached_upto = false;
  if (!in_group_) {
    if (auto e = ensure_connected()) return *e;
  }
  std::string err;
  auto r = run("SELECT seq, kind, collection, id, op, version, fields, prior_fields, name, origin_client, origin_mid "
               "FROM log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
               {std::to_string(after), std::to_string(upto), std::to_string(std::min<std::size_t>(limit, kMaxLimit))},
               &err);
  if (!r) return make_error(codes::kInternal, "read log: " + err);
  const PGresult* res = r.get();
  // Read after the rows (a later statement, so a later snapshot): if another node's prune
  // removed rows this read wanted, the floor it committed with that delete is seen here, and
  // the caller's check of pruned_through() after the read turns the gap into a reset. Not
  // needed when the rows start right after `after`: a prune deletes a prefix of the log in one
  // transaction, so a snapshot holding seq after+1 holds every later row it could see.
  if (PQntuples(res) == 0 || col_int(res, 0, 0) != after + 1) {
    auto p = run("SELECT value FROM meta WHERE key='pruned_through'", {}, &err);
    if (!p) return make_error(codes::kInternal, "read log: " + err);
    if (PQntuples(p.get()) == 1) learn_pruned_through(col_int(p.get(), 0, 0));
  }
  std::vector<LogRow> rows;
  std::size_t bytes = 0;
  const int n = PQntuples(res);
  for (int i = 0; i < n && (max_bytes == 0 || bytes < max_bytes); ++i) {
    bytes += static_cast<std::size_t>(PQgetlength(res, i, 6)) + static_cast<std::size_t>(PQgetlength(res, i, 7));
    LogRow row;
    row.seq = col_int(res, i, 0);
    row.is_event = col_text(res, i, 1) == "event";
    row.collection = col_text(res, i, 2);
    row.id = col_text(res, i, 3);
    Json fields = col_null(res, i, 6) ? Json::object() : parse_stored(col_text(res, i, 6));
    if (fields.is_discarded()) fields = Json::object();
    Json prior = col_null(res, i, 7) ? Json(nullptr) : parse_stored(col_text(res, i, 7));
    if (prior.is_discarded()) prior = nullptr;
    if (row.is_event) {
      row.name = col_text(res, i, 8);
      row.data = std::move(fields);
      row.visibility = std::move(prior);
    } else {
      row.op = op_from(col_text(res, i, 4));
      row.version = col_int(res, i, 5);
      if (!col_null(res, i, 9)) row.origin = Origin{col_text(res, i, 9), col_int(res, i, 10)};
      row.visibility = row.op == ChangeOp::Delete ? (prior.is_null() ? Json::object() : prior) : fields;
      if (row.op == ChangeOp::Update) row.prior = std::move(prior);
      row.fields = std::move(fields);
    }
    rows.push_back(std::move(row));
  }
  if (max_bytes != 0 && bytes >= max_bytes) return rows;  // stopped by the byte bound
  if (reached_upto) *reached_upto = rows.size() < limit;
  return rows;
}

Result<SnapshotPage> PgStore::snapshot(const std::vector<std::string>& collections,
                                       const std::optional<std::pair<std::string, std::string>>& after,
                                       std::size_t limit, const std::function<bool(const Document&)>& visible,
                                       const std::map<std::string, ScopeKey>& keys,
                                       std::atomic<std::int64_t>* rows_read, std::size_t max_bytes) {
  SnapshotPage page;
  if (collections.empty()) return page;
  if (auto e = ensure_connected()) return *e;
  // One REPEATABLE READ transaction: every chunk of every collection is read from the same
  // snapshot, so the page is one state of the database (never half of another node's group).
  std::string err;
  if (!exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err)) return make_error(codes::kInternal, "begin: " + err);
  {
    // The first statement takes the transaction's snapshot: the head read here is the seq of
    // the very state the documents are read from (another node may have committed past this
    // node's broadcast head; the stream opened at this seq waits for it).
    auto h = run("SELECT value FROM meta WHERE key='head_seq'", {}, &err);
    if (!h || PQntuples(h.get()) != 1) {
      exec("ROLLBACK");
      return make_error(codes::kInternal, "read head: " + err);
    }
    page.seq = col_int(h.get(), 0, 0);
  }
  std::vector<Document> docs;
  std::int64_t read = 0;
  std::size_t bytes = 0;
  bool full = false;  // the byte bound ended the page
  const std::size_t chunk = std::max<std::size_t>(limit + 1, 256);
  std::optional<Error> failure;
  // Collection by collection, in order: each one is read with its own narrowing (a scope key
  // turns "every document of the collection" into an index range over the caller's own).
  for (const std::string& collection : collections) {
    if (docs.size() > limit || full || failure) break;
    if (after && collection < after->first) continue;
    std::string cur_id = after && collection == after->first ? after->second : std::string();
    auto key = keys.find(collection);
    std::string sql;
    if (key == keys.end()) {
      sql = "SELECT id, version, fields FROM documents WHERE collection = $1 AND deleted = 0 AND id > $2 "
            "ORDER BY id LIMIT $3";
    } else if (is_id_path(key->second.path)) {
      sql = "SELECT id, version, fields FROM documents WHERE collection = $1 AND deleted = 0 AND id = $2 AND id > $3 "
            "ORDER BY id LIMIT $4";
    } else {
      sql = scope_snapshot_sql(key->second.path);
    }
    for (bool exhausted = false; !exhausted && !full && docs.size() <= limit;) {
      std::vector<Param> params{collection};
      if (key != keys.end()) params.emplace_back(key->second.value);
      params.emplace_back(cur_id);
      params.emplace_back(std::to_string(std::min<std::size_t>(chunk, kMaxLimit)));
      auto r = run(sql, params, &err);
      if (!r) {
        failure = make_error(codes::kInternal, "snapshot: " + err);
        break;
      }
      const PGresult* res = r.get();
      const int got = PQntuples(res);
      for (int i = 0; i < got; ++i) {
        ++read;
        Document d;
        d.collection = collection;
        d.id = col_text(res, i, 0);
        d.version = col_int(res, i, 1);
        const std::size_t size = static_cast<std::size_t>(PQgetlength(res, i, 2));
        d.fields = parse_stored(col_text(res, i, 2));
        if (!d.fields.is_object()) d.fields = Json::object();
        cur_id = d.id;
        if (visible(d)) {
          if (max_bytes && !docs.empty() && docs.size() <= limit && bytes + size > max_bytes) {
            full = true;
            break;
          }
          bytes += size;
          docs.push_back(std::move(d));
          if (docs.size() > limit) break;
        }
      }
      if (static_cast<std::size_t>(got) < chunk) exhausted = true;
    }
  }
  exec(failure ? "ROLLBACK" : "COMMIT");
  if (rows_read) rows_read->fetch_add(read);
  if (failure) return *failure;
  if (docs.size() > limit || full) {
    if (docs.size() > limit) docs.resize(limit);
    page.next = std::make_pair(docs.back().collection, docs.back().id);
  }
  page.docs = std::move(docs);
  return page;
}

Result<std::int64_t> PgStore::committed_head() {
  if (auto e = ensure_connected()) return *e;
  std::string err;
  auto r = run("SELECT value FROM meta WHERE key='head_seq'", {}, &err);
  if (!r || PQntuples(r.get()) != 1) return make_error(codes::kInternal, "read head: " + err);
  return col_int(r.get(), 0, 0);
}

bool PgStore::wait_for_log(int timeout_ms) {
  if (ensure_connected()) {
    Store::wait_for_log(timeout_ms);  // the database is away: try again later
    return false;
  }
  if (!listening_) {
    // Notifications sent before this point are not delivered: the caller reads the log after
    // every wait, so report a wake-up and let it look.
    std::string err;
    if (!exec("LISTEN syncline_log", &err)) {
      Store::wait_for_log(timeout_ms);
      return false;
    }
    listening_ = true;
    return true;
  }
  auto drain = [this] {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (drain()) return true;
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) > 0) {
    if (!PQconsumeInput(conn_)) {
      // The connection broke: the next call reconnects (and listens again).
      PQfinish(conn_);
      conn_ = nullptr;
      listening_ = false;
      return false;
    }
  }
  return drain();
}

std::int64_t PgStore::document_count() {
  if (!in_group_ && ensure_connected()) return 0;
  std::string err;
  auto r = run("SELECT count(*) FROM documents WHERE deleted=0", {}, &err);
  return r && PQntuples(r.get()) == 1 ? col_int(r.get(), 0, 0) : 0;
}

}  // namespace syncline::server
