// Layer: server. The shared catch-up memory budget (see catchup_budget.hpp).
#include "catchup_budget.hpp"

#include <algorithm>

namespace syncline::server {

std::size_t CatchupBudget::chunk_bytes() const {
  constexpr std::size_t kMax = 1u << 20;
  constexpr std::size_t kMin = 64u << 10;
  return std::max(kMin, std::min({kMax, per_user_ / 4, total_ / 8}));
}

bool CatchupBudget::try_take(const std::string& user, std::size_t n) {
  std::size_t& mine = by_user_[user];
  if (used_ + n > total_ || mine + n > per_user_) {
    if (mine == 0) by_user_.erase(user);
    return false;
  }
  used_ += n;
  mine += n;
  return true;
}

void CatchupBudget::force_take(const std::string& user, std::size_t n) {
  if (n == 0) return;
  used_ += n;
  by_user_[user] += n;
}

void CatchupBudget::give_back(const std::string& user, std::size_t n, bool wake) {
  if (n) {
    used_ -= std::min(n, used_);
    auto it = by_user_.find(user);
    if (it != by_user_.end()) {
      it->second -= std::min(n, it->second);
      if (it->second == 0) by_user_.erase(it);
    }
  }
  if (!wake || waking_ || waiters_.empty() || used_ + chunk_bytes() > total_) return;
  // Everyone waiting tries again, oldest first; whoever still finds no room lines up again.
  waking_ = true;
  std::deque<std::function<void()>> line;
  line.swap(waiters_);
  for (auto& resume : line) resume();
  waking_ = false;
}

void CatchupBudget::wait(std::function<void()> resume) { waiters_.push_back(std::move(resume)); }

}  // namespace syncline::server
