// An in-memory WriteTransaction for the core's tests: the write rules (core/write_rules.hpp)
// run on it exactly as on the server's SQLite and PostgreSQL stores. Scopes keep an undo
// journal, so rolling a group back costs what the group wrote.
#pragma once
#include <functional>
#include <map>
#include <tuple>
#include <vector>

#include "core/write_rules.hpp"

namespace syncline::testing {

class MemoryWriteStore final : public WriteTransaction {
 public:
  Result<std::optional<ClientBinding>> client(const std::string& id) override {
    auto it = clients_.find(id);
    if (it == clients_.end()) return std::optional<ClientBinding>{};
    return std::optional<ClientBinding>{it->second};
  }
  std::optional<Error> bind_client(const std::string& id, const std::string& subject, std::int64_t) override {
    set(clients_, id, ClientBinding{subject, 0});
    return std::nullopt;
  }
  std::optional<Error> set_last_mid(const std::string& id, std::int64_t mid) override {
    ClientBinding b = clients_.at(id);
    b.last_mid = mid;
    set(clients_, id, b);
    return std::nullopt;
  }
  Result<std::optional<MutationResult>> outcome(const std::string& id, std::int64_t mid) override {
    auto it = outcomes_.find({id, mid});
    if (it == outcomes_.end()) return std::optional<MutationResult>{};
    return std::optional<MutationResult>{it->second};
  }
  std::optional<Error> record_outcome(const std::string& id, const MutationResult& r) override {
    MutationResult kept = r;
    kept.current.reset();  // not kept for duplicates
    set(outcomes_, {id, r.mid}, kept);
    return std::nullopt;
  }
  std::optional<Error> keep_newest_outcomes(const std::string& id, std::int64_t keep) override {
    std::vector<std::int64_t> mids;
    for (auto it = outcomes_.lower_bound({id, 0}); it != outcomes_.end() && it->first.first == id; ++it) mids.push_back(it->first.second);
    const auto n = static_cast<std::int64_t>(mids.size());
    for (std::int64_t i = 0; i + keep < n; ++i) erase(outcomes_, {id, mids[static_cast<std::size_t>(i)]});
    return std::nullopt;
  }
  Result<std::optional<Document>> document(const std::string& collection, const std::string& id) override {
    auto it = docs_.find({collection, id});
    if (it == docs_.end()) return std::optional<Document>{};
    return std::optional<Document>{it->second};
  }
  std::optional<Error> put_document(const Document& doc) override {
    set(docs_, doc.key(), doc);
    return std::nullopt;
  }
  Result<std::optional<std::string>> unique_owner(const std::string& collection, const UniqueKey& key) override {
    auto it = unique_.find({collection, key.constraint, key.key});
    if (it == unique_.end()) return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }
  std::optional<Error> set_unique_keys(const std::string& collection, const std::string& id,
                                       const std::vector<UniqueKey>& keys) override {
    std::vector<std::tuple<std::string, std::string, std::string>> old;
    for (const auto& [k, owner] : unique_) {
      if (std::get<0>(k) == collection && owner == id) old.push_back(k);
    }
    for (const auto& k : old) erase(unique_, k);
    for (const auto& k : keys) set(unique_, {collection, k.constraint, k.key}, id);
    return std::nullopt;
  }
  std::optional<Error> append(const LogRow& row, std::int64_t) override {
    log_.push_back(row);
    journal([this] { log_.pop_back(); });
    return std::nullopt;
  }
  std::optional<Error> begin_scope() override {
    scopes_.emplace_back();
    return std::nullopt;
  }
  std::optional<Error> release_scope() override {
    auto undo = std::move(scopes_.back());
    scopes_.pop_back();
    if (!scopes_.empty()) {
      for (auto& u : undo) scopes_.back().push_back(std::move(u));
    }
    return std::nullopt;
  }
  void rollback_scope() override {
    auto undo = std::move(scopes_.back());
    scopes_.pop_back();
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
  }

  const std::vector<LogRow>& log() const { return log_; }
  const std::map<DocKey, Document>& documents() const { return docs_; }

 private:
  void journal(std::function<void()> undo) {
    if (!scopes_.empty()) scopes_.back().push_back(std::move(undo));
  }
  template <class Map>
  void set(Map& m, const typename Map::key_type& k, const typename Map::mapped_type& v) {
    auto it = m.find(k);
    if (it == m.end()) {
      journal([&m, k] { m.erase(k); });
    } else {
      journal([&m, k, old = it->second] { m[k] = old; });
    }
    m[k] = v;
  }
  template <class Map>
  void erase(Map& m, const typename Map::key_type& k) {
    auto it = m.find(k);
    if (it == m.end()) return;
    journal([&m, k, old = it->second] { m[k] = old; });
    m.erase(it);
  }

  std::map<std::string, ClientBinding> clients_;
  std::map<std::pair<std::string, std::int64_t>, MutationResult> outcomes_;
  std::map<DocKey, Document> docs_;
  std::map<std::tuple<std::string, std::string, std::string>, std::string> unique_;
  std::vector<LogRow> log_;
  std::vector<std::vector<std::function<void()>>> scopes_;
};

}  // namespace syncline::testing
