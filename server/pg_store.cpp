// Layer: server. The PostgreSQL store's connection, schema, group commit, write transaction
// and pruning. The read path is in pg_store_read.cpp.
#include "pg_store.hpp"

#include <libpq-fe.h>
#include <openssl/sha.h>

#include <algorithm>
#include <set>
#include <mutex>

#include "log.hpp"
#include "pg_store_util.hpp"

namespace syncline::server {
using namespace pg_util;
namespace {

// Same tables as the SQLite store. Text columns that order documents and name things use the
// "C" collation, so snapshot pages follow byte order (as SQLite and std::string do) whatever
// the database's locale. JSON is stored as text, byte for byte as written (max_bytes bounds
// count those bytes); the scope indexes cast it to jsonb.
const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta(key, value) VALUES ('schema_version', 1), ('head_seq', 0), ('pruned_through', 0)
  ON CONFLICT (key) DO NOTHING;
-- One seq space for document changes (kind 'change') and custom events (kind 'event').
CREATE TABLE IF NOT EXISTS log (
  seq BIGINT PRIMARY KEY,
  kind TEXT NOT NULL,
  collection TEXT COLLATE "C" NOT NULL DEFAULT '',
  id TEXT COLLATE "C" NOT NULL DEFAULT '',
  op TEXT,
  version BIGINT,
  fields TEXT,             -- change: document after; event: data
  prior_fields TEXT,       -- delete/update: document before; event: document at publish time. Never sent.
  name TEXT,               -- event name
  origin_client TEXT,
  origin_mid BIGINT,
  committed_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
  collection TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  version BIGINT NOT NULL,
  fields TEXT NOT NULL,
  deleted SMALLINT NOT NULL DEFAULT 0,
  PRIMARY KEY (collection, id)
);
-- The primary key enforces a unique key across nodes even if two ever raced past the rules.
CREATE TABLE IF NOT EXISTS unique_keys (
  collection TEXT COLLATE "C" NOT NULL,
  constraint_name TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (collection, constraint_name, key)
);
CREATE INDEX IF NOT EXISTS unique_keys_by_doc ON unique_keys(collection, id);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT COLLATE "C" PRIMARY KEY,
  subject TEXT NOT NULL,
  last_mid BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS client_outcomes (
  client_id TEXT COLLATE "C" NOT NULL,
  mid BIGINT NOT NULL,
  status TEXT NOT NULL,
  seq BIGINT NOT NULL DEFAULT 0,
  code TEXT,
  message TEXT,
  PRIMARY KEY (client_id, mid)
);
)SQL";

// Advisory lock keys (pg_advisory_xact_lock): schema creation and pruning, one node at a time.
constexpr const char* kSchemaLock = "SELECT pg_advisory_xact_lock(7355608001)";
constexpr const char* kPruneLock = "SELECT pg_try_advisory_xact_lock(7355608002)";

void ignore_notice(void*, const char*) {}

// One floor per database URL in this process: the writer's store and its readers share it.
std::shared_ptr<std::atomic<std::int64_t>> shared_floor(const std::string& url) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<std::atomic<std::int64_t>>> floors;
  std::lock_guard<std::mutex> lk(mu);
  auto& w = floors[url];
  auto f = w.lock();
  if (!f) {
    f = std::make_shared<std::atomic<std::int64_t>>(0);
    w = f;
  }
  return f;
}

std::string conn_error(pg_conn* c) {
  std::string m = c ? PQerrorMessage(c) : "no connection";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m.empty() ? "postgresql error" : m;
}

}  // namespace

void PgStore::ResultDeleter::operator()(pg_result* r) const { PQclear(r); }

PgStore::PgStore(std::string url, bool reader, StoreOptions options, const Config& config)
    : url_(std::move(url)), reader_(reader), options_(options), config_(config),
      rules_([&config](const std::string& collection) -> const std::vector<std::vector<std::string>>* {
               const CollectionConfig* cc = config.collection(collection);
               return cc ? &cc->unique : nullptr;
             },
             options.outcome_retention),
      floor_(shared_floor(url_)) {}

PgStore::~PgStore() {
  if (conn_) PQfinish(conn_);
}

bool PgStore::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

