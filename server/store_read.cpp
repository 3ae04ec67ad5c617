// Layer: server. The store's read path: log reads for resume, documents, paged snapshots.
// Used on the reader connection by the io thread, and (get_document) by the writer inside its
// transaction.
#include <sqlite3.h>

#include "store.hpp"
#include "store_sqlite.hpp"

namespace syncline::server {
using namespace sqlite_util;

std::optional<Document> Store::get_document(const std::string& collection, const std::string& id) {
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
  d.fields = parse_json_nothrow(col_text(st, 1));
  if (!d.fields.is_object()) d.fields = Json::object();
  d.deleted = sqlite3_column_int(st, 2) != 0;
  return d;
}

Result<std::vector<LogRow>> Store::read_log(std::int64_t after, std::int64_t upto, std::size_t limit) {
  sqlite3_stmt* st = prepare(
      "SELECT seq, kind, collection, id, op, version, fields, prior_fields, name, origin_client, origin_mid "
      "FROM log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?");
  if (!st) return internal("read log", db_);
  Reset r{st};
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, upto);
  sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(limit));
  std::vector<LogRow> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    LogRow row;
    row.seq = sqlite3_column_int64(st, 0);
    row.is_event = col_text(st, 1) == "event";
    row.collection = col_text(st, 2);
    row.id = col_text(st, 3);
    Json fields = col_null(st, 6) ? Json::object() : parse_json_nothrow(col_text(st, 6));
    if (fields.is_discarded()) fields = Json::object();
    Json prior = col_null(st, 7) ? Json(nullptr) : parse_json_nothrow(col_text(st, 7));
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
  if (rc != SQLITE_DONE) return internal("read log", db_);
  return rows;
}

Result<SnapshotPage> Store::snapshot(const std::vector<std::string>& collections,
                                    const std::optional<std::pair<std::string, std::string>>& after,
                                    std::size_t limit, const std::function<bool(const Document&)>& visible) {
  SnapshotPage page;
  if (collections.empty()) return page;
  // One read transaction: the documents and the seq belong to the same state.
  std::string err;
  if (!exec("BEGIN", &err)) return make_error(kInternal, "begin: " + err);
  std::string sql = "SELECT collection, id, version, fields FROM documents WHERE deleted=0 AND collection IN (";
  for (std::size_t i = 0; i < collections.size(); ++i) sql += i ? ",?" : "?";
  sql += ") AND (collection > ? OR (collection = ? AND id > ?)) ORDER BY collection, id LIMIT ?";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    exec("COMMIT");
    return internal("snapshot", db_);
  }
  std::string cur_c = after ? after->first : std::string();
  std::string cur_i = after ? after->second : std::string();
  const std::size_t chunk = std::max<std::size_t>(limit + 1, 256);
  bool exhausted = false;
  std::vector<Document> docs;
  while (!exhausted && docs.size() <= limit) {
    sqlite3_reset(st);
    int n = 1;
    for (const auto& c : collections) bind_text(st, n++, c);
    bind_text(st, n++, cur_c);
    bind_text(st, n++, cur_c);
    bind_text(st, n++, cur_i);
    sqlite3_bind_int64(st, n++, static_cast<sqlite3_int64>(chunk));
    std::size_t got = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      ++got;
      Document d;
      d.collection = col_text(st, 0);
      d.id = col_text(st, 1);
      d.version = sqlite3_column_int64(st, 2);
      d.fields = parse_json_nothrow(col_text(st, 3));
      if (!d.fields.is_object()) d.fields = Json::object();
      cur_c = d.collection;
      cur_i = d.id;
      if (visible(d)) {
        docs.push_back(std::move(d));
        if (docs.size() > limit) break;
      }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      sqlite3_finalize(st);
      exec("COMMIT");
      return internal("snapshot", db_);
    }
    if (rc == SQLITE_DONE && got < chunk) exhausted = true;
  }
  sqlite3_finalize(st);
  exec("COMMIT");
  if (docs.size() > limit) {
    docs.resize(limit);
    page.next = std::make_pair(docs.back().collection, docs.back().id);
  }
  page.docs = std::move(docs);
  return page;
}

std::int64_t Store::document_count() {
  sqlite3_stmt* st = prepare("SELECT count(*) FROM documents WHERE deleted=0");
  if (!st) return 0;
  Reset r{st};
  return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

}  // namespace syncline::server
