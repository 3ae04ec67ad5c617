// Layer: src/core (pure C++20). See foreign_pending.hpp.
#include "core/foreign_pending.hpp"

namespace syncline {

void ForeignPending::insert(const std::string& client, ClientSet& set, Mutation m, std::set<DocKey>& touched) {
  // A mid names one mutation; a resent one replaces the old entry, whatever document that was on.
  if (auto old = set.by_mid.find(m.mid); old != set.by_mid.end()) erase(client, set, old, touched);
  DocKey key = m.key();
  const std::int64_t mid = m.mid;
  set.by_mid.insert_or_assign(mid, std::move(m));
  per_key_[key].insert({client, mid});
  touched.insert(std::move(key));
}

void ForeignPending::erase(const std::string& client, ClientSet& set,
                           std::map<std::int64_t, Mutation>::iterator it, std::set<DocKey>& touched) {
  DocKey key = it->second.key();
  auto pk = per_key_.find(key);
  if (pk != per_key_.end()) {
    pk->second.erase({client, it->first});
    if (pk->second.empty()) per_key_.erase(pk);
  }
  set.by_mid.erase(it);
  touched.insert(std::move(key));
}

std::set<DocKey> ForeignPending::replace(const std::string& client, std::vector<Mutation> mutations,
                                         std::int64_t now_ms) {
  std::set<DocKey> touched;
  auto c = clients_.find(client);
  if (c != clients_.end()) {
    while (!c->second.by_mid.empty()) erase(client, c->second, c->second.by_mid.begin(), touched);
  }
  if (mutations.empty()) {
    if (c != clients_.end()) clients_.erase(c);
    return touched;
  }
  ClientSet& set = clients_[client];
  set.refreshed_ms = now_ms;
  for (auto& m : mutations) insert(client, set, std::move(m), touched);
  return touched;
}

std::set<DocKey> ForeignPending::add(const std::string& client, std::vector<Mutation> mutations, std::int64_t now_ms) {
  std::set<DocKey> touched;
  if (mutations.empty()) return touched;
  ClientSet& set = clients_[client];
  set.refreshed_ms = now_ms;
  for (auto& m : mutations) insert(client, set, std::move(m), touched);
  return touched;
}

std::set<DocKey> ForeignPending::drop(const std::string& client, const std::vector<std::int64_t>& mids) {
  std::set<DocKey> touched;
  auto c = clients_.find(client);
  if (c == clients_.end()) return touched;
  for (std::int64_t mid : mids) {
    auto it = c->second.by_mid.find(mid);
    if (it != c->second.by_mid.end()) erase(client, c->second, it, touched);
  }
  if (c->second.by_mid.empty()) clients_.erase(c);
  return touched;
}

std::set<DocKey> ForeignPending::drop_through(const std::string& client, std::int64_t mid) {
  std::set<DocKey> touched;
  auto c = clients_.find(client);
  if (c == clients_.end()) return touched;
  while (!c->second.by_mid.empty() && c->second.by_mid.begin()->first <= mid) {
    erase(client, c->second, c->second.by_mid.begin(), touched);
  }
  if (c->second.by_mid.empty()) clients_.erase(c);
  return touched;
}

std::set<DocKey> ForeignPending::expire(std::int64_t now_ms) {
  std::set<DocKey> touched;
  for (auto c = clients_.begin(); c != clients_.end();) {
    if (now_ms - c->second.refreshed_ms < kTtlMs) {
      ++c;
      continue;
    }
    while (!c->second.by_mid.empty()) erase(c->first, c->second, c->second.by_mid.begin(), touched);
    c = clients_.erase(c);
  }
  return touched;
}

std::vector<const Mutation*> ForeignPending::for_key(const DocKey& key) const {
  std::vector<const Mutation*> out;
  auto pk = per_key_.find(key);
  if (pk == per_key_.end()) return out;
  for (const auto& [client, mid] : pk->second) {
    auto c = clients_.find(client);
    if (c == clients_.end()) continue;
    auto m = c->second.by_mid.find(mid);
    if (m != c->second.by_mid.end()) out.push_back(&m->second);
  }
  return out;
}

std::size_t ForeignPending::size() const {
  std::size_t n = 0;
  for (const auto& [client, set] : clients_) n += set.by_mid.size();
  return n;
}

}  // namespace syncline