std::optional<Error> PgStore::connect() {
  if (conn_) PQfinish(conn_);
  prepared_.clear();
  listening_ = false;
  conn_ = PQconnectdb(url_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string m = conn_error(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    return make_error(codes::kInternal, "cannot connect to postgresql: " + m, "--db");
  }
  PQsetNoticeProcessor(conn_, &ignore_notice, nullptr);
  std::string err;
  const std::string lock_ms = std::to_string(std::max<std::int64_t>(1, options_.group_lock_timeout_ms));
  // synchronous_commit=on whatever the server's or role's default: a commit returns once its
  // WAL is on disk. Readers cannot write, so only the Writer thread changes the data.
  // plan_cache_mode: a prepared statement is planned for its parameters on every run. The
  // tables start empty and grow, and a generic plan made early is kept: the prefetch of one
  // document was once planned as "every document of the collection, filtered by id" that way,
  // and cost grew with the table. Planning these statements costs far less than such a plan.
  if (!exec("SET synchronous_commit = on", &err) || !exec("SET client_encoding = 'UTF8'", &err) ||
      !exec("SET plan_cache_mode = force_custom_plan", &err) ||
      (reader_ && !exec("SET default_transaction_read_only = on", &err)) ||
      // The head row is the cluster-wide writer lock. A node that hangs inside a group (stopped,
      // partitioned) would hold it for every node: PostgreSQL ends such a session after 10 s,
      // and a group that cannot get the lock in 10 s fails (its clients retry) instead of
      // queueing forever behind it.
      (!reader_ && (!exec(("SET idle_in_transaction_session_timeout = " + lock_ms).c_str(), &err) ||
                    !exec(("SET lock_timeout = " + lock_ms).c_str(), &err)))) {
    return make_error(codes::kInternal, "cannot set up postgresql session: " + err, "--db");
  }
  return std::nullopt;
}

std::optional<Error> PgStore::ensure_connected() {
  if (connected()) return std::nullopt;
  return connect();
}

bool PgStore::between_transactions() const {
  return !in_group_ && conn_ && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

bool PgStore::reconnected(bool was_between) {
  // A connection PostgreSQL closed (a restart, an idle timeout) still looks fine until a
  // statement fails on it. Outside a transaction nothing is lost with it: connect again and
  // let the caller run the statement once more. Inside one, the caller must know it failed.
  if (!was_between || reconnecting_ || !conn_ || PQstatus(conn_) != CONNECTION_BAD) return false;
  reconnecting_ = true;
  const bool ok = !connect();
  reconnecting_ = false;
  return ok;
}

bool PgStore::exec(const char* sql, std::string* err) {
  if (!conn_) {
    if (err) *err = "no connection";
    return false;
  }
  const bool between = between_transactions();
  ResultPtr r(PQexec(conn_, sql));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    if (reconnected(between)) return exec(sql, err);
    if (err) *err = r ? PQresultErrorMessage(r.get()) : conn_error(conn_);
    return false;
  }
  return true;
}

namespace {
// Text parameters as libpq takes them: pointers (null for SQL NULL) and lengths.
struct ParamPointers {
  explicit ParamPointers(const std::vector<PgStore::Param>& params) {
    values.reserve(params.size());
    lengths.reserve(params.size());
    for (const auto& p : params) {
      values.push_back(p ? p->c_str() : nullptr);
      lengths.push_back(p ? static_cast<int>(p->size()) : 0);
    }
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
};
}  // namespace

const std::string* PgStore::prepared(const std::string& sql, int n_params, std::string* err) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return &it->second;
  std::string name = "s" + std::to_string(prepared_.size() + 1);
  ResultPtr p(PQprepare(conn_, name.c_str(), sql.c_str(), n_params, nullptr));
  if (!p || PQresultStatus(p.get()) != PGRES_COMMAND_OK) {
    *err = p ? PQresultErrorMessage(p.get()) : conn_error(conn_);
    if (connected()) log_error("postgresql prepare failed", {{"error", *err}, {"sql", sql}});
    return nullptr;
  }
  return &prepared_.emplace(sql, std::move(name)).first->second;
}

PgStore::ResultPtr PgStore::run(const std::string& sql, const std::vector<Param>& params, std::string* err) {
  if (!conn_) {
    *err = "no connection";
    return nullptr;
  }
  const bool between = between_transactions();
  const std::string* name = prepared(sql, static_cast<int>(params.size()), err);
  if (!name) {
    if (reconnected(between)) return run(sql, params, err);
    return nullptr;
  }
  const ParamPointers pp(params);
  ResultPtr r(PQexecPrepared(conn_, name->c_str(), static_cast<int>(params.size()), pp.values.data(),
                             pp.lengths.data(), nullptr, 0));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    if (reconnected(between)) return run(sql, params, err);
    *err = r ? PQresultErrorMessage(r.get()) : conn_error(conn_);
    while (!err->empty() && err->back() == '\n') err->pop_back();
    return nullptr;
  }
  return r;
}

