// Layer: server. Process-wide counters rendered in the Prometheus text format (GET /metrics).
// Only the io thread touches it (the writer thread reports group stats through a posted
// completion), so plain integers suffice. Beast-free.
#pragma once
#include <cstdint>
#include <array>
#include <atomic>
#include <deque>
#include <string>

namespace syncline::server {

struct Metrics {
  std::int64_t http_requests = 0;
  std::int64_t http_errors_4xx = 0;
  std::int64_t http_errors_5xx = 0;
  std::int64_t sse_connections = 0;  // gauges
  std::int64_t ws_connections = 0;
  std::int64_t stream_connections_total = 0;
  std::int64_t changes_total = 0;
  std::int64_t events_total = 0;
  std::int64_t mutations_applied = 0;
  std::int64_t mutations_rejected = 0;
  std::int64_t mutations_duplicate = 0;
  std::int64_t batches_refused = 0;  // whole batch refused (4xx)
  std::int64_t queue_drops = 0;      // slow consumers cut off
  std::int64_t messages_sent = 0;
  std::int64_t rate_limited = 0;
  std::int64_t resets_sent = 0;
  std::int64_t ws_invalid_frames = 0;
  std::int64_t connections_refused = 0;  // over limits.max_http_connections
  std::int64_t open_connections = 0;     // gauges, refreshed on render
  std::int64_t catchup_bytes = 0;
  std::int64_t catchup_waiting = 0;
  // Rows snapshots read from the documents table (raised on reader threads).
  std::atomic<std::int64_t> snapshot_rows_read{0};

  std::int64_t write_queue = 0;  // gauge, refreshed on render: requests waiting for the writer
  std::int64_t writes_refused = 0;  // 503: writer queue full, or shutting down

  // Group commit: requests per committed group (histogram) and time spent committing.
  static constexpr std::array<int, 9> kGroupBuckets{1, 2, 4, 8, 16, 32, 64, 128, 256};
  void note_group(std::size_t requests, long long commit_us, bool committed);

  // changes/s over the last 10 s window.
  void note_changes(std::int64_t n, long long now_ms);
  double changes_per_second(long long now_ms);

  std::string render(std::int64_t head_seq, std::int64_t pruned_through, std::int64_t documents,
                     long long now_ms);

 private:
  std::array<std::int64_t, kGroupBuckets.size()> group_buckets_{};  // cumulative (le)
  std::int64_t groups_ = 0;
  std::int64_t group_requests_ = 0;
  std::int64_t groups_failed_ = 0;
  double commit_seconds_ = 0;
  std::deque<std::pair<long long, std::int64_t>> recent_;  // (second, count)
};

}  // namespace syncline::server
