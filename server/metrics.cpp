#include "metrics.hpp"

#include <cstdio>

namespace syncline::server {

void Metrics::note_changes(std::int64_t n, long long now_ms) {
  long long sec = now_ms / 1000;
  if (!recent_.empty() && recent_.back().first == sec) {
    recent_.back().second += n;
  } else {
    recent_.emplace_back(sec, n);
  }
  while (!recent_.empty() && recent_.front().first < sec - 10) recent_.pop_front();
}

void Metrics::note_group(std::size_t requests, long long commit_us, bool committed) {
  commit_seconds_ += static_cast<double>(commit_us) / 1e6;
  if (!committed) {
    groups_failed_++;
    return;
  }
  groups_++;
  group_requests_ += static_cast<std::int64_t>(requests);
  for (std::size_t i = 0; i < kGroupBuckets.size(); ++i) {
    if (requests <= static_cast<std::size_t>(kGroupBuckets[i])) group_buckets_[i]++;
  }
}

double Metrics::changes_per_second(long long now_ms) {
  long long sec = now_ms / 1000;
  std::int64_t sum = 0;
  for (auto& [s, n] : recent_) {
    if (s >= sec - 10 && s < sec) sum += n;
  }
  return static_cast<double>(sum) / 10.0;
}

std::string Metrics::render(std::int64_t head_seq, std::int64_t pruned_through, std::int64_t documents,
                            long long now_ms) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& body) {
    out += "# HELP ";
    out += name;
    out += " ";
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += " ";
    out += type;
    out += "\n";
    out += body;
  };
  auto line = [](const std::string& name, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return name + " " + buf + "\n";
  };
  metric("syncline_connections", "gauge", "Open stream connections by transport.",
         line("syncline_connections{transport=\"sse\"}", sse_connections) +
             line("syncline_connections{transport=\"websocket\"}", ws_connections));
  metric("syncline_connections_total", "counter", "Stream connections accepted.",
         line("syncline_connections_total", stream_connections_total));
  metric("syncline_http_requests_total", "counter", "HTTP requests handled.",
         line("syncline_http_requests_total", http_requests));
  metric("syncline_http_errors_total", "counter", "HTTP error responses by class.",
         line("syncline_http_errors_total{class=\"4xx\"}", http_errors_4xx) +
             line("syncline_http_errors_total{class=\"5xx\"}", http_errors_5xx));
  metric("syncline_changes_total", "counter", "Document changes committed.", line("syncline_changes_total", changes_total));
  metric("syncline_changes_per_second", "gauge", "Changes committed per second over the last 10 s.",
         line("syncline_changes_per_second", changes_per_second(now_ms)));
  metric("syncline_events_total", "counter", "Custom events published.", line("syncline_events_total", events_total));
  metric("syncline_mutations_total", "counter", "Mutation outcomes.",
         line("syncline_mutations_total{status=\"applied\"}", mutations_applied) +
             line("syncline_mutations_total{status=\"rejected\"}", mutations_rejected) +
             line("syncline_mutations_total{status=\"duplicate\"}", mutations_duplicate));
  metric("syncline_batches_refused_total", "counter", "Mutation batches refused as a whole (4xx).",
         line("syncline_batches_refused_total", batches_refused));
  metric("syncline_queue_drops_total", "counter", "Stream connections cut off as slow consumers.",
         line("syncline_queue_drops_total", queue_drops));
  metric("syncline_messages_sent_total", "counter", "Stream messages queued to connections.",
         line("syncline_messages_sent_total", messages_sent));
  metric("syncline_rate_limited_total", "counter", "Requests refused by the rate limiter.",
         line("syncline_rate_limited_total", rate_limited));
  metric("syncline_resets_total", "counter", "Reset messages sent (cursor expired).", line("syncline_resets_total", resets_sent));
  metric("syncline_ws_invalid_frames_total", "counter", "Invalid WebSocket frames received.",
         line("syncline_ws_invalid_frames_total", ws_invalid_frames));
  metric("syncline_connections_refused_total", "counter", "Connections refused over limits.max_http_connections.",
         line("syncline_connections_refused_total", connections_refused));
  metric("syncline_open_connections", "gauge", "Accepted TCP connections still open (any kind).",
         line("syncline_open_connections", open_connections));
  metric("syncline_catchup_bytes", "gauge", "Resume catch-up bytes held in memory (limits.catchup_memory_bytes).",
         line("syncline_catchup_bytes", catchup_bytes));
  metric("syncline_catchup_waiting", "gauge", "Streams waiting for catch-up memory.",
         line("syncline_catchup_waiting", catchup_waiting));
  metric("syncline_snapshot_rows_read_total", "counter", "Rows snapshots read from the documents table.",
         line("syncline_snapshot_rows_read_total", snapshot_rows_read.load()));
  {
    std::string h;
    for (std::size_t i = 0; i < kGroupBuckets.size(); ++i) {
      h += line("syncline_commit_group_size_bucket{le=\"" + std::to_string(kGroupBuckets[i]) + "\"}",
                static_cast<double>(group_buckets_[i]));
    }
    h += line("syncline_commit_group_size_bucket{le=\"+Inf\"}", static_cast<double>(groups_));
    h += line("syncline_commit_group_size_sum", static_cast<double>(group_requests_));
    h += line("syncline_commit_group_size_count", static_cast<double>(groups_));
    metric("syncline_commit_group_size", "histogram", "Write requests committed per group (one fsync each).", h);
  }
  metric("syncline_commit_groups_failed_total", "counter", "Groups whose commit failed (every request answered 500).",
         line("syncline_commit_groups_failed_total", static_cast<double>(groups_failed_)));
  metric("syncline_commit_seconds_total", "counter", "Time the writer spent in group transactions.",
         line("syncline_commit_seconds_total", commit_seconds_));
  metric("syncline_write_queue", "gauge", "Write requests submitted and not yet answered.",
         line("syncline_write_queue", static_cast<double>(write_queue)));
  metric("syncline_writes_refused_total", "counter", "Write requests refused with 503 (writer queue full, or shutting down).",
         line("syncline_writes_refused_total", static_cast<double>(writes_refused)));
  metric("syncline_head_seq", "gauge", "Latest committed seq.", line("syncline_head_seq", static_cast<double>(head_seq)));
  metric("syncline_log_pruned_through", "gauge", "Highest seq removed from the log by retention.",
         line("syncline_log_pruned_through", static_cast<double>(pruned_through)));
  metric("syncline_documents", "gauge", "Live documents.", line("syncline_documents", static_cast<double>(documents)));
  return out;
}

}  // namespace syncline::server