std::optional<std::vector<PgStore::ResultPtr>> PgStore::pipeline(const std::vector<Statement>& statements,
                                                                  std::string* err) {
  if (!conn_) {
    *err = "no connection";
    return std::nullopt;
  }
  const bool between = between_transactions();
  auto retry_or_fail = [&]() -> std::optional<std::vector<ResultPtr>> {
    if (reconnected(between)) return pipeline(statements, err);
    while (!err->empty() && err->back() == '\n') err->pop_back();
    return std::nullopt;
  };
  // Prepared before the pipeline starts (PQprepare waits for its answer).
  std::vector<const std::string*> names;
  for (const Statement& st : statements) {
    const std::string* name = nullptr;
    if (!st.params.empty() && !(name = prepared(st.sql, static_cast<int>(st.params.size()), err))) {
      return retry_or_fail();
    }
    names.push_back(name);
  }
  if (!PQenterPipelineMode(conn_)) {
    *err = conn_error(conn_);
    return retry_or_fail();
  }
  bool sent = true;
  for (std::size_t i = 0; i < statements.size() && sent; ++i) {
    const Statement& st = statements[i];
    if (!names[i]) {
      sent = PQsendQueryParams(conn_, st.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
      continue;
    }
    const ParamPointers pp(st.params);
    sent = PQsendQueryPrepared(conn_, names[i]->c_str(), static_cast<int>(st.params.size()), pp.values.data(),
                               pp.lengths.data(), nullptr, 0) == 1;
  }
  sent = sent && PQpipelineSync(conn_) == 1;
  // Each statement's results end with a null; the sync point ends the pipeline. A null on a
  // broken connection ends the reading too.
  std::vector<ResultPtr> results(statements.size());
  std::size_t at = 0;
  bool ok = sent;
  if (!sent) *err = conn_error(conn_);
  while (sent && connected()) {
    PGresult* r = PQgetResult(conn_);
    if (!r) {
      if (++at > statements.size()) break;  // not expected: the sync point comes first
      continue;
    }
    ResultPtr res(r);
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) break;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && ok) {
      ok = false;
      *err = st == PGRES_PIPELINE_ABORTED ? "pipeline aborted" : PQresultErrorMessage(r);
    }
    if (at < results.size() && !results[at]) results[at] = std::move(res);
  }
  if (!connected() || !PQexitPipelineMode(conn_)) {
    if (ok) *err = conn_error(conn_);
    ok = false;
    // A connection that cannot leave pipeline mode is of no further use.
    if (connected()) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
  }
  if (ok && at != statements.size()) {
    ok = false;
    *err = "pipeline ended early";
  }
  if (!ok) {
    return retry_or_fail();
  }
  return results;
}

void PgStore::learn_pruned_through(std::int64_t v) {
  std::int64_t cur = floor_->load();
  while (v > cur && !floor_->compare_exchange_weak(cur, v)) {
  }
}

namespace {
std::string num(std::int64_t v) { return std::to_string(v); }
}  // namespace

namespace {
// A unique key as the primary key holds it: as is, or past kMaxStoredKeyBytes its SHA-256 (a
// btree entry must stay under ~2,700 bytes). Keys are JSON arrays ("[...]"), so the "#" prefix
// never meets a key kept as is.
constexpr std::size_t kMaxStoredKeyBytes = 512;
std::string stored_key(const std::string& key) {
  if (key.size() <= kMaxStoredKeyBytes) return key;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  static const char* hex = "0123456789abcdef";
  std::string out = "#sha256:";
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}
}  // namespace

// The write rules' view of this store: the open group's transaction, one request at a time.
//
// Round trips are what a group costs on PostgreSQL, and the head row lock makes every node wait
// for them, so a request's writes are kept here and sent at its end in one statement (finish()),
// and the documents it will touch are read in one (prefetch). Safe because
// nothing else writes while the group holds the head row: this request's own reads see its
// writes through the document cache, and the log, outcome and last-mid rows it writes are
// never read back within the request (a batch's mids strictly increase). Client rows and unique
// keys are still written at once: they are locked or checked by the database itself.
class PgStore::Transaction final : public WriteTransaction {
 public:
  explicit Transaction(PgStore& s) : s_(s) {}

