// Layer: server. Serving a built web app (--static DIR): MIME types, SPA fallback to index.html,
// no-cache for index.html and sw.js. Beast-free.
#pragma once
#include <optional>
#include <string>

#include "http_types.hpp"

namespace syncline::server {

// nullopt: not a static request (or no such file and no index.html fallback).
std::optional<HttpResponse> serve_static(const std::string& root, const HttpRequest& req);
std::string mime_type(const std::string& path);

}  // namespace syncline::server
