// A small HTTP/1.1 server for the diagnostics port (/metrics, /healthz, /readyz), on the event
// loop it is given (the daemon's main thread). Bounded in every way a scraper or a stranger can
// push: concurrent connections (when full, the connection idle the longest is closed to make room,
// so that connections held open by a stranger never lock the probes out), header size, no request
// body, a deadline per request, requests per connection. Asio and Beast stay in the .cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace mqttd::ops {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called on the server's event loop for each GET or HEAD (other methods get 405 without it).
using HttpHandler = std::function<HttpResponse(std::string_view target)>;

class HttpServer {
 public:
  static constexpr std::size_t kMaxConnections = 32;
  static constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
  static constexpr int kRequestTimeoutSeconds = 10;
  static constexpr unsigned kMaxRequestsPerConnection = 100;

  // Binds `address`:`port` (port 0: any free port) and serves. Throws boost::system::system_error
  // when the port cannot be bound.
  HttpServer(boost::asio::io_context& io, const std::string& address, std::uint16_t port, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Stops accepting; connections being served finish their request.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mqttd::ops