  // The request's first round trip: its savepoint, the client row (when it has a client) and
  // the documents the request names, so the rules' first reads need no statement of their own.
  std::optional<Error> start(const std::string* client_id, const std::vector<std::pair<std::string, std::string>>& keys) {
    std::vector<Statement> st{{"SAVEPOINT request"}};
    if (client_id) st.push_back({kClientSql, {*client_id}});
    std::vector<std::pair<std::string, std::string>> wanted;
    if (auto p = prefetch_statement(keys, wanted)) st.push_back(std::move(*p));
    auto r = s_.pipeline(st, &err_);
    if (!r) return failed("savepoint");
    if (client_id) client_ = std::make_pair(*client_id, binding((*r)[1].get()));
    if (!wanted.empty()) take_documents(wanted, r->back().get());
    return std::nullopt;
  }
  Result<std::optional<ClientBinding>> client(const std::string& client_id) override {
    if (client_ && client_->first == client_id) {
      auto b = std::move(client_->second);
      client_.reset();
      return b;
    }
    auto r = q(kClientSql, {client_id});
    if (!r) return failed("clients");
    return binding(r.get());
  }
  std::optional<Error> bind_client(const std::string& client_id, const std::string& subject, std::int64_t now_ms) override {
    return done(q("INSERT INTO clients(client_id, subject, last_mid, created_at) VALUES ($1,$2,0,$3)",
                  {client_id, subject, num(now_ms)}),
                "bind client");
  }
  std::optional<Error> set_last_mid(const std::string& client_id, std::int64_t mid) override {
    w_.last_mid[client_id] = mid;
    return std::nullopt;
  }
  Result<std::optional<MutationResult>> outcome(const std::string& client_id, std::int64_t mid) override {
    auto r = q("SELECT status, seq, code, message FROM client_outcomes WHERE client_id=$1 AND mid=$2",
               {client_id, num(mid)});
    if (!r) return failed("outcome");
    if (PQntuples(r.get()) == 0) return std::optional<MutationResult>{};
    MutationResult res;
    res.mid = mid;
    res.status = col_text(r.get(), 0, 0) == "rejected" ? ResultStatus::Rejected : ResultStatus::Applied;
    res.seq = col_int(r.get(), 0, 1);
    if (!col_null(r.get(), 0, 2)) res.code = col_text(r.get(), 0, 2);
    if (!col_null(r.get(), 0, 3)) res.message = col_text(r.get(), 0, 3);
    return std::optional<MutationResult>{std::move(res)};
  }
  std::optional<Error> record_outcome(const std::string& client_id, const MutationResult& res) override {
    w_.outcomes[{client_id, res.mid}] = res;
    return std::nullopt;
  }
  std::optional<Error> keep_newest_outcomes(const std::string& client_id, std::int64_t keep) override {
    w_.keep_outcomes[client_id] = keep;
    return std::nullopt;
  }
  void prefetch_documents(const std::vector<std::pair<std::string, std::string>>& keys) override {
    std::vector<std::pair<std::string, std::string>> wanted;
    auto st = prefetch_statement(keys, wanted);
    if (!st) return;
    // A failed prefetch is not an error: document() reads what is missing one at a time.
    if (auto r = q(st->sql, st->params)) take_documents(wanted, r.get());
  }
  Result<std::optional<Document>> document(const std::string& collection, const std::string& id) override {
    auto key = std::make_pair(collection, id);
    if (auto it = w_.docs.find(key); it != w_.docs.end()) return it->second;
    auto d = s_.get_document(collection, id);
    w_.docs[key] = d;
    return d;
  }
  std::optional<Error> put_document(const Document& doc) override {
    auto key = std::make_pair(doc.collection, doc.id);
    w_.docs[key] = doc;
    w_.dirty.insert(std::move(key));
    return std::nullopt;
  }
  Result<std::optional<std::string>> unique_owner(const std::string& collection, const UniqueKey& key) override {
    auto r = q("SELECT id FROM unique_keys WHERE collection=$1 AND constraint_name=$2 AND key=$3",
               {collection, key.constraint, stored_key(key.key)});
    if (!r) return failed("unique lookup");
    if (PQntuples(r.get()) == 0) return std::optional<std::string>{};
    return std::optional<std::string>{col_text(r.get(), 0, 0)};
  }
  std::optional<Error> set_unique_keys(const std::string& collection, const std::string& id,
                                       const std::vector<UniqueKey>& keys) override {
    if (auto e = done(q("DELETE FROM unique_keys WHERE collection=$1 AND id=$2", {collection, id}), "write unique keys")) {
      return e;
    }
    // A plain INSERT: the rules found no other owner, and a key held by another document is a
    // primary-key violation (an internal error for this request), never a silent takeover.
    for (const auto& k : keys) {
      if (auto e = done(q("INSERT INTO unique_keys(collection, constraint_name, key, id) VALUES ($1,$2,$3,$4)",
                          {collection, k.constraint, stored_key(k.key), id}),
                        "write unique keys")) {
        return e;
      }
    }
    return std::nullopt;
  }
  std::optional<Error> append(const LogRow& row, std::int64_t now_ms) override {
    std::vector<Param> p;
    if (row.is_event) {
      p = {num(row.seq), std::string("event"), row.collection, row.id, Param{}, Param{}, row.data.dump(),
           row.visibility.is_null() ? Param{} : Param{row.visibility.dump()}, row.name, Param{}, Param{}, num(now_ms)};
    } else {
      Param prior;
      if (row.op == ChangeOp::Delete) prior = row.visibility.dump();
      if (row.op == ChangeOp::Update && !row.prior.is_null()) prior = row.prior.dump();
      p = {num(row.seq), std::string("change"), row.collection, row.id, std::string(to_string(row.op)),
           num(row.version), row.fields.dump(), prior, Param{}, row.origin ? Param{row.origin->client} : Param{},
           row.origin ? Param{num(row.origin->mid)} : Param{}, num(now_ms)};
    }
    w_.log.push_back(std::move(p));
    return std::nullopt;
  }
  std::optional<Error> begin_scope() override {
    std::string err;
    if (!s_.exec("SAVEPOINT atomic_group", &err)) return make_error(codes::kInternal, "group savepoint: " + err);
    scope_ = w_;
    return std::nullopt;
  }
  std::optional<Error> release_scope() override {
    std::string err;
    if (!s_.exec("RELEASE SAVEPOINT atomic_group", &err)) {
      return make_error(codes::kInternal, "release group savepoint: " + err);
    }
    scope_.reset();
    return std::nullopt;
  }
  void rollback_scope() override {
    s_.exec("ROLLBACK TO SAVEPOINT atomic_group");
    s_.exec("RELEASE SAVEPOINT atomic_group");
    if (scope_) w_ = std::move(*scope_);
    scope_.reset();
  }

