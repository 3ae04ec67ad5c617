// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// The base replica as one text: a JSON array of stored documents (tombstones too), in the form
// document_to_json writes. Storage adapters keep it as one record, so a cold start reads one
// value instead of one record per document, and the engine decodes it without a DOM of the
// whole array (JsonReader). Documents written after the image are kept apart as deltas and
// restored on top of it (Engine::restore_json).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/document.hpp"
#include "core/error.hpp"
#include "core/store.hpp"

namespace syncline {

std::string encode_base_image(const Store& store);

// Untrusted input (it comes back from storage): every document must have a string collection
// and id, an integer version, an object `fields` nesting at most `max_depth` levels, and an
// optional boolean `deleted`; anything else is an invalid_snapshot error naming the document.
Result<std::vector<Document>> decode_base_image(std::string_view text, std::size_t max_depth);

}  // namespace syncline
