#include "core/store.hpp"

#include <algorithm>

namespace syncline {

bool Store::apply(ChangeMsg change, std::optional<Json>* replaced) {
  auto& coll = collections_[change.collection];
  auto it = coll.find(change.id);
  const std::int64_t version = change.version > 0 ? change.version : change.seq;
  if (it != coll.end() && it->second.version >= version) return false;
  Document doc = change_to_document(std::move(change));
  doc.version = version;
  if (it == coll.end()) {
    std::string id = doc.id;  // change.id was moved into doc
    coll.emplace(std::move(id), std::move(doc));
  } else {
    if (replaced && !it->second.deleted) *replaced = std::move(it->second.fields);
    it->second = std::move(doc);
  }
  return true;
}

void Store::put(Document doc) {
  auto& coll = collections_[doc.collection];
  std::string id = doc.id;
  // Images and snapshots arrive in id order: appending at the end then costs no search.
  if (coll.empty() || coll.rbegin()->first < id) {
    coll.emplace_hint(coll.end(), std::move(id), std::move(doc));
    return;
  }
  coll.insert_or_assign(std::move(id), std::move(doc));
}

bool Store::erase(const DocKey& key) {
  auto c = collections_.find(key.collection);
  if (c == collections_.end()) return false;
  return c->second.erase(key.id) > 0;
}

const Document* Store::find(const std::string& collection, const std::string& id) const {
  auto c = collections_.find(collection);
  if (c == collections_.end()) return nullptr;
  auto d = c->second.find(id);
  return d == c->second.end() ? nullptr : &d->second;
}

void Store::for_each_live(const std::string& collection,
                          const std::function<void(const Document&)>& fn) const {
  auto c = collections_.find(collection);
  if (c == collections_.end()) return;
  for (const auto& [id, doc] : c->second) {
    if (!doc.deleted) fn(doc);
  }
}

void Store::for_each(const std::function<void(const Document&)>& fn) const {
  std::vector<std::string> names = collections();
  for (const auto& name : names) {
    for (const auto& [id, doc] : collections_.at(name)) fn(doc);
  }
}

std::vector<std::string> Store::collections() const {
  std::vector<std::string> names;
  names.reserve(collections_.size());
  for (const auto& [name, docs] : collections_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::size_t Store::live_count(const std::string& collection) const {
  auto c = collections_.find(collection);
  if (c == collections_.end()) return 0;
  return static_cast<std::size_t>(std::count_if(c->second.begin(), c->second.end(),
                                                [](const auto& kv) { return !kv.second.deleted; }));
}

std::size_t Store::size() const {
  std::size_t n = 0;
  for (const auto& [name, docs] : collections_) n += docs.size();
  return n;
}

std::size_t Store::compact_tombstones(std::int64_t up_to) {
  std::size_t removed = 0;
  for (auto& [name, docs] : collections_) {
    for (auto it = docs.begin(); it != docs.end();) {
      if (it->second.deleted && it->second.version <= up_to) {
        it = docs.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
  }
  return removed;
}

}  // namespace syncline