  // Sends what the request wrote (documents, log rows, outcomes and last mids in one statement),
  // prunes outcomes and releases the request's savepoint: one round trip.
  std::optional<Error> finish() {
    std::vector<Statement> st;
    if (!w_.dirty.empty() || !w_.log.empty() || !w_.outcomes.empty() || !w_.last_mid.empty()) {
      std::vector<std::vector<Param>> cols(kFlushColumns);
      auto add = [&cols](std::size_t first, std::vector<Param> row) {
        for (std::size_t c = 0; c < row.size(); ++c) cols[first + c].push_back(std::move(row[c]));
      };
      for (const auto& key : w_.dirty) {
        const Document& d = *w_.docs.at(key);
        add(0, {d.collection, d.id, num(d.version), d.fields.dump(), std::string(d.deleted ? "1" : "0")});
      }
      for (auto& row : w_.log) add(5, std::move(row));
      for (const auto& [key, res] : w_.outcomes) {
        add(17, {key.first, num(res.mid), std::string(to_string(res.status)), num(res.seq),
                 res.code.empty() ? Param{} : Param{res.code}, res.message.empty() ? Param{} : Param{res.message}});
      }
      for (const auto& [client, mid] : w_.last_mid) add(23, {client, num(mid)});
      Statement flush{kFlushSql};
      flush.params.reserve(cols.size());
      for (const auto& c : cols) flush.params.emplace_back(array_literal(c));
      st.push_back(std::move(flush));
    }
    // After the outcomes are in (a statement of its own: the one above sees none of its rows).
    for (const auto& [client, keep] : w_.keep_outcomes) st.push_back({kPruneOutcomesSql, {client, num(keep - 1)}});
    st.push_back({"RELEASE SAVEPOINT request"});
    w_ = Writes{};
    if (!s_.pipeline(st, &err_)) return failed("write request");
    return std::nullopt;
  }

 private:
  // Under a row lock: the mid check and the set_last_mid that follows cannot interleave with
  // another node's request for the same client.
  static constexpr const char* kClientSql = "SELECT subject, last_mid FROM clients WHERE client_id=$1 FOR UPDATE";
  static constexpr const char* kPruneOutcomesSql =
      "DELETE FROM client_outcomes WHERE client_id=$1 AND mid < (SELECT mid FROM client_outcomes "
      "WHERE client_id=$1 ORDER BY mid DESC LIMIT 1 OFFSET $2::bigint)";
  // Both statements keep one text for any number of rows (arrays), so each connection prepares
  // them once, however many rows a request has. Tables are read through `= ANY(array)` on their
  // key, which the planner estimates from the arrays themselves (a join with unnest() is
  // estimated at 100 rows whatever its size, and was planned as a sequential scan).
  static constexpr const char* kPrefetchSql =
      "SELECT collection, id, version, fields, deleted FROM documents "
      "WHERE collection = ANY($1::text[]) AND id = ANY($2::text[])";
  // $1-$5 documents, $6-$17 log rows, $18-$23 outcomes, $24-$25 last mids.
  static constexpr std::size_t kFlushColumns = 25;
  static constexpr const char* kFlushSql =
      "WITH d AS (INSERT INTO documents(collection, id, version, fields, deleted) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::smallint[]) "
      "ON CONFLICT (collection, id) DO UPDATE SET version=EXCLUDED.version, fields=EXCLUDED.fields, "
      "deleted=EXCLUDED.deleted), "
      "l AS (INSERT INTO log(seq, kind, collection, id, op, version, fields, prior_fields, name, origin_client, "
      "origin_mid, committed_at) SELECT * FROM unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], "
      "$11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[])), "
      "o AS (INSERT INTO client_outcomes(client_id, mid, status, seq, code, message) "
      "SELECT * FROM unnest($18::text[], $19::bigint[], $20::text[], $21::bigint[], $22::text[], $23::text[]) "
      "ON CONFLICT (client_id, mid) DO UPDATE SET status=EXCLUDED.status, seq=EXCLUDED.seq, code=EXCLUDED.code, "
      "message=EXCLUDED.message), "
      "m AS (UPDATE clients SET last_mid = v.mid FROM unnest($24::text[], $25::bigint[]) AS v(client_id, mid) "
      "WHERE clients.client_id = ANY($24::text[]) AND clients.client_id = v.client_id) "
      "SELECT 1";

