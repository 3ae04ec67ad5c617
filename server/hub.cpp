// Layer: server. The registry of stream sessions and fan-out (see hub.hpp).
#include "hub.hpp"

#include <vector>

namespace syncline::server {

void Hub::add(const std::shared_ptr<StreamSession>& s) {
  if (!sessions_.emplace(s.get(), s).second) return;
  per_subject_[s->subscription().claims().sub]++;
  s->on_end([this](StreamSession* ended) { remove(ended); });
}

// Called (through on_end) by the session itself, still alive, when it ends.
void Hub::remove(StreamSession* s) {
  if (sessions_.erase(s) == 0) return;
  auto it = per_subject_.find(s->subscription().claims().sub);
  if (it != per_subject_.end() && --it->second == 0) per_subject_.erase(it);
}

std::size_t Hub::streams_of(const std::string& sub) const {
  auto it = per_subject_.find(sub);
  return it == per_subject_.end() ? 0 : it->second;
}

// Sessions are collected first and delivered to after: a delivery can close a session (a slow
// consumer), which removes it from the map being walked.
void Hub::broadcast(const OutgoingPtr& out) {
  std::vector<std::shared_ptr<StreamSession>> targets;
  targets.reserve(sessions_.size());
  for (auto& [p, w] : sessions_) {
    if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->deliver_live(out);
}

void Hub::shutdown_all(const std::string& reason) {
  std::vector<std::shared_ptr<StreamSession>> targets;
  for (auto& [p, w] : sessions_) {
    if (auto s = w.lock()) targets.push_back(std::move(s));
  }
  for (auto& s : targets) s->shutdown(reason);
}

}  // namespace syncline::server
