// Layer: server. The registry of open stream sessions and the fan-out of committed rows to them.
// Depends on the session (stream_session.hpp) and nothing above it; Beast-free.
//
// A row is serialised once (make_outgoing, by the caller) and the same bytes go to every
// session; each session decides for itself whether its reader may see the row. The registry
// holds sessions weakly: a session's lifetime belongs to its transport, and a session tells the
// registry when it ends (StreamSession::on_end), so a closed stream stops counting against
// limits.max_connections and limits.max_streams_per_user at once.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include "stream_session.hpp"

namespace syncline::server {

class Hub {
 public:
  // Registers a session; it leaves the registry when it closes or is destroyed. The Hub must
  // outlive every session added to it.
  void add(const std::shared_ptr<StreamSession>& s);
  void broadcast(const OutgoingPtr& out);
  void shutdown_all(const std::string& reason);
  std::size_t size() const { return sessions_.size(); }
  // Open streams of one token subject (limits.max_streams_per_user).
  std::size_t streams_of(const std::string& sub) const;

 private:
  void remove(StreamSession* s);

  std::unordered_map<StreamSession*, std::weak_ptr<StreamSession>> sessions_;
  std::unordered_map<std::string, std::size_t> per_subject_;
};

}  // namespace syncline::server
