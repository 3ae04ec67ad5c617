// Layer: server. The durable state: the change log (one seq space for changes and custom
// events), the current documents, unique-constraint keys, client bindings and mutation outcomes.
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


namespace syncline::server {


struct StoreOptions {
  std::int64_t log_retention = 100000;  // 0 = keep everything
  std::int64_t outcome_retention = 1000;
  // PostgreSQL: how long a group waits for the cluster-wide writer lock, and how long a node may
  // sit idle inside its group before the database ends its session (a hung node).
  std::int64_t group_lock_timeout_ms = 10000;
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
  std::int64_t seq = 0;  // the committed head, read in the page's own transaction
  std::vector<Document> docs;
  std::optional<std::pair<std::string, std::string>> next;  // (collection, id) to continue after
};

// The server's durable state behind one interface. Two implementations: SqliteStore (one
// node, one file; the default) and, for several nodes on one database, the PostgreSQL store. The
// write rules (core/write_rules.hpp) run above it; a store supplies transactions, the log, and
// the reads.
//
// Threads: the writer's store is used by the Writer thread only, except pruned_through(), which
// any thread may read; each reader store by one reader thread.
// A change's op as both stores keep it in the log (the names of to_string(ChangeOp)).
inline ChangeOp op_from(const std::string& s) {
  if (s == "update") return ChangeOp::Update;
  if (s == "delete") return ChangeOp::Delete;
  return ChangeOp::Insert;
}

class Store {
 public:
  virtual ~Store() = default;

  // Opens the writer's store: "postgresql://..." / "postgres://..." a PostgreSQL database,
  // "sqlite:PATH" or a plain PATH a SQLite file (parent directories created, one server per file).
  static Result<std::unique_ptr<Store>> open(const std::string& url, StoreOptions options, const Config& config);
  // A read-only connection to a database the writer's store has opened (no lock, no schema).
  static Result<std::unique_ptr<Store>> open_reader(const std::string& url, StoreOptions options,
                                                   const Config& config);
  // Indexed fields for scoped reads: the fields that read rules compare with a claim
  // (`customer_id=eq.{sub}`). The writer creates an index per field at open.
  static std::vector<std::vector<std::string>> scope_paths(const Config& config);

  // Writer only: the highest committed seq (not moved by an open group).
  virtual std::int64_t head_seq() const = 0;
  // True when other processes may write this database too (PostgreSQL): this node's streams
  // then learn of their rows from a LogTailer, not from its own writer.
  virtual bool shared() const { return false; }
  // Reader stores: the head as committed now (read from the database, whoever wrote it).
  virtual Result<std::int64_t> committed_head() = 0;
  // The tailer's reader store: blocks until the log may have grown (another node's commit) or
  // `timeout_ms` passed. True when woken by a commit. A store no other process writes has no
  // such signal and just waits.
  virtual bool wait_for_log(int timeout_ms);
  // Any thread: rows with seq <= this may be gone from the log (a cursor below it cannot be
  // resumed). Raised *before* a prune deletes rows, so a reader that checks it after reading
  // the log never mistakes a pruned gap for the whole log.
  virtual std::int64_t pruned_through() const = 0;

  // --- group commit (writer only) ---
  // Opens the group's transaction; from here to commit no other writer can commit, so seqs
  // are assigned in commit order.
  virtual std::optional<Error> begin_group() = 0;
  // Commits the group (one durable flush); on failure the group is rolled back and nothing of it
  // is durable.
  virtual std::optional<Error> commit_group() = 0;
  // Work kept off the commit path (log pruning, checkpoints). `idle`: no request is waiting.
  virtual void maintenance(bool idle) = 0;
  virtual void rollback_group() = 0;
  // True when the database has rolled the group's transaction back by itself (disk full, I/O
  // error, a lost connection): the earlier requests of the group are gone with it.
  virtual bool transaction_lost() const = 0;

  // Applies one request's batch inside the open group, in a scope of its own (WriteRules): on a
  // whole-request error ("forbidden": client id bound to another subject; "internal") the scope
  // is rolled back and the rest of the group is untouched. results.seq is the group's head
  // after this request.
  virtual Result<BatchResult> apply_batch(const std::string& client, const std::string& subject,
                                          const std::vector<Mutation>& mutations, const WriteCheck& check,
                                          const ReadCheck& readable = nullptr) = 0;
  // Appends a custom event (it gets the next seq) inside the open group, in a scope of its own.
  virtual Result<LogRow> publish(const PublishRequest& req, const PublishCheck& check) = 0;

  // --- reads (reader stores; get_document also the writer's) ---
  // Log rows with after < seq <= upto, oldest first, at most `limit` rows and, past the first
  // row, at most about `max_bytes` of stored JSON (0: no byte bound). `reached_upto` is set when
  // the read stopped because no row was left up to `upto` (not because of a bound).
  virtual Result<std::vector<LogRow>> read_log(std::int64_t after, std::int64_t upto, std::size_t limit,
                                               std::size_t max_bytes = 0, bool* reached_upto = nullptr) = 0;
  virtual std::optional<Document> get_document(const std::string& collection, const std::string& id) = 0;
  // Live documents of `collections` (sorted) ordered by (collection, id), strictly after
  // `after`, keeping those `visible` accepts, at most `limit`, read in one transaction. Where
  // `keys` holds a ScopeKey for a collection, only documents with that exact string value are
  // read (through an index: see scope_paths); `visible` still decides. `rows_read` is raised by
  // the rows read from the table. page.seq is the head of the state the page was read from. `max_bytes` (0: none) ends a page early once its documents' stored
  // JSON reaches it (the page then has a `next`, possibly to an empty last page).
  virtual Result<SnapshotPage> snapshot(const std::vector<std::string>& collections,
                                        const std::optional<std::pair<std::string, std::string>>& after,
                                        std::size_t limit, const std::function<bool(const Document&)>& visible,
                                        const std::map<std::string, ScopeKey>& keys = {},
                                        std::atomic<std::int64_t>* rows_read = nullptr,
                                        std::size_t max_bytes = 0) = 0;
  virtual std::int64_t document_count() = 0;
  // Makes the database compact on shutdown (a WAL checkpoint for SQLite).
  virtual void checkpoint() = 0;
};

}  // namespace syncline::server
