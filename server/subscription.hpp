// Layer: server. Authorisation of what a stream may see: one connection's subscription (the
// collections it asked for, its ?where=) resolved against its caller's read rules, and the
// decision for each committed row. Knows nothing of bytes, sessions or sockets; depends only on
// the config's rules, the caller's claims and the store's LogRow. Beast-free.
//
// Invariant: a row is shown only when the caller's rule AND the subscription's where match the
// row's visibility fields (the document as the change left it, or as it was when an event was
// published); the rows' `visibility` and `prior` fields themselves never leave the server.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "auth.hpp"
#include "config.hpp"
#include "store.hpp"

namespace syncline::server {

// What one row means to one reader: not for it, show it, or (an update that moved the document
// out of the reader's scope) tell it to drop its copy.
enum class Visibility { Hidden, Show, Leave };

// What one connection subscribed to, resolved against its caller's rules.
class Subscription {
 public:
  // collections empty = every collection the caller may read.
  Subscription(const Config& config, Claims claims, std::vector<std::string> collections, Filter where);
  bool can_see(const LogRow& row) const { return visibility(row) == Visibility::Show; }
  Visibility visibility(const LogRow& row) const;
  // Effective access (rule AND where) to one collection.
  const Access& access(const std::string& collection) const;
  bool subscribed(const std::string& collection) const;
  const Claims& claims() const { return claims_; }

 private:
  const Config& config_;
  Claims claims_;
  std::set<std::string> collections_;
  bool all_ = false;
  Filter where_;
  // Rules resolve per collection once; a copy of the Subscription (catch-up reads on a reader
  // thread take one) carries its own cache, so no cache is shared across threads.
  mutable std::map<std::string, Access> cache_;
};

}  // namespace syncline::server