  // The client row kClientSql read, if there is one.
  static std::optional<ClientBinding> binding(const PGresult* r) {
    if (PQntuples(r) == 0) return std::nullopt;
    return ClientBinding{col_text(r, 0, 0), col_int(r, 0, 1)};
  }
  // The read of the keys not read yet (into `wanted`); nullopt when there are none.
  std::optional<Statement> prefetch_statement(const std::vector<std::pair<std::string, std::string>>& keys,
                                              std::vector<std::pair<std::string, std::string>>& wanted) const {
    std::set<std::pair<std::string, std::string>> seen;
    std::set<std::string> collections, ids;
    for (const auto& k : keys) {
      if (w_.docs.count(k) || !seen.insert(k).second) continue;
      wanted.push_back(k);
      collections.insert(k.first);
      ids.insert(k.second);
    }
    if (wanted.empty()) return std::nullopt;
    auto list = [](const std::set<std::string>& v) { return array_literal(std::vector<Param>(v.begin(), v.end())); };
    return Statement{kPrefetchSql, {list(collections), list(ids)}};
  }
  void take_documents(const std::vector<std::pair<std::string, std::string>>& wanted, const PGresult* r) {
    for (const auto& k : wanted) w_.docs[k] = std::nullopt;  // absent unless found
    const std::set<std::pair<std::string, std::string>> keep(wanted.begin(), wanted.end());
    for (int row = 0; row < PQntuples(r); ++row) {
      Document d;
      d.collection = col_text(r, row, 0);
      d.id = col_text(r, row, 1);
      // The read returns every (collection, id) combination of its two lists: keep the wanted.
      if (!keep.count({d.collection, d.id})) continue;
      d.version = col_int(r, row, 2);
      d.fields = parse_stored(col_text(r, row, 3));
      if (!d.fields.is_object()) d.fields = Json::object();
      d.deleted = col_int(r, row, 4) != 0;
      w_.docs[{d.collection, d.id}] = std::move(d);
    }
  }

  struct Writes {
    std::map<std::pair<std::string, std::string>, std::optional<Document>> docs;  // read or written
    std::set<std::pair<std::string, std::string>> dirty;                          // written
    std::vector<std::vector<Param>> log;
    std::map<std::pair<std::string, std::int64_t>, MutationResult> outcomes;
    std::map<std::string, std::int64_t> last_mid;
    std::map<std::string, std::int64_t> keep_outcomes;
  };

  ResultPtr q(const std::string& sql, const std::vector<Param>& params) { return s_.run(sql, params, &err_); }
  Error failed(const char* what) { return make_error(codes::kInternal, std::string(what) + ": " + err_); }
  std::optional<Error> done(const ResultPtr& r, const char* what) {
    if (!r) return failed(what);
    return std::nullopt;
  }
  PgStore& s_;
  std::string err_;
  Writes w_;
  std::optional<Writes> scope_;  // the writes as they were at begin_scope
  std::optional<std::pair<std::string, std::optional<ClientBinding>>> client_;  // read by start()
};

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url, StoreOptions options, const Config& config) {
  std::unique_ptr<PgStore> s(new PgStore(url, false, options, config));
  if (auto e = s->connect()) return *e;
  std::string err;
  // The schema and the scope indexes this config needs, by name. A node joining a running
  // cluster finds them all and runs no DDL: DDL takes table locks that wait for (and can
  // deadlock with) the other nodes' groups.
  std::vector<std::pair<std::string, std::vector<std::string>>> indexes;  // name, path
  for (const auto& path : scope_paths(config)) {
    std::string name;
    for (const auto& part : path) name += (name.empty() ? "" : ".") + part;
    indexes.emplace_back(name, path);
  }
  bool ready = false;
  auto exists = s->run("SELECT to_regclass('meta') IS NOT NULL", {}, &err);
  if (!exists) return make_error(codes::kInternal, "cannot read the schema: " + err, "--db");
  if (col_text(exists.get(), 0, 0) != "t") {
    // First start on this database: the DDL below.
  } else if (auto v = s->run("SELECT value FROM meta WHERE key='schema_version'", {}, &err);
             v && PQntuples(v.get()) == 1 && col_int(v.get(), 0, 0) == 1) {
    ready = true;
    for (const auto& [name, path] : indexes) {
      auto i = s->run("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1",
                      {"documents_scope_key:" + name}, &err);
      if (!i || PQntuples(i.get()) != 1) ready = false;
    }
  }
  if (ready) return finish_open(std::move(s));
  // Under a transaction-scoped advisory lock: CREATE ... IF NOT EXISTS run by two nodes at once
  // can still collide in the catalog.
  if (!s->exec("BEGIN", &err) || !s->exec(kSchemaLock, &err) || !s->exec(kSchema, &err)) {
    s->exec("ROLLBACK");
    return make_error(codes::kInternal, "cannot initialise database: " + err, "--db");
  }
  // Scoped reads (a customer's own bookings) go through an index on the rule's field, so their
  // cost follows what the caller may see, not the size of the collection.
  for (const auto& [name, path] : indexes) {
    // (Earlier forms: "documents_scope:" indexed the whole value and failed past ~2,700 bytes;
    // "documents_scope_prefix:" failed on documents holding U+0000.)
    std::string drop1 = "DROP INDEX IF EXISTS \"documents_scope:" + name + "\"";
    std::string drop2 = "DROP INDEX IF EXISTS \"documents_scope_prefix:" + name + "\"";
    std::string sql = "CREATE INDEX IF NOT EXISTS \"documents_scope_key:" + name + "\" ON documents(collection, " +
                      scope_index_sql(path) + ", id) WHERE deleted = 0";
    if (!s->exec(drop1.c_str(), &err) || !s->exec(drop2.c_str(), &err) || !s->exec(sql.c_str(), &err)) {
      s->exec("ROLLBACK");
      return make_error(codes::kInternal, "cannot create index on " + name + ": " + err, "--db");
    }
  }
  if (!s->exec("COMMIT", &err)) return make_error(codes::kInternal, "cannot initialise database: " + err, "--db");
  return finish_open(std::move(s));
}

