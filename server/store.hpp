// Layer: server. Durable state in SQLite: the change log (one seq space for changes and custom
// events), the current documents, unique-constraint keys, client bindings and mutation outcomes.
// Beast-free. One Store is one SQLite connection used by one thread: the server opens a writer
// (Store::open, used only by the Writer thread) and a reader (Store::open_reader, used only by
// the io thread for snapshots, resume reads and lookups). WAL lets the reader run while the
// writer commits.
//
// Durability: WAL journal with synchronous=FULL, so a batch whose response was sent survives
// kill -9 and power loss. Writes are grouped: begin_group() opens one IMMEDIATE transaction,
// each request (apply_batch / publish) runs inside its own savepoint in it, and commit_group()
// makes them all durable with one fsync. A request also records each client's last mid and
// per-mutation outcomes in its savepoint, which is what makes resends exactly-once.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "core/document.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/mutation.hpp"
#include "core/protocol.hpp"
#include "core/write_rules.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace syncline::server {


struct StoreOptions {
  std::int64_t log_retention = 100000;  // 0 = keep everything
  std::int64_t outcome_retention = 1000;
};

// An equality a scoped read can be narrowed by in SQL: the field at `path` (or the id, for path
// {"id"}) holds exactly the string `value`. Taken from a read rule's claim condition, which
// matches only string fields with exactly those bytes, so the narrowing never drops a document
// the rule would show.
struct ScopeKey {
  std::vector<std::string> path;
  std::string value;
};

struct SnapshotPage {
  std::int64_t seq = 0;
  std::vector<Document> docs;
  std::optional<std::pair<std::string, std::string>> next;  // (collection, id) to continue after
};

class Store {
 public:
  // `path` may be "sqlite:PATH" or a plain path; parent directories are created. Takes the
  // database's advisory lock and creates the schema: the one writer connection.
  static Result<std::unique_ptr<Store>> open(const std::string& path, StoreOptions options,
                                            const Config& config);
  // A query-only connection to a database already opened by open() (no lock, no schema).
  static Result<std::unique_ptr<Store>> open_reader(const std::string& path, StoreOptions options,
                                                   const Config& config);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writer only: the highest committed seq (not moved by an open group).
  std::int64_t head_seq() const { return head_; }
  // Any thread: rows with seq <= this may be gone from the log (a cursor below it cannot be
  // resumed). Raised *before* a prune deletes rows, so a reader that checks it after reading
  // the log never mistakes a pruned gap for the whole log.
  std::int64_t pruned_through() const { return prune_floor_.load(); }

  // --- group commit (writer only) ---
  // Opens the group's IMMEDIATE transaction.
  std::optional<Error> begin_group();
  // Commits the group (one fsync); on failure the group is rolled back and nothing of it is
  // durable.
  std::optional<Error> commit_group();
  // Work kept off the commit path, done by the writer after it handed a group's results back:
  // log pruning (retention) and WAL checkpoints (SQLite's automatic checkpoint, which runs
  // inside COMMIT and would add its fsyncs to that group's latency, is disabled). `idle`: no
  // request is waiting, so a checkpoint costs nobody anything.
  void maintenance(bool idle);
  void rollback_group();
  // True when SQLite has rolled the group's transaction back by itself (e.g. disk full, I/O
  // error): the savepoints of earlier requests are gone with it.
  bool transaction_lost() const;

  // Applies one request's batch inside the open group, in a savepoint: on a whole-request error
  // ("forbidden": client id bound to another subject; "internal") the savepoint is rolled back
  // and the rest of the group is untouched. Each mutation is applied, rejected or answered
  // duplicate; an atomic group (Mutation::group) is applied in a savepoint of its own, all or
  // none, every member answered with the failing member's cause and failed_mid. A conflict
  // (condition or base_version) carries the document as `current` when `readable` allows.
  // results.seq is the group's head after this request.
  Result<BatchResult> apply_batch(const std::string& client, const std::string& subject,
                                  const std::vector<Mutation>& mutations, const WriteCheck& check,
                                  const ReadCheck& readable = nullptr);

  // Appends a custom event (it gets the next seq) inside the open group, in a savepoint.
  Result<LogRow> publish(const PublishRequest& req, const PublishCheck& check);

  // Log rows with after < seq <= upto, oldest first, at most `limit` rows and, past the first
  // row, at most about `max_bytes` of stored JSON (0: no byte bound). `reached_upto` is set when
  // the read stopped because no row was left up to `upto` (not because of a bound).
  Result<std::vector<LogRow>> read_log(std::int64_t after, std::int64_t upto, std::size_t limit,
                                       std::size_t max_bytes = 0, bool* reached_upto = nullptr);

  std::optional<Document> get_document(const std::string& collection, const std::string& id);

  // Live documents of `collections` (sorted) ordered by (collection, id), strictly after
  // `after`, keeping those `visible` accepts, at most `limit`, read in one transaction. Where
  // `keys` holds a ScopeKey for a collection, only documents with that exact string value are
  // read (through an index: see scope_paths); `visible` still decides. `rows_read` is raised by
  // the rows read from the table. The caller fills page.seq (the seq it has broadcast, which
  // this state includes).
  // `max_bytes` (0: none) ends a page early once its documents' stored JSON reaches it (the page
  // then has a `next`, possibly to an empty last page).
  Result<SnapshotPage> snapshot(const std::vector<std::string>& collections,
                                const std::optional<std::pair<std::string, std::string>>& after,
                                std::size_t limit, const std::function<bool(const Document&)>& visible,
                                const std::map<std::string, ScopeKey>& keys = {},
                                std::atomic<std::int64_t>* rows_read = nullptr, std::size_t max_bytes = 0);

  std::int64_t document_count();
  // Indexed fields for scoped reads: the fields that read rules compare with a claim
  // (`customer_id=eq.{sub}`). The writer creates an index per field at open.
  static std::vector<std::vector<std::string>> scope_paths(const Config& config);
  // WAL checkpoint (TRUNCATE); called on shutdown.
  void checkpoint();

 private:
  explicit Store(sqlite3* db, StoreOptions options, const Config& config);
  static Result<sqlite3*> open_db(const std::string& path);
  bool exec(const char* sql, std::string* err = nullptr);
  sqlite3_stmt* prepare(const char* sql);  // cached
  // Savepoint helpers for one request of the group.
  bool savepoint(std::string* err);
  void release();
  void rollback_savepoint();
  class Transaction;  // the WriteTransaction the write rules run in (store.cpp)
  void maybe_prune();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
  std::optional<Error> check_unique(const std::string& collection, const std::string& id, const Json& fields);
  bool write_unique(const std::string& collection, const std::string& id, const Json* fields);

  sqlite3* db_;
  int lock_fd_ = -1;  // flock on PATH.lock: one server per database
  StoreOptions options_;
  const Config& config_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  WriteRules rules_;
  std::int64_t head_ = 0;        // committed
  std::int64_t group_head_ = 0;  // inside an open group: head including its requests so far
  bool in_group_ = false;
  std::int64_t pruned_through_ = 0;  // committed prune (writer)
  std::atomic<std::int64_t> prune_floor_{0};
  int wal_pages_ = 0;  // frames in the WAL after the last commit (writer)
};

}  // namespace syncline::server
