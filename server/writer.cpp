#include "writer.hpp"

#include <chrono>
#include <exception>

#include "log.hpp"

namespace syncline::server {
namespace {

// Bounds on one group, so a burst does not build one huge transaction whose commit delays every
// request in it; the next group starts as soon as this one committed.
constexpr std::size_t kMaxGroupRequests = 256;
constexpr std::size_t kMaxGroupMutations = 4096;

long long now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Writer::Writer(std::unique_ptr<Store> store, Post post, OnGroup on_group, std::size_t max_queued)
    : store_(std::move(store)), post_(std::move(post)), on_group_(std::move(on_group)), max_queued_(max_queued) {}

Writer::~Writer() { stop(); }

void Writer::start() { thread_ = std::thread([this] { run(); }); }

bool Writer::submit(WriteRequest req, Done done) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(Job{std::move(req), std::move(done)});
    ++pending_;
  }
  cv_.notify_one();
  return true;
}

void Writer::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::vector<Writer::Job> Writer::take_group() {
  std::vector<Job> group;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
  }
  take_more(group);
  return group;  // empty only when stopping with nothing left
}

void Writer::take_more(std::vector<Job>& group) {
  std::size_t mutations = 0;
  for (const Job& j : group) mutations += std::max<std::size_t>(1, j.req.mutations.size());
  std::lock_guard<std::mutex> lk(mu_);
  while (!queue_.empty() && group.size() < kMaxGroupRequests && mutations < kMaxGroupMutations) {
    mutations += std::max<std::size_t>(1, queue_.front().req.mutations.size());
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void Writer::run() {
  for (;;) {
    std::vector<Job> group = take_group();
    if (group.empty()) return;
    auto out = std::make_shared<std::vector<WriteOutcome>>(group.size());
    GroupStats stats = commit_group(group, *out);
    auto jobs = std::make_shared<std::vector<Job>>(std::move(group));
    // Posted only now, after the commit returned: no response and no broadcast can get ahead
    // of durability. One post per group keeps the io thread's order equal to the log's.
    post_([this, jobs, out, stats] {
      if (on_group_) on_group_(stats);
      for (std::size_t i = 0; i < jobs->size(); ++i) {
        auto& done = (*jobs)[i].done;
        if (done) done(std::move((*out)[i]));
        --pending_;
      }
    });
    bool idle;
    {
      std::lock_guard<std::mutex> lk(mu_);
      idle = queue_.empty();
    }
    // After the post: pruning and checkpoints never delay the answers of the group just done.
    if (stats.committed) store_->maintenance(idle);
  }
}

WriteOutcome Writer::apply(const WriteRequest& req) {
  WriteOutcome o;
  if (req.kind == WriteRequest::Kind::Mutate) {
    auto r = store_->apply_batch(req.client, req.subject, req.mutations, req.check, req.readable);
    if (r) o.batch = std::move(*r);
    else o.error = r.error();
  } else {
    auto r = store_->publish(req.event, req.event_check);
    if (r) o.event = std::move(*r);
    else o.error = r.error();
  }
  return o;
}

GroupStats Writer::commit_group(std::vector<Job>& group, std::vector<WriteOutcome>& out) {
  GroupStats stats;
  stats.requests = group.size();
  const long long t0 = now_us();
  // Requests whose outcome is final (their error made SQLite drop the whole transaction); the
  // others are (re)applied on every attempt. Each retry removes one request, so this ends.
  std::vector<bool> settled(group.size(), false);
  auto fail_unsettled = [&](const Error& e) {
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (!settled[i]) out[i] = WriteOutcome{e, {}, std::nullopt};
    }
  };
  for (;;) {
    if (auto e = store_->begin_group()) {
      log_error("group commit: begin failed", {{"error", e->message}, {"requests", group.size()}});
      fail_unsettled(*e);
      break;
    }
    // On a shared database begin_group can wait for another node's group to commit: what
    // arrived meanwhile joins this group rather than waiting for that lock once more.
    take_more(group);
    out.resize(group.size());
    settled.resize(group.size(), false);
    stats.requests = group.size();
    bool redo = false;
    try {
      for (std::size_t i = 0; i < group.size() && !redo; ++i) {
        if (settled[i]) continue;
        out[i] = apply(group[i].req);
        if (out[i].error && out[i].error->code == codes::kInternal) {
          log_error("write request failed", {{"error", out[i].error->message}});
        }
        if (out[i].error && store_->transaction_lost()) {
          settled[i] = true;
          redo = true;
        }
      }
    } catch (const std::exception& e) {
      // Not expected (Store catches per request); never commit a group in an unknown state.
      log_error("group commit: unexpected exception", {{"error", e.what()}});
      store_->rollback_group();
      fail_unsettled(make_error(codes::kInternal, e.what()));
      break;
    }
    if (redo) {
      log_warn("group commit: transaction lost, redoing the group without the failed request",
               {{"requests", group.size()}});
      store_->rollback_group();
      continue;
    }
    if (auto e = store_->commit_group()) {
      log_error("group commit failed", {{"error", e->message}, {"requests", group.size()}});
      // Requests that had failed on their own keep their error; every other one lost its work.
      for (std::size_t i = 0; i < group.size(); ++i) {
        if (!out[i].error) out[i] = WriteOutcome{*e, {}, std::nullopt};
      }
      break;
    }
    stats.committed = true;
    break;
  }
  stats.commit_us = now_us() - t0;
  return stats;
}

}  // namespace syncline::server
