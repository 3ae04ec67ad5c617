#include "core/document.hpp"

namespace syncline {

bool is_valid_collection(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Json document_to_json(const Document& doc) {
  Json j = {{"collection", doc.collection},
            {"id", doc.id},
            {"version", doc.version},
            {"fields", doc.fields}};
  if (doc.deleted) j["deleted"] = true;
  return j;
}

}  // namespace syncline
