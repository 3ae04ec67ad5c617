#include "store.hpp"

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

// The unique key of `fields` for one constraint; nullopt when a field is missing or null
// (like SQL, a missing value never collides).
std::optional<std::string> unique_key(const std::vector<std::string>& names, const Json& fields) {
  Json key = Json::array();
  for (const auto& n : names) {
    if (!fields.is_object()) return std::nullopt;
    auto it = fields.find(n);
    if (it == fields.end() || it->is_null()) return std::nullopt;
    key.push_back(*it);
  }
  return key.dump();
}

std::string constraint_name(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ",";
    s += n;
  }
  return s;
}

}  // namespace

Store::Store(sqlite3* db, StoreOptions options, const Config& config)
    : db_(db), options_(options), config_(config) {}

Store::~Store() {
  for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<sqlite3*> Store::open_db(const std::string& spec) {
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

Result<std::unique_ptr<Store>> Store::open(const std::string& spec, StoreOptions options, const Config& config) {
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
  std::unique_ptr<Store> s(new Store(*db, options, config));
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
  sqlite3_wal_hook(*db, &Store::on_wal_commit, s.get());
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

Result<std::unique_ptr<Store>> Store::open_reader(const std::string& spec, StoreOptions options,
                                                 const Config& config) {
  auto db = open_db(spec);
  if (!db) return db.error();
  std::unique_ptr<Store> s(new Store(*db, options, config));
  std::string err;
  // query_only: this connection can never write, so only the writer thread changes the data.
  // The busy timeout covers the short moments a WAL reader can be told to retry.
  if (!s->exec("PRAGMA query_only=1", &err) || !s->exec("PRAGMA busy_timeout=5000", &err)) {
    return make_error(codes::kInternal, "cannot initialise reader: " + err, "--db");
  }
  return s;
}

bool Store::exec(const char* sql, std::string* err) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    if (err) *err = msg ? msg : "sqlite error";
    sqlite3_free(msg);
    return false;
  }
  return true;
}

sqlite3_stmt* Store::prepare(const char* sql) {
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

std::optional<Error> Store::check_unique(const std::string& collection, const std::string& id, const Json& fields) {
  const CollectionConfig* cc = config_.collection(collection);
  if (!cc || cc->unique.empty()) return std::nullopt;
  sqlite3_stmt* st = prepare("SELECT id FROM unique_keys WHERE collection=? AND constraint_name=? AND key=?");
  if (!st) return internal("unique lookup", db_);
  for (const auto& names : cc->unique) {
    auto key = unique_key(names, fields);
    if (!key) continue;
    Reset r{st};
    bind_text(st, 1, collection);
    bind_text(st, 2, constraint_name(names));
    bind_text(st, 3, *key);
    if (sqlite3_step(st) == SQLITE_ROW && col_text(st, 0) != id) {
      return make_error(codes::kConstraint,
                        "unique constraint (" + constraint_name(names) + ") of " + collection + " violated",
                        "fields");
    }
  }
  return std::nullopt;
}

bool Store::write_unique(const std::string& collection, const std::string& id, const Json* fields) {
  const CollectionConfig* cc = config_.collection(collection);
  if (!cc || cc->unique.empty()) return true;
  sqlite3_stmt* del = prepare("DELETE FROM unique_keys WHERE collection=? AND id=?");
  if (!del) return false;
  {
    Reset r{del};
    bind_text(del, 1, collection);
    bind_text(del, 2, id);
    if (sqlite3_step(del) != SQLITE_DONE) return false;
  }
  if (!fields) return true;
  sqlite3_stmt* ins = prepare("INSERT OR REPLACE INTO unique_keys(collection, constraint_name, key, id) VALUES (?,?,?,?)");
  if (!ins) return false;
  for (const auto& names : cc->unique) {
    auto key = unique_key(names, *fields);
    if (!key) continue;
    Reset r{ins};
    bind_text(ins, 1, collection);
    bind_text(ins, 2, constraint_name(names));
    bind_text(ins, 3, *key);
    bind_text(ins, 4, id);
    if (sqlite3_step(ins) != SQLITE_DONE) return false;
  }
  return true;
}

std::optional<Error> Store::begin_group() {
  std::string err;
  if (!exec("BEGIN IMMEDIATE", &err)) return make_error(codes::kInternal, "begin: " + err);
  in_group_ = true;
  group_head_ = head_;
  return std::nullopt;
}

std::optional<Error> Store::commit_group() {
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

int Store::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
  static_cast<Store*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

void Store::maintenance(bool idle) {
  maybe_prune();
  // SQLite's default threshold is 1000 pages; while requests are waiting, let the WAL grow
  // further before spending a checkpoint's fsyncs on their time.
  if (wal_pages_ < (idle ? 1000 : 8000)) return;
  int log = 0, done = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) log_warn("checkpoint failed", {{"error", sqlite3_errmsg(db_)}});
  wal_pages_ = 0;
}

void Store::rollback_group() {
  if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");
  in_group_ = false;
  group_head_ = head_;
}

bool Store::transaction_lost() const { return in_group_ && sqlite3_get_autocommit(db_) != 0; }

bool Store::savepoint(std::string* err) { return exec("SAVEPOINT request", err); }

void Store::release() { exec("RELEASE request"); }

void Store::rollback_savepoint() {
  // Undo this request only; the group's earlier requests stay. If SQLite already rolled the
  // whole transaction back (transaction_lost), there is no savepoint left to roll back to.
  if (!sqlite3_get_autocommit(db_)) {
    exec("ROLLBACK TO request");
    exec("RELEASE request");
  }
}

Result<BatchResult> Store::apply_batch(const std::string& client, const std::string& subject,
                                      const std::vector<Mutation>& mutations, const WriteCheck& check,
                                      const ReadCheck& readable) {
  if (!in_group_) return make_error(codes::kInternal, "apply_batch outside a group");
  std::string err;
  if (!savepoint(&err)) return make_error(codes::kInternal, "savepoint: " + err);
  Result<BatchResult> res = make_error(codes::kInternal, "not applied");
  try {
    res = apply_batch_in_savepoint(client, subject, mutations, check, readable);
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

Result<BatchResult> Store::apply_batch_in_savepoint(const std::string& client, const std::string& subject,
                                                   const std::vector<Mutation>& mutations,
                                                   const WriteCheck& check, const ReadCheck& readable) {
  std::int64_t head = group_head_;

  // Client binding: first use binds the client id to the subject.
  std::int64_t last_mid = 0;
  {
    sqlite3_stmt* st = prepare("SELECT subject, last_mid FROM clients WHERE client_id=?");
    if (!st) return internal("clients", db_);
    Reset r{st};
    bind_text(st, 1, client);
    if (sqlite3_step(st) == SQLITE_ROW) {
      if (col_text(st, 0) != subject) {
        return make_error(codes::kForbidden, "client id is bound to another subject", "client");
      }
      last_mid = sqlite3_column_int64(st, 1);
    } else {
      sqlite3_stmt* ins = prepare("INSERT INTO clients(client_id, subject, last_mid, created_at) VALUES (?,?,0,?)");
      Reset r2{ins};
      bind_text(ins, 1, client);
      bind_text(ins, 2, subject);
      sqlite3_bind_int64(ins, 3, now_unix_ms());
      if (sqlite3_step(ins) != SQLITE_DONE) return internal("bind client", db_);
    }
  }

  BatchResult out;
  sqlite3_stmt* get_outcome = prepare("SELECT status, seq, code, message FROM client_outcomes WHERE client_id=? AND mid=?");
  sqlite3_stmt* put_outcome =
      prepare("INSERT OR REPLACE INTO client_outcomes(client_id, mid, status, seq, code, message) VALUES (?,?,?,?,?,?)");
  if (!get_outcome || !put_outcome) return internal("prepare", db_);
  // serverTime: one timestamp for the whole request, so a group's members agree.
  const ApplyContext ctx{now_unix_ms()};
  auto record = [&](const MutationResult& res) -> bool {
    Reset r{put_outcome};
    bind_text(put_outcome, 1, client);
    sqlite3_bind_int64(put_outcome, 2, res.mid);
    sqlite3_bind_text(put_outcome, 3, status_name(res.status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(put_outcome, 4, res.seq);
    if (!res.code.empty()) bind_text(put_outcome, 5, res.code);
    if (!res.message.empty()) bind_text(put_outcome, 6, res.message);
    return sqlite3_step(put_outcome) == SQLITE_DONE;
  };

  for (std::size_t i = 0; i < mutations.size();) {
    const Mutation& m = mutations[i];
    if (m.mid <= last_mid) {
      // Resent: answered from the recorded outcome. A group was recorded whole (all applied or
      // all rejected, in one savepoint), so a resent group is a duplicate in every member.
      MutationResult res;
      res.mid = m.mid;
      res.status = ResultStatus::Duplicate;
      Reset r{get_outcome};
      bind_text(get_outcome, 1, client);
      sqlite3_bind_int64(get_outcome, 2, m.mid);
      if (sqlite3_step(get_outcome) == SQLITE_ROW) {
        res.seq = sqlite3_column_int64(get_outcome, 1);
        if (!col_null(get_outcome, 2)) res.code = col_text(get_outcome, 2);
        if (!col_null(get_outcome, 3)) res.message = col_text(get_outcome, 3);
      }
      out.results.results.push_back(std::move(res));
      ++i;
      continue;
    }
    // A group (validated by the decoder: consecutive members starting at its first mid) is
    // applied in a savepoint of its own: the first rejected member undoes the others.
    const std::size_t n = m.group ? static_cast<std::size_t>(std::max<std::int64_t>(1, m.group_size)) : 1;
    const std::size_t end = std::min(mutations.size(), i + n);
    const bool grouped = m.group.has_value();
    const std::int64_t head_before = head;
    if (grouped && !exec("SAVEPOINT atomic_group")) return internal("group savepoint", db_);
    std::vector<MutationResult> results;
    std::vector<LogRow> rows;
    std::optional<std::size_t> failed;
    for (std::size_t k = i; k < end; ++k) {
      auto one = apply_one(mutations[k], client, ctx, check, readable, head);
      if (!one) {
        if (grouped) {
          exec("ROLLBACK TO atomic_group");
          exec("RELEASE atomic_group");
        }
        return one.error();
      }
      if (one->row) rows.push_back(std::move(*one->row));
      const bool rejected = one->result.status == ResultStatus::Rejected;
      results.push_back(std::move(one->result));
      if (rejected && grouped) {
        failed = k;
        break;
      }
    }
    if (failed) {
      // None of the group applies: undo its writes, give its seqs back, and answer every member
      // with the cause, naming the member that failed.
      exec("ROLLBACK TO atomic_group");
      head = head_before;
      rows.clear();
      const MutationResult cause = results.back();
      results.clear();
      for (std::size_t k = i; k < end; ++k) {
        MutationResult res;
        res.mid = mutations[k].mid;
        res.status = ResultStatus::Rejected;
        res.code = cause.code;
        res.failed_mid = cause.mid;
        if (k == *failed) {
          res.message = cause.message;
          res.current = cause.current;
        } else {
          res.message = "atomic group " + std::to_string(*m.group) + " was not applied: mutation " +
                        std::to_string(cause.mid) + " was rejected (" + cause.code + ": " + cause.message + ")";
        }
        results.push_back(std::move(res));
      }
    }
    for (const auto& res : results) {
      if (!record(res)) return internal("record outcome", db_);
    }
    if (grouped && !exec("RELEASE atomic_group")) return internal("release group savepoint", db_);
    last_mid = mutations[end - 1].mid;
    for (auto& row : rows) out.rows.push_back(std::move(row));
    for (auto& res : results) out.results.results.push_back(std::move(res));
    i = end;
  }

  {
    sqlite3_stmt* st = prepare("UPDATE clients SET last_mid=? WHERE client_id=?");
    Reset r{st};
    sqlite3_bind_int64(st, 1, last_mid);
    bind_text(st, 2, client);
    if (sqlite3_step(st) != SQLITE_DONE) return internal("update client", db_);
  }
  {
    // Keep the newest `outcome_retention` outcomes of this client.
    sqlite3_stmt* st = prepare(
        "DELETE FROM client_outcomes WHERE client_id=?1 AND mid < (SELECT mid FROM client_outcomes "
        "WHERE client_id=?1 ORDER BY mid DESC LIMIT 1 OFFSET ?2)");
    Reset r{st};
    bind_text(st, 1, client);
    sqlite3_bind_int64(st, 2, options_.outcome_retention - 1);
    if (sqlite3_step(st) != SQLITE_DONE) return internal("prune outcomes", db_);
  }
  // meta.head_seq is written once per group, in commit_group().
  out.results.seq = head;
  return out;
}

Result<Store::Applied> Store::apply_one(const Mutation& m, const std::string& client, const ApplyContext& ctx,
                                       const WriteCheck& check, const ReadCheck& readable, std::int64_t& head) {
  sqlite3_stmt* put_doc =
      prepare("INSERT OR REPLACE INTO documents(collection, id, version, fields, deleted) VALUES (?,?,?,?,?)");
  sqlite3_stmt* put_log = prepare(
      "INSERT INTO log(seq, kind, collection, id, op, version, fields, prior_fields, origin_client, origin_mid, "
      "committed_at) VALUES (?, 'change', ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!put_doc || !put_log) return internal("prepare", db_);
  Applied out;
  MutationResult& res = out.result;
  res.mid = m.mid;
  std::optional<Document> current = get_document(m.collection, m.id);
  const Document* live = (current && !current->deleted) ? &*current : nullptr;
  std::optional<Error> rejection;
  std::optional<Json> after;
  // The write rule's "before" half runs first, so a caller learns nothing (not even a
  // conflict with a version) about a document it may not write. Tombstones count as absent
  // for the same reason: their version is not the caller's business.
  rejection = check(m, live, nullptr);
  if (!rejection) {
    auto outcome = apply_mutation(live, m, ctx);
    if (!outcome) {
      rejection = outcome.error();
    } else {
      after = outcome->fields;
      rejection = check(m, live, after ? &*after : nullptr);
      if (!rejection && after) rejection = check_unique(m.collection, m.id, *after);
    }
  }
  if (rejection) {
    if (rejection->code == codes::kInternal) return *rejection;
    res.status = ResultStatus::Rejected;
    res.code = rejection->code;
    res.message = rejection->message;
    // A failed condition or base_version: the writer gets the document as it is, when it may
    // read it, so it can show why and retry from the truth.
    if (rejection->code == codes::kConflict && (rejection->field == "if" || rejection->field == "base_version")) {
      if (!live) {
        res.current = Json(nullptr);
      } else if (readable && readable(m, *live)) {
        res.current = Json{{"version", live->version}, {"fields", live->fields}};
      }
    }
    return out;
  }
  const std::int64_t seq = ++head;
  ChangeOp op = m.op == MutationOp::Delete ? ChangeOp::Delete
                : (m.op == MutationOp::Update ? ChangeOp::Update : ChangeOp::Insert);
  LogRow row;
  row.seq = seq;
  row.collection = m.collection;
  row.id = m.id;
  row.op = op;
  row.version = seq;
  row.fields = after ? *after : Json::object();
  row.origin = Origin{client, m.mid};
  row.visibility = after ? *after : (live ? live->fields : Json::object());
  if (op == ChangeOp::Update && live) row.prior = live->fields;
  std::string fields_text = row.fields.dump();
  {
    Reset r{put_doc};
    bind_text(put_doc, 1, m.collection);
    bind_text(put_doc, 2, m.id);
    sqlite3_bind_int64(put_doc, 3, seq);
    bind_text(put_doc, 4, fields_text);
    sqlite3_bind_int(put_doc, 5, after ? 0 : 1);
    if (sqlite3_step(put_doc) != SQLITE_DONE) return internal("write document", db_);
  }
  if (!write_unique(m.collection, m.id, after ? &*after : nullptr)) return internal("write unique keys", db_);
  {
    Reset r{put_log};
    sqlite3_bind_int64(put_log, 1, seq);
    bind_text(put_log, 2, m.collection);
    bind_text(put_log, 3, m.id);
    sqlite3_bind_text(put_log, 4, op_name(op), -1, SQLITE_STATIC);
    sqlite3_bind_int64(put_log, 5, seq);
    bind_text(put_log, 6, fields_text);
    if (op == ChangeOp::Delete) bind_text(put_log, 7, row.visibility.dump());
    if (op == ChangeOp::Update && !row.prior.is_null()) bind_text(put_log, 7, row.prior.dump());
    bind_text(put_log, 8, client);
    sqlite3_bind_int64(put_log, 9, m.mid);
    sqlite3_bind_int64(put_log, 10, ctx.now_ms);
    if (sqlite3_step(put_log) != SQLITE_DONE) return internal("append log", db_);
  }
  res.status = ResultStatus::Applied;
  res.seq = seq;
  out.row = std::move(row);
  return out;
}

Result<LogRow> Store::publish(const PublishRequest& req, const PublishCheck& check) {
  if (!in_group_) return make_error(codes::kInternal, "publish outside a group");
  std::string err;
  if (!savepoint(&err)) return make_error(codes::kInternal, "savepoint: " + err);
  Result<LogRow> res = make_error(codes::kInternal, "not published");
  try {
    res = publish_in_savepoint(req, check);
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

Result<LogRow> Store::publish_in_savepoint(const PublishRequest& req, const PublishCheck& check) {
  LogRow row;
  row.is_event = true;
  row.name = req.name;
  row.collection = req.collection;
  row.id = req.id;
  row.data = req.data.is_null() ? Json::object() : req.data;
  std::optional<Document> doc;
  if (!req.collection.empty() && !req.id.empty()) {
    doc = get_document(req.collection, req.id);
    if (doc && doc->deleted) doc.reset();
    if (doc) row.visibility = doc->fields;
  }
  // Checked here, in the transaction that assigns the seq, so the document the caller was
  // allowed to publish about is the one subscribers' visibility is decided on.
  if (check) {
    if (auto e = check(doc)) return *e;
  }
  std::int64_t seq = group_head_ + 1;
  sqlite3_stmt* st = prepare(
      "INSERT INTO log(seq, kind, collection, id, fields, prior_fields, name, committed_at) "
      "VALUES (?, 'event', ?, ?, ?, ?, ?, ?)");
  if (!st) return internal("publish", db_);
  Reset r{st};
  sqlite3_bind_int64(st, 1, seq);
  bind_text(st, 2, row.collection);
  bind_text(st, 3, row.id);
  bind_text(st, 4, row.data.dump());
  if (!row.visibility.is_null()) bind_text(st, 5, row.visibility.dump());
  bind_text(st, 6, row.name);
  sqlite3_bind_int64(st, 7, now_unix_ms());
  if (sqlite3_step(st) != SQLITE_DONE) return internal("publish", db_);
  row.seq = seq;
  return row;
}

void Store::maybe_prune() {
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

void Store::checkpoint() {
  std::string err;
  if (!exec("PRAGMA wal_checkpoint(TRUNCATE)", &err)) log_warn("checkpoint failed", {{"error", err}});
}

}  // namespace syncline::server
