// Layer: server. The write routes, POST /v1/mutations and POST /v1/events, and the same writes
// arriving as WebSocket frames: decode, check against the caller's write rules, hand to the
// writer, and once committed broadcast the rows and answer (see api.hpp for the pipeline).
#include <algorithm>

#include "api.hpp"
#include "log.hpp"

namespace syncline::server {

ApiError App::writer_unavailable() {
  metrics_.writes_refused++;
  ApiError e = shutting_down_ ? api_error(codes::kUnavailable, "server is shutting down")
                              : api_error(codes::kUnavailable, "too many writes queued");
  e.retry_after_s = 1;
  return e;
}

// --- Mutations ---

std::variant<MutationBatch, ApiError> App::decode_mutations(const Json& body) {
  if (!body.is_object()) return api_error(codes::kInvalidRequest, "body must be a JSON object");
  // Checked before decoding, so an oversized batch is refused without decoding its mutations.
  if (body.contains("mutations") && body["mutations"].is_array() &&
      body["mutations"].size() > config_.limits.max_batch) {
    metrics_.batches_refused++;
    return api_error(codes::kPayloadTooLarge,
                     "a batch holds at most " + std::to_string(config_.limits.max_batch) + " mutations", "mutations");
  }
  DecodeLimits dl;
  dl.max_batch = config_.limits.max_batch;
  auto batch = decode_mutation_batch(body, dl);
  if (!batch) {
    metrics_.batches_refused++;
    return ApiError{batch.error()};
  }
  if (!is_valid_id(batch->client)) {
    metrics_.batches_refused++;
    return api_error(codes::kInvalidRequest, "client must match ^[A-Za-z0-9_.:-]{1,128}$", "client");
  }
  return std::move(*batch);
}

bool App::mutate(const Claims& claims, const Json& body, MutateDone done) {
  auto batch = decode_mutations(body);
  if (auto* e = std::get_if<ApiError>(&batch)) {
    done(std::move(*e));
    return false;
  }
  return submit_batch(claims, std::get<MutationBatch>(std::move(batch)), std::move(done));
}

void App::post_mutations(Call& c, MutationBatch batch) {
  submit_batch(c.claims, std::move(batch), [reply = c.reply](std::variant<MutationResults, ApiError> out) {
    if (auto* e = std::get_if<ApiError>(&out)) return reply(error_response(*e));
    reply(json_response(200, encode(std::get<MutationResults>(out))));
  });
}

bool App::submit_batch(const Claims& claims, MutationBatch batch, MutateDone done) {
  auto refuse = [&done, this](ApiError e) {
    metrics_.batches_refused++;
    done(std::move(e));
    return false;
  };
  // One pass in batch order: the answer names the first mutation that fails any check.
  std::int64_t prev = 0;
  for (std::size_t i = 0; i < batch.mutations.size(); ++i) {
    const Mutation& m = batch.mutations[i];
    std::string f = "mutations[" + std::to_string(i) + "]";
    if (m.mid <= 0 || m.mid <= prev) {
      return refuse(api_error(codes::kInvalidRequest,
                              "mids must be positive and strictly increasing within a batch", f + ".mid"));
    }
    prev = m.mid;
    if (m.condition && m.condition->conditions().size() > config_.limits.max_where_conditions) {
      return refuse(api_error(codes::kInvalidRequest,
                              "if holds more than " + std::to_string(config_.limits.max_where_conditions) +
                                  " conditions (limits.max_where_conditions)",
                              f + ".if"));
    }
    if (!config_.collection(m.collection)) {
      return refuse(api_error(codes::kNotFound, "unknown collection '" + m.collection + "'", f + ".collection"));
    }
    if (!config_.write_access(m.collection, m.op, claims).allows_any()) {
      return refuse(api_error(codes::kForbidden,
                              "role '" + claims.role + "' may not " + to_string(m.op) + " " + m.collection,
                              f + ".collection"));
    }
  }
  if (shutting_down_) {
    done(writer_unavailable());
    return false;
  }
  WriteRequest wr;
  wr.kind = WriteRequest::Kind::Mutate;
  wr.client = batch.client;
  wr.subject = claims.sub;
  wr.mutations = std::move(batch.mutations);
  // Runs on the writer thread: it captures the claims by value and reads only the config,
  // which is immutable while the server runs.
  const Config* config = &config_;
  wr.check = [config, claims](const Mutation& m, const Document* before, const Json* after) -> std::optional<Error> {
    Access a = config->write_access(m.collection, m.op, claims);
    if (a.kind == Access::Kind::All) return std::nullopt;
    if (a.kind == Access::Kind::None) return make_error(codes::kForbidden, "write not allowed", "collection");
    if (before && !a.filter.matches(m.id, before->fields)) {
      return make_error(codes::kForbidden, "the document is outside what this token may write", "id");
    }
    if (after && !a.filter.matches(m.id, *after)) {
      return make_error(codes::kForbidden, "the result is outside what this token may write (" + a.filter.to_string() + ")",
                        "fields");
    }
    return std::nullopt;
  };
  wr.readable = [config, claims](const Mutation& m, const Document& doc) {
    return config->read_access(m.collection, claims).matches(m.id, doc.fields);
  };
  bool queued = writer_->submit(std::move(wr), [this, done](WriteOutcome o) {
    if (o.error) {
      metrics_.batches_refused++;
      if (o.error->code == codes::kForbidden) return done(ApiError{*o.error, 0});
      log_error("mutation batch failed", {{"error", o.error->message}});
      return done(api_error(codes::kInternal, "internal error while committing the batch"));
    }
    for (const auto& r : o.batch.results.results) {
      if (r.status == ResultStatus::Applied) metrics_.mutations_applied++;
      else if (r.status == ResultStatus::Rejected) metrics_.mutations_rejected++;
      else metrics_.mutations_duplicate++;
    }
    MutationResults results = std::move(o.batch.results);
    // Broadcast first, then answer: the caller's own stream sees the change no later than the
    // ack. With other nodes writing too, seqs before this group may still be on their way
    // from the tailer; the answer waits for them.
    const std::int64_t seq = results.seq;
    fan_out(std::move(o.batch.rows));
    sequencer_->when_published(seq, [done, results = std::move(results)]() mutable { done(std::move(results)); });
  });
  if (!queued) done(writer_unavailable());
  return queued;
}

void App::fan_out(std::vector<LogRow> rows) { sequencer_->offer_local(std::move(rows)); }

void App::broadcast(LogRow row) {
  if (row.is_event) {
    metrics_.events_total++;
  } else {
    metrics_.changes_total++;
    metrics_.note_changes(1, now_mono_ms());
  }
  const std::int64_t seq = row.seq;
  hub_.broadcast(make_outgoing(std::move(row)));
  // The sequencer publishes in seq order, so this only grows; a stream that turns live now
  // reads the log up to here and gets the rest live.
  broadcast_head_ = seq;
}

void App::tailed(std::vector<LogRow> rows) { sequencer_->offer_log(std::move(rows)); }

// --- Events ---

std::variant<PublishRequest, ApiError> App::decode_event(const Json& body) {
  auto req = decode_publish(body);
  if (!req) return ApiError{req.error()};
  return std::move(*req);
}

bool App::publish(const Claims& claims, const Json& body, PublishDone done) {
  auto event = decode_event(body);
  if (auto* e = std::get_if<ApiError>(&event)) {
    done(std::move(*e));
    return false;
  }
  return submit_event(claims, std::get<PublishRequest>(std::move(event)), std::move(done));
}

void App::post_events(Call& c, PublishRequest event) {
  submit_event(c.claims, std::move(event), [reply = c.reply](std::variant<std::int64_t, ApiError> out) {
    if (auto* e = std::get_if<ApiError>(&out)) return reply(error_response(*e));
    reply(json_response(200, {{"seq", std::get<std::int64_t>(out)}}));
  });
}

bool App::submit_event(const Claims& claims, PublishRequest event, PublishDone done) {
  auto refuse = [&done](ApiError e) {
    done(std::move(e));
    return false;
  };
  PublishCheck check;
  if (event.collection.empty() && !config_.events.may_publish(claims.role)) {
    return refuse(api_error(codes::kForbidden,
                            "role '" + claims.role + "' may not publish events without a collection (config: events.publish)",
                            "collection"));
  }
  if (!event.collection.empty()) {
    if (!is_valid_collection(event.collection)) {
      return refuse(api_error(codes::kInvalidRequest, "invalid collection name", "collection"));
    }
    if (!config_.collection(event.collection)) {
      return refuse(api_error(codes::kNotFound, "unknown collection '" + event.collection + "'", "collection"));
    }
    Access a = config_.read_access(event.collection, claims);
    if (!a.allows_any()) {
      return refuse(
          api_error(codes::kForbidden, "role '" + claims.role + "' may not read " + event.collection, "collection"));
    }
    if (a.kind == Access::Kind::Where) {
      // A scoped caller may only publish about a document it can read. Decided by the writer,
      // on the document as it is when the event gets its seq. An invalid id names no document.
      std::string refusal = "events on " + event.collection + " need a document this token may read";
      if (event.id.empty() || !is_valid_id(event.id)) return refuse(api_error(codes::kForbidden, refusal, "id"));
      check = [a, id = event.id, refusal](const std::optional<Document>& doc) -> std::optional<Error> {
        if (!doc || !a.matches(id, doc->fields)) return make_error(codes::kForbidden, refusal, "id");
        return std::nullopt;
      };
    }
  }
  if (!event.id.empty() && !is_valid_id(event.id)) return refuse(api_error(codes::kInvalidRequest, "invalid id", "id"));
  if (shutting_down_) return refuse(writer_unavailable());
  WriteRequest wr;
  wr.kind = WriteRequest::Kind::Publish;
  wr.event = std::move(event);
  wr.event_check = std::move(check);
  bool queued = writer_->submit(std::move(wr), [this, done](WriteOutcome o) {
    if (o.error) {
      if (o.error->code == codes::kForbidden) return done(ApiError{*o.error, 0});
      log_error("publish failed", {{"error", o.error->message}});
      return done(api_error(codes::kInternal, "internal error while publishing"));
    }
    std::int64_t seq = o.event->seq;
    std::vector<LogRow> rows;
    rows.push_back(std::move(*o.event));
    fan_out(std::move(rows));
    sequencer_->when_published(seq, [done, seq] { done(seq); });
  });
  if (!queued) done(writer_unavailable());
  return queued;
}

}  // namespace syncline::server
