// Layer: server. Read-rule scoping of a stream (see subscription.hpp).
#include "subscription.hpp"

namespace syncline::server {

Subscription::Subscription(const Config& config, Claims claims, std::vector<std::string> collections, Filter where)
    : config_(config), claims_(std::move(claims)), where_(std::move(where)) {
  all_ = collections.empty();
  collections_.insert(collections.begin(), collections.end());
}

bool Subscription::subscribed(const std::string& collection) const {
  return all_ || collections_.count(collection) > 0;
}

const Access& Subscription::access(const std::string& collection) const {
  auto it = cache_.find(collection);
  if (it != cache_.end()) return it->second;
  Access a = config_.read_access(collection, claims_);
  if (a.kind != Access::Kind::None && !where_.empty()) {
    if (a.kind == Access::Kind::All) {
      a.kind = Access::Kind::Where;
      a.filter = where_;
    } else {
      a.filter = a.filter.and_also(where_);
    }
  }
  return cache_.emplace(collection, std::move(a)).first->second;
}

Visibility Subscription::visibility(const LogRow& row) const {
  if (row.is_event && row.collection.empty()) {  // dataset-wide event
    return config_.events.may_read(claims_.role) ? Visibility::Show : Visibility::Hidden;
  }
  if (!subscribed(row.collection)) return Visibility::Hidden;
  const Access& a = access(row.collection);
  if (a.kind == Access::Kind::None) return Visibility::Hidden;
  if (a.kind == Access::Kind::All) return Visibility::Show;
  if (row.visibility.is_null()) return Visibility::Hidden;  // event about no (visible) document
  if (a.filter.matches(row.id, row.visibility)) return Visibility::Show;
  // An update that moved the document out of this reader's scope: it must drop its copy.
  if (!row.is_event && row.op == ChangeOp::Update && !row.prior.is_null() && a.filter.matches(row.id, row.prior)) {
    return Visibility::Leave;
  }
  return Visibility::Hidden;
}

}  // namespace syncline::server
