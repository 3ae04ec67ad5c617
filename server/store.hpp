// Layer: server. Durable state in SQLite: the change log (one seq space for changes and custom
// events), the current documents, unique-constraint keys, client bindings and mutation outcomes.
// Beast-free; single-threaded (the server calls it from its one io thread).
//
// Durability: WAL journal with synchronous=FULL, so a batch whose response was sent survives
// kill -9 and power loss. A batch is one IMMEDIATE transaction that also records each client's
// last mid and per-mutation outcomes, which is what makes resends exactly-once.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
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

struct sqlite3;
struct sqlite3_stmt;

namespace syncline::server {

inline constexpr const char* kInternal = "internal";

// One row of the log, as needed to build wire messages and to decide visibility.
struct LogRow {
  std::int64_t seq = 0;
  bool is_event = false;
  std::string collection;
  std::string id;
  // change
  ChangeOp op = ChangeOp::Insert;
  std::int64_t version = 0;
  Json fields = Json::object();  // document after the change; empty for delete
  std::optional<Origin> origin;
  // Fields that decide who may see this row: the document after the change, the document
  // before it for deletes, the document at publish time for events (null: no document).
  // Never sent to clients.
  Json visibility = nullptr;
  // Updates: the document before the change, so a reader who could see it but cannot see the
  // result is told the document left its scope. Null otherwise. Never sent.
  Json prior = nullptr;
  // event
  std::string name;
  Json data = Json::object();
};

struct StoreOptions {
  std::int64_t log_retention = 100000;  // 0 = keep everything
  std::int64_t outcome_retention = 1000;
};

// Row-level write check: given the mutation, the document before it (nullptr when absent) and
// the fields after it (nullptr for delete), return an Error (code "forbidden") to reject it.
using WriteCheck =
    std::function<std::optional<Error>(const Mutation&, const Document* before, const Json* after)>;

struct BatchResult {
  MutationResults results;
  std::vector<LogRow> rows;  // committed changes, in seq order
};

struct SnapshotPage {
  std::int64_t seq = 0;
  std::vector<Document> docs;
  std::optional<std::pair<std::string, std::string>> next;  // (collection, id) to continue after
};

class Store {
 public:
  // `path` may be "sqlite:PATH" or a plain path; parent directories are created.
  static Result<std::unique_ptr<Store>> open(const std::string& path, StoreOptions options,
                                            const Config& config);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  std::int64_t head_seq() const { return head_; }
  // Highest seq removed by retention: a cursor below it cannot be resumed.
  std::int64_t pruned_through() const { return pruned_through_; }

  // Applies a batch in one transaction. Whole-batch errors: "forbidden" (client id bound to
  // another subject), "internal". Each mutation is applied, rejected or answered duplicate.
  Result<BatchResult> apply_batch(const std::string& client, const std::string& subject,
                                  const std::vector<Mutation>& mutations, const WriteCheck& check);

  // Appends a custom event (it gets the next seq).
  Result<LogRow> publish(const PublishRequest& req);

  // Log rows with seq > after, oldest first, at most `limit`.
  Result<std::vector<LogRow>> read_log(std::int64_t after, std::size_t limit);

  std::optional<Document> get_document(const std::string& collection, const std::string& id);

  // Live documents of `collections` ordered by (collection, id), strictly after `after`,
  // keeping those `visible` accepts, at most `limit`.
  Result<SnapshotPage> snapshot(const std::vector<std::string>& collections,
                                const std::optional<std::pair<std::string, std::string>>& after,
                                std::size_t limit, const std::function<bool(const Document&)>& visible);

  std::int64_t document_count();
  // WAL checkpoint (TRUNCATE); called on shutdown.
  void checkpoint();

 private:
  explicit Store(sqlite3* db, StoreOptions options, const Config& config);
  bool exec(const char* sql, std::string* err = nullptr);
  sqlite3_stmt* prepare(const char* sql);  // cached
  void maybe_prune();
  std::optional<Error> check_unique(const std::string& collection, const std::string& id, const Json& fields);
  void write_unique(const std::string& collection, const std::string& id, const Json* fields);

  sqlite3* db_;
  int lock_fd_ = -1;  // flock on PATH.lock: one server per database
  StoreOptions options_;
  const Config& config_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  std::int64_t head_ = 0;
  std::int64_t pruned_through_ = 0;
};

}  // namespace syncline::server
