#include "sqlite_store.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include "log.hpp"
#include "store_sqlite.hpp"

namespace syncline::server {
using namespace sqlite_util;
namespace {

const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1), ('head_seq', 0), ('pruned_through', 0);
-- One seq space for document changes (kind 'change') and custom events (kind 'event').
CREATE TABLE IF NOT EXISTS log (
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  collection TEXT NOT NULL DEFAULT '',
  id TEXT NOT NULL DEFAULT '',
  op TEXT,
  version INTEGER,
  fields TEXT,             -- change: document after; event: data
  prior_fields TEXT,       -- delete/update: document before; event: document at publish time. Never sent.
  name TEXT,               -- event name
  origin_client TEXT,
  origin_mid INTEGER,
  committed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  fields TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unique_keys (
  collection TEXT NOT NULL,
  constraint_name TEXT NOT NULL,
  key TEXT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (collection, constraint_name, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS unique_keys_by_doc ON unique_keys(collection, id);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  last_mid INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_outcomes (
  client_id TEXT NOT NULL,
  mid INTEGER NOT NULL,
  status TEXT NOT NULL,
  seq INTEGER NOT NULL DEFAULT 0,
  code TEXT,
  message TEXT,
  PRIMARY KEY (client_id, mid)
) WITHOUT ROWID;
)SQL";

}  // namespace

SqliteStore::SqliteStore(sqlite3* db, StoreOptions options, const Config& config)
    : db_(db), options_(options), config_(config),
      rules_([&config](const std::string& collection) -> const std::vector<std::vector<std::string>>* {
               const CollectionConfig* cc = config.collection(collection);
               return cc ? &cc->unique : nullptr;
             },
             options.outcome_retention) {}

// The write rules' view of this store: the open group's transaction, one request at a time.
class SqliteStore::Transaction final : public WriteTransaction {
 public:
  explicit Transaction(SqliteStore& s) : s_(s) {}

  Result<std::optional<ClientBinding>> client(const std::string& client_id) override {
    sqlite3_stmt* st = s_.prepare("SELECT subject, last_mid FROM clients WHERE client_id=?");
    if (!st) return failed("clients");
    Reset r{st};
    bind_text(st, 1, client_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return std::optional<ClientBinding>{ClientBinding{col_text(st, 0), sqlite3_column_int64(st, 1)}};
    if (rc != SQLITE_DONE) return failed("clients");
    return std::optional<ClientBinding>{};
  }
  std::optional<Error> bind_client(const std::string& client_id, const std::string& subject, std::int64_t now_ms) override {
    sqlite3_stmt* st = s_.prepare("INSERT INTO clients(client_id, subject, last_mid, created_at) VALUES (?,?,0,?)");
    if (!st) return failed("bind client");
    Reset r{st};
    bind_text(st, 1, client_id);
    bind_text(st, 2, subject);
    sqlite3_bind_int64(st, 3, now_ms);
    return done(st, "bind client");
  }
  std::optional<Error> set_last_mid(const std::string& client_id, std::int64_t mid) override {
    sqlite3_stmt* st = s_.prepare("UPDATE clients SET last_mid=? WHERE client_id=?");
    if (!st) return failed("update client");
    Reset r{st};
    sqlite3_bind_int64(st, 1, mid);
    bind_text(st, 2, client_id);
    return done(st, "update client");
  }
  Result<std::optional<MutationResult>> outcome(const std::string& client_id, std::int64_t mid) override {
    sqlite3_stmt* st = s_.prepare("SELECT status, seq, code, message FROM client_outcomes WHERE client_id=? AND mid=?");
    if (!st) return failed("outcome");
    Reset r{st};
    bind_text(st, 1, client_id);
    sqlite3_bind_int64(st, 2, mid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return std::optional<MutationResult>{};
    if (rc != SQLITE_ROW) return failed("outcome");
    MutationResult res;
    res.mid = mid;
    res.status = col_text(st, 0) == "rejected" ? ResultStatus::Rejected : ResultStatus::Applied;
    res.seq = sqlite3_column_int64(st, 1);
    if (!col_null(st, 2)) res.code = col_text(st, 2);
    if (!col_null(st, 3)) res.message = col_text(st, 3);
    return std::optional<MutationResult>{std::move(res)};
  }
  std::optional<Error> record_outcome(const std::string& client_id, const MutationResult& res) override {
    sqlite3_stmt* st =
        s_.prepare("INSERT OR REPLACE INTO client_outcomes(client_id, mid, status, seq, code, message) VALUES (?,?,?,?,?,?)");
    if (!st) return failed("record outcome");
    Reset r{st};
    bind_text(st, 1, client_id);
    sqlite3_bind_int64(st, 2, res.mid);
    sqlite3_bind_text(st, 3, to_string(res.status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, res.seq);
    if (!res.code.empty()) bind_text(st, 5, res.code);
    if (!res.message.empty()) bind_text(st, 6, res.message);
    return done(st, "record outcome");
  }
  std::optional<Error> keep_newest_outcomes(const std::string& client_id, std::int64_t keep) override {
    sqlite3_stmt* st = s_.prepare(
        "DELETE FROM client_outcomes WHERE client_id=?1 AND mid < (SELECT mid FROM client_outcomes "
        "WHERE client_id=?1 ORDER BY mid DESC LIMIT 1 OFFSET ?2)");
    if (!st) return failed("prune outcomes");
    Reset r{st};
    bind_text(st, 1, client_id);
    sqlite3_bind_int64(st, 2, keep - 1);
    return done(st, "prune outcomes");
  }
  Result<std::optional<Document>> document(const std::string& collection, const std::string& id) override {
    return s_.get_document(collection, id);
  }
  std::optional<Error> put_document(const Document& doc) override {
    sqlite3_stmt* st = s_.prepare("INSERT OR REPLACE INTO documents(collection, id, version, fields, deleted) VALUES (?,?,?,?,?)");
    if (!st) return failed("write document");
    Reset r{st};
    bind_text(st, 1, doc.collection);
    bind_text(st, 2, doc.id);
    sqlite3_bind_int64(st, 3, doc.version);
    bind_text(st, 4, doc.fields.dump());
    sqlite3_bind_int(st, 5, doc.deleted ? 1 : 0);
    return done(st, "write document");
  }
  Result<std::optional<std::string>> unique_owner(const std::string& collection, const UniqueKey& key) override {
    sqlite3_stmt* st = s_.prepare("SELECT id FROM unique_keys WHERE collection=? AND constraint_name=? AND key=?");
    if (!st) return failed("unique lookup");
    Reset r{st};
    bind_text(st, 1, collection);
    bind_text(st, 2, key.constraint);
    bind_text(st, 3, key.key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return std::optional<std::string>{col_text(st, 0)};
    if (rc != SQLITE_DONE) return failed("unique lookup");
    return std::optional<std::string>{};
  }
  std::optional<Error> set_unique_keys(const std::string& collection, const std::string& id,
                                       const std::vector<UniqueKey>& keys) override {
    sqlite3_stmt* del = s_.prepare("DELETE FROM unique_keys WHERE collection=? AND id=?");
    if (!del) return failed("write unique keys");
    {
      Reset r{del};
      bind_text(del, 1, collection);
      bind_text(del, 2, id);
      if (auto e = done(del, "write unique keys")) return e;
    }
    if (keys.empty()) return std::nullopt;
    sqlite3_stmt* ins = s_.prepare("INSERT OR REPLACE INTO unique_keys(collection, constraint_name, key, id) VALUES (?,?,?,?)");
    if (!ins) return failed("write unique keys");
    for (const auto& k : keys) {
      Reset r{ins};
      bind_text(ins, 1, collection);
      bind_text(ins, 2, k.constraint);
      bind_text(ins, 3, k.key);
      bind_text(ins, 4, id);
      if (auto e = done(ins, "write unique keys")) return e;
    }
    return std::nullopt;
  }
  std::optional<Error> append(const LogRow& row, std::int64_t now_ms) override {
    if (row.is_event) {
      sqlite3_stmt* st = s_.prepare(
          "INSERT INTO log(seq, kind, collection, id, fields, prior_fields, name, committed_at) "
          "VALUES (?, 'event', ?, ?, ?, ?, ?, ?)");
      if (!st) return failed("publish");
      Reset r{st};
      sqlite3_bind_int64(st, 1, row.seq);
      bind_text(st, 2, row.collection);
      bind_text(st, 3, row.id);
      bind_text(st, 4, row.data.dump());
      if (!row.visibility.is_null()) bind_text(st, 5, row.visibility.dump());
      bind_text(st, 6, row.name);
      sqlite3_bind_int64(st, 7, now_ms);
      return done(st, "publish");
    }
    sqlite3_stmt* st = s_.prepare(
        "INSERT INTO log(seq, kind, collection, id, op, version, fields, prior_fields, origin_client, origin_mid, "
        "committed_at) VALUES (?, 'change', ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st) return failed("append log");
    Reset r{st};
    sqlite3_bind_int64(st, 1, row.seq);
    bind_text(st, 2, row.collection);
    bind_text(st, 3, row.id);
    sqlite3_bind_text(st, 4, to_string(row.op), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, row.version);
    bind_text(st, 6, row.fields.dump());
    if (row.op == ChangeOp::Delete) bind_text(st, 7, row.visibility.dump());
    if (row.op == ChangeOp::Update && !row.prior.is_null()) bind_text(st, 7, row.prior.dump());
    if (row.origin) {
      bind_text(st, 8, row.origin->client);
      sqlite3_bind_int64(st, 9, row.origin->mid);
    }
    sqlite3_bind_int64(st, 10, now_ms);
    return done(st, "append log");
  }
  std::optional<Error> begin_scope() override {
    std::string err;
    if (!s_.exec("SAVEPOINT atomic_group", &err)) return make_error(codes::kInternal, "group savepoint: " + err);
    return std::nullopt;
  }
  std::optional<Error> release_scope() override {
    std::string err;
    if (!s_.exec("RELEASE atomic_group", &err)) return make_error(codes::kInternal, "release group savepoint: " + err);
    return std::nullopt;
  }
  void rollback_scope() override {
    s_.exec("ROLLBACK TO atomic_group");
    s_.exec("RELEASE atomic_group");
  }

 private:
  Error failed(const char* what) { return internal(what, s_.db_); }
  std::optional<Error> done(sqlite3_stmt* st, const char* what) {
    if (sqlite3_step(st) != SQLITE_DONE) return failed(what);
    return std::nullopt;
  }
  SqliteStore& s_;
};

SqliteStore::~SqliteStore() {
  for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<sqlite3*> SqliteStore::open_db(const std::string& spec) {
  std::string path = spec;
  if (path.rfind("sqlite:", 0) == 0) path = path.substr(7);
  if (path.rfind("//", 0) == 0) path = path.substr(2);
  if (path.empty()) return make_error(codes::kInvalidRequest, "empty database path", "--db");
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Error e = internal("cannot open " + path, db);
    sqlite3_close_v2(db);
    return e;
  }
  return db;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& spec, StoreOptions options, const Config& config) {
  std::string path = spec;
  if (path.rfind("sqlite:", 0) == 0) path = path.substr(7);
  if (path.rfind("//", 0) == 0) path = path.substr(2);
  if (path.empty()) return make_error(codes::kInvalidRequest, "empty database path", "--db");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return make_error(codes::kInternal, "cannot create " + parent.string() + ": " + ec.message(), "--db");
  // The server caches the head seq: two servers writing one database would hand out the same
  // seq twice. An advisory lock (released by the kernel even after kill -9) prevents that.
  int lock_fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0) ::close(lock_fd);
    return make_error(codes::kInternal, "database " + path + " is in use by another syncline-server", "--db");
  }
  auto db = open_db(path);
  if (!db) {
    ::close(lock_fd);
    return db.error();
  }
  std::unique_ptr<SqliteStore> s(new SqliteStore(*db, options, config));
  s->lock_fd_ = lock_fd;
  std::string err;
  if (!s->exec("PRAGMA journal_mode=WAL", &err) || !s->exec("PRAGMA synchronous=FULL", &err) ||
      !s->exec("PRAGMA foreign_keys=OFF", &err) || !s->exec("PRAGMA busy_timeout=5000", &err) ||
      !s->exec(kSchema, &err)) {
    return make_error(codes::kInternal, "cannot initialise database: " + err, "--db");
  }
  // Scoped reads (a customer's own bookings) go through an index on the rule's field, so their
  // cost follows what the caller may see, not the size of the collection.
  for (const auto& path : scope_paths(config)) {
    std::string name;
    for (const auto& part : path) name += (name.empty() ? "" : ".") + part;
    std::string sql = "CREATE INDEX IF NOT EXISTS \"documents_scope:" + name + "\" ON documents(collection, " +
                      scope_field_sql(path) + ", id) WHERE deleted = 0";
    if (!s->exec(sql.c_str(), &err)) return make_error(codes::kInternal, "cannot create index on " + name + ": " + err, "--db");
  }
  // Replaces the automatic checkpoint (see maintenance()).
  sqlite3_wal_hook(*db, &SqliteStore::on_wal_commit, s.get());
  sqlite3_stmt* st = s->prepare("SELECT key, value FROM meta");
  if (!st) return internal("meta", *db);
  Reset r{st};
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string k = col_text(st, 0);
    if (k == "head_seq") s->head_ = sqlite3_column_int64(st, 1);
    if (k == "pruned_through") s->pruned_through_ = sqlite3_column_int64(st, 1);
  }
  s->group_head_ = s->head_;
  s->prune_floor_ = s->pruned_through_;
  return s;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open_reader(const std::string& spec, StoreOptions options,
                                                 const Config& config) {
  auto db = open_db(spec);
  if (!db) return db.error();
  std::unique_ptr<SqliteStore> s(new SqliteStore(*db, options, config));
  std::string err;
  // query_only: this connection can never write, so only the writer thread changes the data.
  // The busy timeout covers the short moments a WAL reader can be told to retry.
  if (!s->exec("PRAGMA query_only=1", &err) || !s->exec("PRAGMA busy_timeout=5000", &err)) {
    return make_error(codes::kInternal, "cannot initialise reader: " + err, "--db");
  }
  return s;
}

bool SqliteStore::exec(const char* sql, std::string* err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    if (err) *err = msg ? msg : "sqlite error";
    sqlite3_free(msg);
    return false;
  }
  return true;
}

sqlite3_stmt* SqliteStore::prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    log_error("sqlite prepare failed", {{"error", sqlite3_errmsg(db_)}, {"sql", sql}});
    return nullptr;
  }
  stmts_[sql] = st;
  return st;
}

std::optional<Error> SqliteStore::begin_group() {
  std::string err;
  if (!exec("BEGIN IMMEDIATE", &err)) return make_error(codes::kInternal, "begin: " + err);
  in_group_ = true;
  group_head_ = head_;
  return std::nullopt;
}

std::optional<Error> SqliteStore::commit_group() {
  std::string err;
  if (group_head_ != head_) {
    sqlite3_stmt* st = prepare("UPDATE meta SET value=? WHERE key='head_seq'");
    bool ok = st != nullptr;
    if (ok) {
      Reset r{st};
      sqlite3_bind_int64(st, 1, group_head_);
      ok = sqlite3_step(st) == SQLITE_DONE;
    }
    if (!ok) {
      Error e = internal("update head", db_);
      rollback_group();
      return e;
    }
  }
  if (!exec("COMMIT", &err)) {
    rollback_group();
    return make_error(codes::kInternal, "commit: " + err);
  }
  in_group_ = false;
  head_ = group_head_;
  return std::nullopt;
}

int SqliteStore::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
  static_cast<SqliteStore*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

void SqliteStore::maintenance(bool idle) {
  maybe_prune();
  // SQLite's default threshold is 1000 pages; while requests are waiting, let the WAL grow
  // further before spending a checkpoint's fsyncs on their time.
  if (wal_pages_ < (idle ? 1000 : 8000)) return;
  int log = 0, done = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) log_warn("checkpoint failed", {{"error", sqlite3_errmsg(db_)}});
  wal_pages_ = 0;
}

void SqliteStore::rollback_group() {
  if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
  in_group_ = false;
  group_head_ = head_;
}

bool SqliteStore::transaction_lost() const { return in_group_ && sqlite3_get_autocommit(db_) != 0; }

bool SqliteStore::savepoint(std::string* err) { return exec("SAVEPOINT request", err); }

void SqliteStore::release() { exec("RELEASE request"); }

void SqliteStore::rollback_savepoint() {
  // Undo this request only; the group's earlier requests stay. If SQLite already rolled the
  // whole transaction back (transaction_lost), there is no savepoint left to roll back to.
  if (!sqlite3_get_autocommit(db_)) {
    exec("ROLLBACK TO request");
    exec("RELEASE request");
  }
}

Result<BatchResult> SqliteStore::apply_batch(const std::string& client, const std::string& subject,
                                      const std::vector<Mutation>& mutations, const WriteCheck& check,
                                      const ReadCheck& readable) {
  if (!in_group_) return make_error(codes::kInternal, "apply_batch outside a group");
  std::string err;
  if (!savepoint(&err)) return make_error(codes::kInternal, "savepoint: " + err);
  Result<BatchResult> res = make_error(codes::kInternal, "not applied");
  try {
    Transaction txn(*this);
    std::int64_t head = group_head_;
    res = rules_.apply_batch(txn, head, client, subject, mutations, check, readable, now_unix_ms());
  } catch (const std::exception& e) {
    // E.g. JSON that cannot be serialised: this request only, never a half-written savepoint.
    res = make_error(codes::kInternal, std::string("apply: ") + e.what());
  }
  if (res) {
    release();
    group_head_ = res->results.seq;
  } else {
    rollback_savepoint();
  }
  return res;
}

Result<LogRow> SqliteStore::publish(const PublishRequest& req, const PublishCheck& check) {
  if (!in_group_) return make_error(codes::kInternal, "publish outside a group");
  std::string err;
  if (!savepoint(&err)) return make_error(codes::kInternal, "savepoint: " + err);
  Result<LogRow> res = make_error(codes::kInternal, "not published");
  try {
    Transaction txn(*this);
    std::int64_t head = group_head_;
    res = rules_.publish(txn, head, req, check, now_unix_ms());
  } catch (const std::exception& e) {
    res = make_error(codes::kInternal, std::string("publish: ") + e.what());
  }
  if (res) {
    release();
    group_head_ = res->seq;
  } else {
    rollback_savepoint();
  }
  return res;
}

void SqliteStore::maybe_prune() {
  if (options_.log_retention <= 0) return;
  std::int64_t slack = std::max<std::int64_t>(1, options_.log_retention / 10);
  if (head_ - pruned_through_ <= options_.log_retention + slack) return;
  std::int64_t cut = head_ - options_.log_retention;
  // Announce the cut before deleting: a resume that read the log concurrently and then sees
  // the floor above its cursor answers with a reset instead of silently skipping rows.
  prune_floor_ = cut;
  std::string err;
  if (!exec("BEGIN IMMEDIATE", &err)) {
    prune_floor_ = pruned_through_;
    return;
  }
  bool ok = true;
  for (const char* sql : {"DELETE FROM log WHERE seq <= ?",
                          "DELETE FROM documents WHERE deleted=1 AND version <= ?",
                          "UPDATE meta SET value=? WHERE key='pruned_through'"}) {
    sqlite3_stmt* st = prepare(sql);
    if (!st) {
      ok = false;
      break;
    }
    Reset r{st};
    sqlite3_bind_int64(st, 1, cut);
    if (sqlite3_step(st) != SQLITE_DONE) {
      ok = false;
      break;
    }
  }
  if (ok && exec("COMMIT", &err)) {
    pruned_through_ = cut;
  } else {
    exec("ROLLBACK");
    prune_floor_ = pruned_through_;
    log_error("log pruning failed", {{"error", sqlite3_errmsg(db_)}});
  }
}

void SqliteStore::checkpoint() {
  std::string err;
  if (!exec("PRAGMA wal_checkpoint(TRUNCATE)", &err)) log_warn("checkpoint failed", {{"error", err}});
}

}  // namespace syncline::server
