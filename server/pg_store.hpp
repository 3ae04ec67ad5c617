// Layer: server. The Store on PostgreSQL (libpq): several syncline-server nodes on one database.
// Beast-free. One PgStore is one connection used by one thread, as with SqliteStore: a writer
// (open, used only by the Writer thread) and readers (open_reader, one per reader thread).
//
// Several nodes: nothing about the log is cached across groups. begin_group() opens a
// transaction and locks the head row (meta 'head_seq' FOR UPDATE), reading the head another
// node may have moved; commit_group() writes the new head and commits. So at most one group
// holds seqs at a time across all nodes, commit order equals seq order, and a reader never sees
// seq N+1 committed before seq N. Unique keys are also a primary key of the database, client rows
// are read under a row lock, pruning is done by one node at a time (an advisory lock), and a
// prune by another node is learnt from meta.pruned_through whenever the head is read and after
// every log read.
//
// Durability: synchronous_commit=on, set by the connection itself: a group whose responses were
// sent is in the WAL on disk. A lost connection makes transaction_lost() true; the next
// begin_group() reconnects.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store.hpp"

struct pg_conn;
struct pg_result;

namespace syncline::server {

class PgStore final : public Store {
 public:
  // `url`: a libpq connection URI (postgresql://user@host:port/db). Creates the schema (under
  // an advisory lock, so nodes starting together do not race) and the scope indexes.
  static Result<std::unique_ptr<PgStore>> open(const std::string& url, StoreOptions options, const Config& config);
  // A read-only connection (default_transaction_read_only; no schema).
  static Result<std::unique_ptr<PgStore>> open_reader(const std::string& url, StoreOptions options,
                                                     const Config& config);
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // The head as of this node's last begin_group/commit (other nodes may be ahead).
  std::int64_t head_seq() const override { return head_; }
  std::int64_t pruned_through() const override { return floor_->load(); }
  std::optional<Error> begin_group() override;
  std::optional<Error> commit_group() override;
  // Log pruning (retention); PostgreSQL checkpoints by itself.
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
  bool shared() const override { return true; }
  Result<std::int64_t> committed_head() override;
  // LISTEN syncline_log on this connection (again after a reconnect), then waits for a NOTIFY.
  bool wait_for_log(int timeout_ms) override;
  void checkpoint() override {}

  // A statement parameter: text, or SQL NULL.
  using Param = std::optional<std::string>;
  struct ResultDeleter {
    void operator()(pg_result* r) const;
  };
  using ResultPtr = std::unique_ptr<pg_result, ResultDeleter>;

 private:
  PgStore(std::string url, bool reader, StoreOptions options, const Config& config);
  // The last step of open(): the head and the prune floor read from meta.
  static Result<std::unique_ptr<PgStore>> finish_open(std::unique_ptr<PgStore> s);
  // (Re)connects and sets the session up; forgets the prepared statements of an old connection.
  std::optional<Error> connect();
  // Readers reconnect lazily when their connection broke; the writer does it in begin_group.
  std::optional<Error> ensure_connected();
  bool connected() const;
  // True outside any transaction (nothing would be lost with the connection).
  bool between_transactions() const;
  // After a failed statement: reconnects when the connection is dead and the statement ran
  // between transactions (the caller then runs it again). False otherwise.
  bool reconnected(bool was_between);
  // Runs `sql` (prepared once per connection) with text parameters. Null on failure, with
  // *err set.
  ResultPtr run(const std::string& sql, const std::vector<Param>& params, std::string* err);
  // A statement without parameters or results (BEGIN, SAVEPOINT, ...): simple protocol.
  bool exec(const char* sql, std::string* err = nullptr);
  // One statement of a pipeline: parameterised ones are prepared once per connection; ones
  // without parameters (BEGIN, SAVEPOINT, COMMIT) are sent as they are.
  struct Statement {
    std::string sql;
    std::vector<Param> params = {};
  };
  // Runs the statements in order in one round trip (libpq pipeline mode). Every result, or
  // nullopt with *err naming the first that failed (the server skipped the ones after it).
  std::optional<std::vector<ResultPtr>> pipeline(const std::vector<Statement>& statements, std::string* err);
  // The name of `sql` prepared on this connection (preparing it the first time). Null on failure.
  const std::string* prepared(const std::string& sql, int n_params, std::string* err);
  // Raises meta.pruned_through into the floor (another node may have pruned).
  void learn_pruned_through(std::int64_t v);
  class Transaction;  // the WriteTransaction the write rules run in (pg_store.cpp)
  // One write request in its own savepoint, undone alone when it fails: `apply` runs the rules
  // in a Transaction, `head_after` reads the group's new head from its result.
  template <typename R, typename Apply, typename Head>
  Result<R> request(const std::string* client, const std::vector<std::pair<std::string, std::string>>& keys,
                    Apply apply, Head head_after);
  void maybe_prune();

  std::string url_;
  bool reader_;
  pg_conn* conn_ = nullptr;
  StoreOptions options_;
  const Config& config_;
  std::map<std::string, std::string> prepared_;  // sql -> statement name, on this connection
  WriteRules rules_;
  std::int64_t head_ = 0;        // as read at begin_group, or committed by this node
  std::int64_t group_head_ = 0;  // inside an open group: head including its requests so far
  bool in_group_ = false;
  bool listening_ = false;  // LISTEN issued on the current connection
  bool reconnecting_ = false;
  std::int64_t pruned_through_ = 0;  // as read from meta, or committed by this node (writer)
  // Shared by every PgStore of this process on the same URL (the writer and its readers), so a
  // floor learnt by a reader's log read is seen by pruned_through() on the writer's store.
  std::shared_ptr<std::atomic<std::int64_t>> floor_;
};

}  // namespace syncline::server
