// Layer: server. The Store on SQLite: one node, one file. Beast-free. One SqliteStore is one
// SQLite connection used by one thread: the server opens a writer (open, used only by the Writer
// thread) and readers (open_reader, one per reader thread). WAL lets readers run while the
// writer commits.
//
// Durability: WAL journal with synchronous=FULL, so a batch whose response was sent survives
// kill -9 and power loss. Writes are grouped: begin_group() opens one IMMEDIATE transaction
// (SQLite's single writer lock: seqs are assigned in commit order), each request runs inside its
// own savepoint in it, and commit_group() makes them all durable with one fsync.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace syncline::server {

class SqliteStore final : public Store {
 public:
  // `path` may be "sqlite:PATH" or a plain path; parent directories are created. Takes the
  // database's advisory lock and creates the schema: the one writer connection.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, StoreOptions options, const Config& config);
  // A query-only connection to a database already opened by open() (no lock, no schema).
  static Result<std::unique_ptr<SqliteStore>> open_reader(const std::string& path, StoreOptions options,
                                                         const Config& config);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  std::int64_t head_seq() const override { return head_; }
  std::int64_t pruned_through() const override { return prune_floor_.load(); }
  std::optional<Error> begin_group() override;
  std::optional<Error> commit_group() override;
  // Log pruning (retention) and WAL checkpoints (SQLite's automatic checkpoint, which runs
  // inside COMMIT and would add its fsyncs to that group's latency, is disabled).
  void maintenance(bool idle) override;
  void rollback_group() override;
  bool transaction_lost() const override;
  Result<BatchResult> apply_batch(const std::string& client, const std::string& subject,
                                  const std::vector<Mutation>& mutations, const WriteCheck& check,
                                  const ReadCheck& readable = nullptr) override;
  Result<LogRow> publish(const PublishRequest& req, const PublishCheck& check) override;
  Result<std::vector<LogRow>> read_log(std::int64_t after, std::int64_t upto, std::size_t limit,
                                       std::size_t max_bytes = 0, bool* reached_upto = nullptr) override;
  std::optional<Document> get_document(const std::string& collection, const std::string& id) override;
  Result<SnapshotPage> snapshot(const std::vector<std::string>& collections,
                                const std::optional<std::pair<std::string, std::string>>& after,
                                std::size_t limit, const std::function<bool(const Document&)>& visible,
                                const std::map<std::string, ScopeKey>& keys = {},
                                std::atomic<std::int64_t>* rows_read = nullptr, std::size_t max_bytes = 0) override;
  std::int64_t document_count() override;
  Result<std::int64_t> committed_head() override;
  // WAL checkpoint (TRUNCATE); called on shutdown.
  void checkpoint() override;

 private:
  explicit SqliteStore(sqlite3* db, StoreOptions options, const Config& config);
  static Result<sqlite3*> open_db(const std::string& path);
  bool exec(const char* sql, std::string* err = nullptr);
  sqlite3_stmt* prepare(const char* sql);  // cached
  // Savepoint helpers for one request of the group.
  bool savepoint(std::string* err);
  void release();
  void rollback_savepoint();
  class Transaction;  // the WriteTransaction the write rules run in (sqlite_store.cpp)
  void maybe_prune();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

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