Result<std::unique_ptr<PgStore>> PgStore::finish_open(std::unique_ptr<PgStore> s) {
  std::string err;
  auto r = s->run("SELECT key, value FROM meta", {}, &err);
  if (!r) return make_error(codes::kInternal, "meta: " + err, "--db");
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    std::string k = col_text(r.get(), i, 0);
    if (k == "head_seq") s->head_ = col_int(r.get(), i, 1);
    if (k == "pruned_through") s->pruned_through_ = col_int(r.get(), i, 1);
  }
  s->group_head_ = s->head_;
  s->learn_pruned_through(s->pruned_through_);
  return s;
}

Result<std::unique_ptr<PgStore>> PgStore::open_reader(const std::string& url, StoreOptions options,
                                                     const Config& config) {
  std::unique_ptr<PgStore> s(new PgStore(url, true, options, config));
  if (auto e = s->connect()) return *e;
  return s;
}

std::optional<Error> PgStore::begin_group() {
  // A connection lost in an earlier group (or between groups) is replaced here, never inside
  // a group: what a group wrote lives only in its own transaction.
  if (auto e = ensure_connected()) return e;
  // BEGIN inside a transaction is only a warning in PostgreSQL: never let a group continue one
  // left open by an earlier failure.
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) exec("ROLLBACK");
  // The head row lock is the cluster-wide writer lock: held until commit or rollback, so the
  // seqs this group assigns follow the head every other node committed, and no other group can
  // commit in between. Blocks while another node's group is open. One round trip (a dead
  // connection is replaced and the pipeline sent again).
  std::string err;
  auto r = pipeline({{"BEGIN"},
                     {"SELECT value FROM meta WHERE key=$1 FOR UPDATE", {std::string("head_seq")}},
                     {"SELECT value FROM meta WHERE key=$1", {std::string("pruned_through")}}},
                    &err);
  if (!r || PQntuples((*r)[1].get()) != 1) {
    if (connected() && PQtransactionStatus(conn_) != PQTRANS_IDLE) exec("ROLLBACK");
    return make_error(codes::kInternal, "lock head: " + (r ? std::string("no head row") : err));
  }
  head_ = col_int((*r)[1].get(), 0, 0);
  if (PQntuples((*r)[2].get()) == 1) {
    pruned_through_ = std::max(pruned_through_, col_int((*r)[2].get(), 0, 0));
    learn_pruned_through(pruned_through_);
  }
  in_group_ = true;
  group_head_ = head_;
  return std::nullopt;
}

std::optional<Error> PgStore::commit_group() {
  std::string err;
  std::vector<Statement> statements;
  if (group_head_ != head_) {
    // The NOTIFY is delivered when (and only if) the group commits: every node's LogTailer
    // wakes and reads the log after its head.
    statements.push_back({"UPDATE meta SET value=$1 WHERE key='head_seq'", {num(group_head_)}});
    statements.push_back({"SELECT pg_notify('syncline_log', $1)", {num(group_head_)}});
  }
  statements.push_back({"COMMIT"});
  auto r = pipeline(statements, &err);
  // COMMIT of a transaction PostgreSQL had already aborted "succeeds" with the tag ROLLBACK.
  if (r && std::string(PQcmdStatus(r->back().get())) != "COMMIT") {
    r.reset();
    err = "transaction was aborted";
  }
  if (!r) {
    // A connection lost during COMMIT leaves the outcome unknown; the clients are told the
    // request failed, and a resend is answered from the recorded outcome if it did commit.
    if (err.empty()) err = "transaction was aborted";
    rollback_group();
    return make_error(codes::kInternal, "commit: " + err);
  }
  in_group_ = false;
  head_ = group_head_;
  return std::nullopt;
}

void PgStore::maintenance(bool) { maybe_prune(); }

void PgStore::rollback_group() {
  if (connected() && PQtransactionStatus(conn_) != PQTRANS_IDLE) exec("ROLLBACK");
  in_group_ = false;
  group_head_ = head_;
}

