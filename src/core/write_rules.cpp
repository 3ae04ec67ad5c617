#include "core/write_rules.hpp"

#include <algorithm>

namespace syncline {
namespace {

std::string constraint_name(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ",";
    s += n;
  }
  return s;
}

}  // namespace

ServerMessage message_of(const LogRow& row) {
  if (row.is_event) {
    EventMsg e;
    e.seq = row.seq;
    e.name = row.name;
    e.collection = row.collection;
    e.id = row.id;
    e.data = row.data;
    return e;
  }
  ChangeMsg c;
  c.seq = row.seq;
  c.collection = row.collection;
  c.id = row.id;
  c.op = row.op;
  c.version = row.version;
  c.fields = row.op == ChangeOp::Delete ? Json::object() : row.fields;
  c.origin = row.origin;
  return c;
}

std::vector<UniqueKey> unique_keys_of(const std::vector<std::vector<std::string>>& constraints, const Json& fields) {
  std::vector<UniqueKey> out;
  if (!fields.is_object()) return out;
  for (const auto& names : constraints) {
    Json key = Json::array();
    bool complete = true;
    for (const auto& n : names) {
      auto it = fields.find(n);
      if (it == fields.end() || it->is_null()) {
        complete = false;
        break;
      }
      key.push_back(*it);
    }
    if (complete) out.push_back({constraint_name(names), key.dump()});
  }
  return out;
}

Result<std::optional<Error>> WriteRules::check_unique(WriteTransaction& txn, const std::string& collection,
                                                       const std::string& id, const Json& fields) const {
  const auto* constraints = uniques_ ? uniques_(collection) : nullptr;
  if (!constraints || constraints->empty()) return std::optional<Error>{};
  for (const auto& key : unique_keys_of(*constraints, fields)) {
    auto owner = txn.unique_owner(collection, key);
    if (!owner) return owner.error();
    if (*owner && **owner != id) {
      return std::optional<Error>{make_error(
          codes::kConstraint, "unique constraint (" + key.constraint + ") of " + collection + " violated", "fields")};
    }
  }
  return std::optional<Error>{};
}

