#include "static_files.hpp"

#include <filesystem>
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

}  // namespace

std::optional<HttpResponse> serve_static(const std::string& root, const HttpRequest& req) {
  if (root.empty() || (req.method != "GET" && req.method != "HEAD")) return std::nullopt;
  std::string rel = req.path;
  if (rel.empty() || rel[0] != '/') return std::nullopt;
  // Reject traversal outright rather than trying to normalise it.
  if (rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos) return std::nullopt;
  std::error_code ec;
  fs::path base = fs::weakly_canonical(root, ec);
  fs::path p = base / rel.substr(1);
  if (rel == "/" || fs::is_directory(p, ec)) p /= "index.html";
  if (fs::is_regular_file(p, ec)) {
    auto body = read_file(p);
    if (body) return file_response(p, std::move(*body), req);
  }
  // SPA fallback: unknown routes without a file extension get index.html.
  std::string last = fs::path(rel).filename().string();
  if (last.find('.') == std::string::npos) {
    fs::path index = base / "index.html";
    if (fs::is_regular_file(index, ec)) {
      auto body = read_file(index);
      if (body) return file_response(index, std::move(*body), req);
    }
  }
  return std::nullopt;
}

}  // namespace syncline::server
