// Layer: server. See log_tailer.hpp.
#include "log_tailer.hpp"

#include <algorithm>
#include <chrono>

#include "log.hpp"

namespace syncline::server {
namespace {

constexpr std::size_t kRowsPerRead = 1000;
constexpr std::size_t kBytesPerRead = 4 * 1024 * 1024;
constexpr int kMaxInFlight = 4;
// A lost NOTIFY (the listening connection broke and came back) costs at most this much delay.
constexpr int kWaitMs = 1000;
constexpr int kRetryMs = 200;

}  // namespace

LogTailer::LogTailer(std::unique_ptr<Store> store, Head head, Post post, Rows on_rows)
    : store_(std::move(store)), head_(std::move(head)), post_(std::move(post)), on_rows_(std::move(on_rows)) {}

LogTailer::~LogTailer() { stop(); }

void LogTailer::start() {
  thread_ = std::thread([this] { run(); });
}

void LogTailer::stop() {
  stopping_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogTailer::run() {
  std::int64_t after = head_();
  bool reported = false;
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return in_flight_ < kMaxInFlight || stopping_; });
    }
    if (stopping_) break;
    // Rows this node's writer has already broadcast need no second read.
    after = std::max(after, head_());
    bool reached = false;
    auto rows = store_->read_log(after, INT64_MAX, kRowsPerRead, kBytesPerRead, &reached);
    reachable_ = static_cast<bool>(rows);
    if (!rows) {
      ++failures_;
      if (!reported) log_warn("log tailer: cannot read the log", {{"error", rows.error().message}});
      reported = true;
      store_->wait_for_log(kRetryMs);
      continue;
    }
    if (reported) log_info("log tailer: reading the log again", {{"after", after}});
    reported = false;
    if (rows->empty()) {
      store_->wait_for_log(kWaitMs);
      continue;
    }
    after = rows->back().seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++in_flight_;
    }
    post_([this, rows = std::make_shared<std::vector<LogRow>>(std::move(*rows))]() mutable {
      on_rows_(std::move(*rows));
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
      cv_.notify_all();
    });
  }
}

}  // namespace syncline::server
