// Layer: server. The store's read path: log reads for resume, documents, paged snapshots.
// Used on the reader connection by the io thread, and (get_document) by the writer inside its
// transaction.
#include <sqlite3.h>

#include <algorithm>

#include "core/json_bounded.hpp"
#include "sqlite_store.hpp"
#include "store_sqlite.hpp"

namespace syncline::server {
using namespace sqlite_util;

namespace {
// Stored JSON was bounded when it was written (limits.max_json_depth, at most 512); a row from
// before that bound, or a damaged one, reads as unreadable instead of as a value whose copies
// and dumps would recurse past the stack.
constexpr std::size_t kMaxStoredJsonDepth = 512;
Json parse_stored(const std::string& text) { return parse_json_bounded(text, kMaxStoredJsonDepth); }
}  // namespace

std::optional<Document> SqliteStore::get_document(const std::string& collection, const std::string& id) {
  sqlite3_stmt* st = prepare("SELECT version, fields, deleted FROM documents WHERE collection=? AND id=?");
  if (!st) return std::nullopt;
  Reset r{st};
  bind_text(st, 1, collection);
  bind_text(st, 2, id);
  if (sqlite3_step(st) != SQLITE_ROW) return std::nullopt;
  Document d;
  d.collection = collection;
  d.id = id;
  d.version = sqlite3_column_int64(st, 0);
  d.fields = parse_stored(col_text(st, 1));
  if (!d.fields.is_object()) d.fields = Json::object();
  d.deleted = sqlite3_column_int(st, 2) != 0;
  return d;
}

Result<std::vector<LogRow>> SqliteStore::read_log(std::int64_t after, std::int64_t upto, std::size_t limit,
                                            std::size_t max_bytes, bool* reached_upto) {
  sqlite3_stmt* st = prepare(
      "SELECT seq, kind, collection, id, op, version, fields, prior_fields, name, origin_client, origin_mid "
      "FROM log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?");
  if (!st) return internal("read log", db_);
  Reset r{st};
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, upto);
  sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(limit));
  std::vector<LogRow> rows;
  std::size_t bytes = 0;
  if (reached_upto) *reached_upto = false;
  int rc = SQLITE_DONE;
  while ((max_bytes == 0 || bytes < max_bytes) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    bytes += static_cast<std::size_t>(sqlite3_column_bytes(st, 6)) + static_cast<std::size_t>(sqlite3_column_bytes(st, 7));
    LogRow row;
    row.seq = sqlite3_column_int64(st, 0);
    row.is_event = col_text(st, 1) == "event";
    row.collection = col_text(st, 2);
    row.id = col_text(st, 3);
    Json fields = col_null(st, 6) ? Json::object() : parse_stored(col_text(st, 6));
    if (fields.is_discarded()) fields = Json::object();
    Json prior = col_null(st, 7) ? Json(nullptr) : parse_stored(col_text(st, 7));
    if (prior.is_discarded()) prior = nullptr;
    if (row.is_event) {
      row.name = col_text(st, 8);
      row.data = std::move(fields);
      row.visibility = std::move(prior);
    } else {
      row.op = op_from(col_text(st, 4));
      row.version = sqlite3_column_int64(st, 5);
      if (!col_null(st, 9)) row.origin = Origin{col_text(st, 9), sqlite3_column_int64(st, 10)};
      row.visibility = row.op == ChangeOp::Delete ? (prior.is_null() ? Json::object() : prior) : fields;
      if (row.op == ChangeOp::Update) row.prior = std::move(prior);
      row.fields = std::move(fields);
    }
    rows.push_back(std::move(row));
  }
  if (max_bytes != 0 && bytes >= max_bytes) return rows;  // stopped by the byte bound
  if (rc != SQLITE_DONE) return internal("read log", db_);
  if (reached_upto) *reached_upto = rows.size() < limit;
  return rows;
}

namespace {

bool is_id_path(const std::vector<std::string>& path) { return path.size() == 1 && path[0] == "id"; }

}  // namespace

Result<SnapshotPage> SqliteStore::snapshot(const std::vector<std::string>& collections,
                                    const std::optional<std::pair<std::string, std::string>>& after,
                                    std::size_t limit, const std::function<bool(const Document&)>& visible,
                                    const std::map<std::string, ScopeKey>& keys, std::atomic<std::int64_t>* rows_read,
                                    std::size_t max_bytes) {
  SnapshotPage page;
  if (collections.empty()) return page;
  // One read transaction: the documents and the seq belong to the same state.
  std::string err;
  if (!exec("BEGIN", &err)) return make_error(codes::kInternal, "begin: " + err);
  {
    // The first read fixes the transaction's state: the head it reports is that state's.
    sqlite3_stmt* st = prepare("SELECT value FROM meta WHERE key='head_seq'");
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
      Error e = internal("read head", db_);
      if (st) sqlite3_reset(st);
      exec("ROLLBACK");
      return e;
    }
    page.seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
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
    std::string sql = "SELECT id, version, fields FROM documents WHERE collection = ? AND deleted = 0";
    if (key != keys.end()) {
      sql += is_id_path(key->second.path) ? " AND id = ?" : " AND " + scope_field_sql(key->second.path) + " = ?";
    }
    sql += " AND id > ? ORDER BY id LIMIT ?";
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      failure = internal("snapshot", db_);
      break;
    }
    for (bool exhausted = false; !exhausted && !full && docs.size() <= limit;) {
      sqlite3_reset(st);
      int n = 1;
      bind_text(st, n++, collection);
      if (key != keys.end()) bind_text(st, n++, key->second.value);
      bind_text(st, n++, cur_id);
      sqlite3_bind_int64(st, n++, static_cast<sqlite3_int64>(chunk));
      std::size_t got = 0;
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ++got;
        ++read;
        Document d;
        d.collection = collection;
        d.id = col_text(st, 0);
        d.version = sqlite3_column_int64(st, 1);
        const std::size_t size = static_cast<std::size_t>(sqlite3_column_bytes(st, 2));
        d.fields = parse_stored(col_text(st, 2));
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
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        failure = internal("snapshot", db_);
        break;
      }
      if (rc == SQLITE_DONE && got < chunk) exhausted = true;
    }
    sqlite3_finalize(st);
  }
  exec("COMMIT");
  if (rows_read) rows_read->fetch_add(read);
  if (failure) return *failure;
  if (docs.size() > limit || full) {
    if (docs.size() > limit) docs.resize(limit);
    page.next = std::make_pair(docs.back().collection, docs.back().id);
  }
  page.docs = std::move(docs);
  return page;
}

Result<std::int64_t> SqliteStore::committed_head() {
  sqlite3_stmt* st = prepare("SELECT value FROM meta WHERE key='head_seq'");
  if (!st || sqlite3_step(st) != SQLITE_ROW) {
    Error e = internal("read head", db_);
    if (st) sqlite3_reset(st);
    return e;
  }
  std::int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return v;
}

std::int64_t SqliteStore::document_count() {
  sqlite3_stmt* st = prepare("SELECT count(*) FROM documents WHERE deleted=0");
  if (!st) return 0;
  Reset r{st};
  return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

}  // namespace syncline::server
