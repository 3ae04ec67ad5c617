#include "core/base_image.hpp"

#include "core/json_bounded.hpp"
#include "core/json_reader.hpp"

namespace syncline {

std::string encode_base_image(const Store& store) {
  std::string out = "[";
  // Written member by member: document_to_json would copy every document's fields first.
  store.for_each([&](const Document& d) {
    if (out.size() > 1) out += ',';
    out += R"({"collection":)";
    out += dump_nothrow(Json(d.collection));
    out += R"(,"id":)";
    out += dump_nothrow(Json(d.id));
    out += R"(,"version":)";
    out += std::to_string(d.version);
    out += R"(,"fields":)";
    out += dump_nothrow(d.fields);
    if (d.deleted) out += R"(,"deleted":true)";
    out += '}';
  });
  out += ']';
  return out;
}

Result<std::vector<Document>> decode_base_image(std::string_view text, std::size_t max_depth) {
  const auto bad = [](const std::string& message, const std::string& at = {}) {
    return make_error(codes::kInvalidSnapshot, message, at);
  };
  JsonReader in(text);
  if (!in.consume('[')) return bad("the stored replica image is not a JSON array", "image");
  std::vector<Document> docs;
  std::string key;
  for (bool first = true; in.next_element(first); first = false) {
    const std::string at = "image[" + std::to_string(docs.size()) + "]";
    if (!in.consume('{')) return bad("document must be an object", at);
    Document d;
    bool has_collection = false, has_id = false, has_version = false, has_fields = false;
    for (bool f = true; in.next_member(f, key); f = false) {
      // The names are read as strings straight away; a value of another type is malformed.
      if ((key == "collection" || key == "id") && in.peek() == '"') {
        std::string& out = key == "id" ? d.id : d.collection;
        if (!in.parse_string(out)) return bad("the stored replica image is not valid JSON", at);
        (key == "id" ? has_id : has_collection) = true;
        continue;
      }
      Json v;
      if (!in.parse_value(v)) return bad("the stored replica image is not valid JSON", at);
      if (key == "version" && v.is_number_integer()) {
        d.version = v.get<std::int64_t>();
        has_version = true;
      } else if (key == "fields" && v.is_object()) {
        d.fields = std::move(v);
        has_fields = true;
      } else if (key == "deleted" && (v.is_boolean() || v.is_null())) {
        d.deleted = v.is_boolean() && v.get<bool>();
      } else if (key == "collection" || key == "id" || key == "version" || key == "fields" || key == "deleted") {
        return bad("document is malformed", at + "." + key);
      }
    }
    if (in.failed()) return bad("the stored replica image is not valid JSON", at);
    if (!has_collection || !has_id || !has_version || !has_fields) return bad("document is malformed", at);
    if (!within_depth(d.fields, max_depth)) return bad("document nests too deep", at + ".fields");
    docs.push_back(std::move(d));
  }
  if (in.failed() || !in.at_end()) return bad("the stored replica image is not valid JSON", "image");
  return docs;
}

}  // namespace syncline
