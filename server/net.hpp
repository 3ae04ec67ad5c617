// Layer: server transport. Beast/Asio types and the entry points of the stream transports.
// Only listener/http_session/sse_session/ws_session/main include this header.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api.hpp"

namespace syncline::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

using BeastRequest = http::request<http::string_body>;

// Converts a Beast request into the transport-free HttpRequest the App understands.
HttpRequest to_http_request(const BeastRequest& req, const std::string& remote, const std::string& remote_addr);

// Starts an SSE stream on `stream` (the request was validated by App::open_stream).
void start_sse(App& app, beast::tcp_stream stream, const HttpRequest& req, StreamRequest sr);
// Accepts the WebSocket upgrade carried by `req` and starts the session.
void start_ws(App& app, beast::tcp_stream stream, BeastRequest req, const HttpRequest& hreq, StreamRequest sr);

// Completes the WebSocket upgrade only to refuse the stream: sends an `error` frame and closes
// with 4000 + HTTP status (4400, 4401, 4403, 4404, 4429) or 1013 for 503, because browsers
// cannot read the HTTP status of a failed upgrade.
void refuse_ws(App& app, beast::tcp_stream stream, BeastRequest req, const ApiError& error,
               std::shared_ptr<void> connection);

// Starts an HTTP session on an accepted socket; `connection` is its slot (App::connection_slot).
void start_http(App& app, tcp::socket socket, std::shared_ptr<void> connection);

// Serialises an HttpResponse for Beast.
http::response<http::string_body> to_beast_response(const HttpResponse& r, unsigned version, bool keep_alive);

}  // namespace syncline::server
