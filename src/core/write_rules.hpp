// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The server's write rules, written once above the storage: how a request's mutations become
// results and log rows. Client binding (a client id belongs to the subject that used it first),
// exactly-once by mid (a mid at or below the client's last one is answered from its recorded
// outcome as `duplicate`), row-level write checks (before the change and after it), field
// operations and conditions (apply_mutation), unique keys, atomic groups (all members or none,
// each answered with the failing member's cause and failed_mid), a writer's view of a conflicting
// document (`current`, when it may read it), and outcome retention.
//
// Storage implements WriteTransaction: the SQLite store, the PostgreSQL store, and the
// simulation test's in-memory model all run these same rules. The caller owns the transaction
// and its request-level scope; `head` is the seq of the last change the transaction has
// assigned (each applied change takes head + 1; a failed group gives its seqs back).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/document.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/mutation.hpp"
#include "core/protocol.hpp"

namespace syncline {

// One row of the change log, as needed to build wire messages and to decide visibility.
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

// Row-level write check: given the mutation, the document before it (nullptr when absent) and
// the fields after it (nullptr for delete), return an Error (code "forbidden") to reject it.
using WriteCheck =
    std::function<std::optional<Error>(const Mutation&, const Document* before, const Json* after)>;
// Whether the writer may read a document (a rejected conflict then carries it as `current`).
using ReadCheck = std::function<bool(const Mutation&, const Document&)>;
// A custom event's access check, with the document the event is about (nullopt when absent or
// deleted), run in the transaction that assigns the event's seq. An Error refuses it.
using PublishCheck = std::function<std::optional<Error>(const std::optional<Document>& doc)>;
// The unique constraints of a collection (each a list of field names), or nullptr for none.
using UniqueConstraints = std::function<const std::vector<std::vector<std::string>>*(const std::string& collection)>;

// The wire message of a log row (a change or a custom event), without what is never sent.
ServerMessage message_of(const LogRow& row);

struct BatchResult {
  MutationResults results;
  std::vector<LogRow> rows;  // committed changes, in seq order
};

struct ClientBinding {
  std::string subject;
  std::int64_t last_mid = 0;
};

// One unique key of a document: the constraint (field names joined by ",") and the key (the
// JSON array of the field values).
struct UniqueKey {
  std::string constraint;
  std::string key;
  bool operator==(const UniqueKey&) const = default;
};

// The unique keys of `fields` under `constraints`. A constraint with a missing or null field
// gives no key (like SQL, a missing value never collides).
std::vector<UniqueKey> unique_keys_of(const std::vector<std::vector<std::string>>& constraints, const Json& fields);

// What the rules need from storage, inside one open transaction. Every method either succeeds
// or returns an Error with code "internal" (the caller then abandons the request's scope).
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;
  // The client's binding, held so that no other writer changes it before this transaction
  // ends (a row lock where the storage is shared by several servers).
  virtual Result<std::optional<ClientBinding>> client(const std::string& client_id) = 0;
  virtual std::optional<Error> bind_client(const std::string& client_id, const std::string& subject,
                                           std::int64_t now_ms) = 0;
  virtual std::optional<Error> set_last_mid(const std::string& client_id, std::int64_t mid) = 0;
  // The recorded outcome of a mid (without `current`), or nullopt when no longer kept.
  virtual Result<std::optional<MutationResult>> outcome(const std::string& client_id, std::int64_t mid) = 0;
  virtual std::optional<Error> record_outcome(const std::string& client_id, const MutationResult& result) = 0;
  // Drops all but the newest `keep` outcomes of the client.
  virtual std::optional<Error> keep_newest_outcomes(const std::string& client_id, std::int64_t keep) = 0;
  // The document, tombstones included (deleted = true), or nullopt when never written.
  virtual Result<std::optional<Document>> document(const std::string& collection, const std::string& id) = 0;
  virtual std::optional<Error> put_document(const Document& doc) = 0;
  // A hint before a request's mutations run: these documents will be read. A store whose reads
  // are round trips may fetch them in one; the default ignores it.
  virtual void prefetch_documents(const std::vector<std::pair<std::string, std::string>>& keys) {}
  // The id of the document that holds a unique key, or nullopt.
  virtual Result<std::optional<std::string>> unique_owner(const std::string& collection, const UniqueKey& key) = 0;
  // Replaces the document's unique keys with `keys` (none: it holds no key any more).
  virtual std::optional<Error> set_unique_keys(const std::string& collection, const std::string& id,
                                               const std::vector<UniqueKey>& keys) = 0;
  virtual std::optional<Error> append(const LogRow& row, std::int64_t now_ms) = 0;
  // A nested scope for an atomic group: rollback_scope() undoes everything since begin_scope().
  virtual std::optional<Error> begin_scope() = 0;
  virtual std::optional<Error> release_scope() = 0;
  virtual void rollback_scope() = 0;
};

class WriteRules {
 public:
  WriteRules(UniqueConstraints uniques, std::int64_t outcome_retention)
      : uniques_(std::move(uniques)), outcome_retention_(outcome_retention) {}

  // Applies one request's mutations. A whole-request refusal (the client id is bound to another
  // subject: "forbidden") or a storage failure ("internal") is returned as an Error: the caller
  // rolls the request's scope back. results.seq is `head` after the request.
  Result<BatchResult> apply_batch(WriteTransaction& txn, std::int64_t& head, const std::string& client,
                                  const std::string& subject, const std::vector<Mutation>& mutations,
                                  const WriteCheck& check, const ReadCheck& readable, std::int64_t now_ms) const;

  // A custom event: checked against the document it is about, then appended with the next seq.
  Result<LogRow> publish(WriteTransaction& txn, std::int64_t& head, const PublishRequest& req,
                         const PublishCheck& check, std::int64_t now_ms) const;

 private:
  struct Applied {
    MutationResult result;
    std::optional<LogRow> row;  // when applied
  };
  Result<Applied> apply_one(WriteTransaction& txn, const Mutation& m, const std::string& client,
                            const ApplyContext& ctx, const WriteCheck& check, const ReadCheck& readable,
                            std::int64_t& head) const;
  Result<std::optional<Error>> check_unique(WriteTransaction& txn, const std::string& collection,
                                            const std::string& id, const Json& fields) const;

  UniqueConstraints uniques_;
  std::int64_t outcome_retention_;
};

}  // namespace syncline
