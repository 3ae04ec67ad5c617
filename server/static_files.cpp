#include "static_files.hpp"

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>

namespace syncline::server {
namespace fs = std::filesystem;

std::string mime_type(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "webmanifest") return "application/manifest+json";
  if (ext == "wasm") return "application/wasm";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "woff") return "font/woff";
  if (ext == "woff2") return "font/woff2";
  if (ext == "ttf") return "font/ttf";
  if (ext == "xml") return "application/xml";
  return "application/octet-stream";
}

namespace {

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HttpResponse file_response(const fs::path& p, std::string body, const HttpRequest& req) {
  HttpResponse r;
  r.status = 200;
  std::string name = p.filename().string();
  r.content_type = mime_type(name);
  if (name == "index.html" || name == "sw.js") {
    r.headers.emplace_back("Cache-Control", "no-cache");
  } else if (p.string().find("/assets/") != std::string::npos) {
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
  } else {
    r.headers.emplace_back("Cache-Control", "public, max-age=300");
  }
  r.body = req.method == "HEAD" ? std::string() : std::move(body);
  return r;
}

// The file `rel` names under `base` (both canonical), or nullopt when it is missing or resolves
// anywhere else: an absolute remainder ("//etc/passwd", "/%2Fetc"), "..", or a symlink leading
// out of the root. The check is on the canonical path (every symlink followed), so it holds
// whatever the request spelt.
std::optional<fs::path> resolve_under(const fs::path& base, std::string_view rel) {
  std::error_code ec;
  fs::path p = base;
  for (std::size_t i = 0; i < rel.size();) {
    std::size_t slash = rel.find('/', i);
    std::string_view part = rel.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i);
    i = slash == std::string_view::npos ? rel.size() : slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    p /= std::string(part);
  }
  fs::path c = fs::canonical(p, ec);
  if (ec) return std::nullopt;
  auto [b, e] = std::mismatch(base.begin(), base.end(), c.begin(), c.end());
  if (b != base.end()) return std::nullopt;
  return c;
}

}  // namespace

std::optional<HttpResponse> serve_static(const std::string& root, const HttpRequest& req) {
  if (root.empty() || (req.method != "GET" && req.method != "HEAD")) return std::nullopt;
  const std::string& rel = req.path;
  if (rel.empty() || rel[0] != '/' || rel.find('\0') != std::string::npos) return std::nullopt;
  // A path that tries to climb out is not an app route either: no index.html fallback for it.
  if (rel.find("/../") != std::string::npos || (rel.size() >= 3 && rel.compare(rel.size() - 3, 3, "/..") == 0)) {
    return std::nullopt;
  }
  std::error_code ec;
  fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  std::optional<fs::path> p = resolve_under(base, rel);
  if (p && fs::is_directory(*p, ec)) p = resolve_under(base, rel + "/index.html");
  if (p && fs::is_regular_file(*p, ec)) {
    if (auto body = read_file(*p)) return file_response(*p, std::move(*body), req);
  }
  // SPA fallback: unknown routes without a file extension get index.html.
  std::string last = fs::path(rel).filename().string();
  if (last.find('.') == std::string::npos) {
    if (auto index = resolve_under(base, "index.html"); index && fs::is_regular_file(*index, ec)) {
      if (auto body = read_file(*index)) return file_response(*index, std::move(*body), req);
    }
  }
  return std::nullopt;
}

}  // namespace syncline::server