bool PgStore::transaction_lost() const {
  if (!in_group_) return false;
  if (!connected()) return true;
  PGTransactionStatusType t = PQtransactionStatus(conn_);
  // IDLE: no transaction any more; INERROR: aborted and no savepoint left to recover it.
  return t == PQTRANS_IDLE || t == PQTRANS_UNKNOWN || t == PQTRANS_INERROR;
}

template <typename R, typename Apply, typename Head>
Result<R> PgStore::request(const std::string* client, const std::vector<std::pair<std::string, std::string>>& keys,
                           Apply apply, Head head_after) {
  if (!in_group_) return make_error(codes::kInternal, "write request outside a group");
  Result<R> res = make_error(codes::kInternal, "not applied");
  try {
    Transaction txn(*this);
    // A failed start may have set the savepoint and failed after it (a lock timeout on the
    // client row): the rollback below then undoes this request alone.
    if (auto e = txn.start(client, keys)) {
      res = *e;
    } else {
      std::int64_t head = group_head_;
      res = apply(txn, head);
      if (res) {
        if (auto e = txn.finish()) res = *e;
      }
    }
  } catch (const std::exception& e) {
    res = make_error(codes::kInternal, std::string("write request: ") + e.what());
  }
  if (res) {
    group_head_ = head_after(*res);
    return res;
  }
  // Undo this request only; the group's earlier requests stay. After a lost connection there
  // is nothing to roll back to (transaction_lost() tells the writer).
  if (connected() && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    exec("ROLLBACK TO SAVEPOINT request");
    exec("RELEASE SAVEPOINT request");
  }
  return res;
}

Result<BatchResult> PgStore::apply_batch(const std::string& client, const std::string& subject,
                                         const std::vector<Mutation>& mutations, const WriteCheck& check,
                                         const ReadCheck& readable) {
  std::vector<std::pair<std::string, std::string>> keys;
  keys.reserve(mutations.size());
  for (const Mutation& m : mutations) keys.emplace_back(m.collection, m.id);
  return request<BatchResult>(
      &client, keys,
      [&](Transaction& txn, std::int64_t& head) {
        return rules_.apply_batch(txn, head, client, subject, mutations, check, readable, now_unix_ms());
      },
      [](const BatchResult& r) { return r.results.seq; });
}

Result<LogRow> PgStore::publish(const PublishRequest& req, const PublishCheck& check) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (!req.collection.empty()) keys.emplace_back(req.collection, req.id);
  return request<LogRow>(
      nullptr, keys,
      [&](Transaction& txn, std::int64_t& head) { return rules_.publish(txn, head, req, check, now_unix_ms()); },
      [](const LogRow& r) { return r.seq; });
}

void PgStore::maybe_prune() {
  if (options_.log_retention <= 0 || !connected()) return;
  std::int64_t slack = std::max<std::int64_t>(1, options_.log_retention / 10);
  if (head_ - pruned_through_ <= options_.log_retention + slack) return;
  const std::int64_t cut = head_ - options_.log_retention;
  // Announce the cut before deleting: a resume on this node that read the log concurrently and
  // then sees the floor above its cursor answers with a reset instead of silently skipping
  // rows. (Other nodes learn it from meta.pruned_through, committed with the delete.)
  const std::int64_t before = floor_->load();
  learn_pruned_through(cut);
  auto undo_floor = [&] {
    std::int64_t expected = cut;
    floor_->compare_exchange_strong(expected, std::max(before, pruned_through_));
  };
  std::string err;
  if (!exec("BEGIN", &err)) {
    undo_floor();
    return;
  }
  // One pruning node at a time; a node that does not get the lock leaves it to the other.
  auto lock = run(kPruneLock, {}, &err);
  if (!lock || PQntuples(lock.get()) != 1 || col_text(lock.get(), 0, 0) != "t") {
    exec("ROLLBACK");
    undo_floor();
    return;
  }
  auto cur = run("SELECT value FROM meta WHERE key='pruned_through'", {}, &err);
  if (cur && PQntuples(cur.get()) == 1 && col_int(cur.get(), 0, 0) >= cut) {
    // Another node pruned at least this far already.
    pruned_through_ = col_int(cur.get(), 0, 0);
    learn_pruned_through(pruned_through_);
    exec("ROLLBACK");
    return;
  }
  bool ok = static_cast<bool>(cur);
  for (const char* sql : {"DELETE FROM log WHERE seq <= $1", "DELETE FROM documents WHERE deleted=1 AND version <= $1",
                          "UPDATE meta SET value=$1 WHERE key='pruned_through'"}) {
    if (!ok) break;
    ok = static_cast<bool>(run(sql, {num(cut)}, &err));
  }
  if (ok) ok = exec("COMMIT", &err) && PQtransactionStatus(conn_) == PQTRANS_IDLE;
  if (ok) {
    pruned_through_ = cut;
  } else {
    if (connected() && PQtransactionStatus(conn_) != PQTRANS_IDLE) exec("ROLLBACK");
    undo_floor();
    log_error("log pruning failed", {{"error", err}});
  }
}

}  // namespace syncline::server