Result<BatchResult> WriteRules::apply_batch(WriteTransaction& txn, std::int64_t& head, const std::string& client,
                                            const std::string& subject, const std::vector<Mutation>& mutations,
                                            const WriteCheck& check, const ReadCheck& readable,
                                            std::int64_t now_ms) const {
  // Client binding: first use binds the client id to the subject.
  std::int64_t last_mid = 0;
  {
    auto bound = txn.client(client);
    if (!bound) return bound.error();
    if (*bound) {
      if ((*bound)->subject != subject) return make_error(codes::kForbidden, "client id is bound to another subject", "client");
      last_mid = (*bound)->last_mid;
    } else if (auto e = txn.bind_client(client, subject, now_ms)) {
      return *e;
    }
  }

  {
    std::vector<std::pair<std::string, std::string>> keys;
    keys.reserve(mutations.size());
    for (const Mutation& m : mutations) {
      if (m.mid > last_mid) keys.emplace_back(m.collection, m.id);
    }
    if (!keys.empty()) txn.prefetch_documents(keys);
  }

  BatchResult out;
  // serverTime: one timestamp for the whole request, so a group's members agree.
  const ApplyContext ctx{now_ms};
  for (std::size_t i = 0; i < mutations.size();) {
    const Mutation& m = mutations[i];
    if (m.mid <= last_mid) {
      // Resent: answered from the recorded outcome. A group was recorded whole (all applied or
      // all rejected, in one scope), so a resent group is a duplicate in every member.
      MutationResult res;
      res.mid = m.mid;
      auto kept = txn.outcome(client, m.mid);
      if (!kept) return kept.error();
      if (*kept) {
        res.seq = (*kept)->seq;
        res.code = (*kept)->code;
        res.message = (*kept)->message;
      }
      res.status = ResultStatus::Duplicate;
      out.results.results.push_back(std::move(res));
      ++i;
      continue;
    }
    // A group (validated by the decoder: consecutive members starting at its first mid) is
    // applied in a scope of its own: the first rejected member undoes the others.
    const std::size_t n = m.group ? static_cast<std::size_t>(std::max<std::int64_t>(1, m.group_size)) : 1;
    const std::size_t end = std::min(mutations.size(), i + n);
    const bool grouped = m.group.has_value();
    const std::int64_t head_before = head;
    if (grouped) {
      if (auto e = txn.begin_scope()) return *e;
    }
    std::vector<MutationResult> results;
    std::vector<LogRow> rows;
    std::optional<std::size_t> failed;
    for (std::size_t k = i; k < end; ++k) {
      auto one = apply_one(txn, mutations[k], client, ctx, check, readable, head);
      if (!one) {
        if (grouped) txn.rollback_scope();
        head = head_before;
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
      txn.rollback_scope();
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
    // The outcomes of an applied group are recorded in its scope; a failed group's scope is
    // gone, and its outcomes go to the request's.
    const bool scope_open = grouped && !failed;
    for (const auto& res : results) {
      if (auto e = txn.record_outcome(client, res)) {
        if (scope_open) txn.rollback_scope();
        head = head_before;
        return *e;
      }
    }
    if (scope_open) {
      if (auto e = txn.release_scope()) return *e;
    }
    last_mid = mutations[end - 1].mid;
    for (auto& row : rows) out.rows.push_back(std::move(row));
    for (auto& res : results) out.results.results.push_back(std::move(res));
    i = end;
  }

  if (auto e = txn.set_last_mid(client, last_mid)) return *e;
  if (auto e = txn.keep_newest_outcomes(client, outcome_retention_)) return *e;
  out.results.seq = head;
  return out;
}

Result<WriteRules::Applied> WriteRules::apply_one(WriteTransaction& txn, const Mutation& m, const std::string& client,
                                                  const ApplyContext& ctx, const WriteCheck& check,
                                                  const ReadCheck& readable, std::int64_t& head) const {
  Applied out;
  MutationResult& res = out.result;
  res.mid = m.mid;
  auto current = txn.document(m.collection, m.id);
  if (!current) return current.error();
  const Document* live = (*current && !(*current)->deleted) ? &**current : nullptr;
  std::optional<Error> rejection;
  std::optional<Json> after;
  // The write rule's "before" half runs first, so a caller learns nothing (not even a
  // conflict with a version) about a document it may not write. Tombstones count as absent
  // for the same reason: their version is not the caller's business.
  if (check) rejection = check(m, live, nullptr);
  if (!rejection) {
    auto outcome = apply_mutation(live, m, ctx);
    if (!outcome) {
      rejection = outcome.error();
    } else {
      after = outcome->fields;
      if (check) rejection = check(m, live, after ? &*after : nullptr);
      if (!rejection && after) {
        auto unique = check_unique(txn, m.collection, m.id, *after);
        if (!unique) return unique.error();
        rejection = *unique;
      }
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
  const std::int64_t seq = head + 1;
  const ChangeOp op = m.op == MutationOp::Delete ? ChangeOp::Delete
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

  Document doc;
  doc.collection = m.collection;
  doc.id = m.id;
  doc.version = seq;
  doc.fields = row.fields;
  doc.deleted = !after;
  if (auto e = txn.put_document(doc)) return *e;
  const auto* constraints = uniques_ ? uniques_(m.collection) : nullptr;
  if (constraints && !constraints->empty()) {
    if (auto e = txn.set_unique_keys(m.collection, m.id, after ? unique_keys_of(*constraints, *after) : std::vector<UniqueKey>{})) {
      return *e;
    }
  }
  if (auto e = txn.append(row, ctx.now_ms)) return *e;
  head = seq;
  res.status = ResultStatus::Applied;
  res.seq = seq;
  out.row = std::move(row);
  return out;
}

Result<LogRow> WriteRules::publish(WriteTransaction& txn, std::int64_t& head, const PublishRequest& req,
                                   const PublishCheck& check, std::int64_t now_ms) const {
  LogRow row;
  row.is_event = true;
  row.name = req.name;
  row.collection = req.collection;
  row.id = req.id;
  row.data = req.data.is_null() ? Json::object() : req.data;
  std::optional<Document> doc;
  if (!req.collection.empty() && !req.id.empty()) {
    auto found = txn.document(req.collection, req.id);
    if (!found) return found.error();
    doc = std::move(*found);
    if (doc && doc->deleted) doc.reset();
    if (doc) row.visibility = doc->fields;
  }
  // Checked here, in the transaction that assigns the seq, so the document the caller was
  // allowed to publish about is the one subscribers' visibility is decided on.
  if (check) {
    if (auto e = check(doc)) return *e;
  }
  row.seq = head + 1;
  if (auto e = txn.append(row, now_ms)) return *e;
  head = row.seq;
  return row;
}

}  // namespace syncline
