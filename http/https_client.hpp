// An HTTPS client for the broker's calls to outside services (the Kubernetes API's TokenReview,
// a custom authentication server, an OIDC issuer's keys). It runs on a thread of its own, so that
// no worker ever waits on the network; every request is bounded in time and in response size,
// and the number in flight is bounded. Beast and Asio stay behind this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqttd::http {

// How the client proves the server's identity and, optionally, its own.
struct TlsSettings {
  // PEM files or folders of PEM files with the CAs the server's certificate must chain to; empty:
  // the system's default CAs.
  std::vector<std::string> ca_paths;
  // A client certificate chain and its key (PEM), presented when the server asks.
  std::optional<std::string> client_certificate_file;
  std::optional<std::string> client_key_file;
  bool operator==(const TlsSettings&) const = default;
};

struct Request {
  std::string method = "POST";  // GET or POST
  // https://host[:port]/path[?query]; the host is checked against the server's certificate
  // (DNS name or IP address) and sent as SNI when it is a name.
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, Content-Length
  std::string body;
  std::chrono::milliseconds timeout{5000};     // the whole exchange: connect, handshake, write, read
  std::size_t max_response_bytes = 64 * 1024;  // headers and body
  std::shared_ptr<const TlsSettings> tls;      // null: the system's CAs, no client certificate
};

struct Response {
  // Why no answer arrived, when `ok` is false.
  enum class Failure {
    None,  // ok: an HTTP answer arrived
    // The broker's own doing, before any network activity: the client refused the request on the
    // spot (over max_in_flight, stopped), or its URL, method, header fields or TLS settings are
    // unusable; or stop() cancelled it. Says nothing about the server: callers must not count it
    // as the server's failure (a circuit breaker, a fallback to the next method).
    Local,
    // The exchange with the server failed: resolve, connect, TLS handshake, write or read
    // errors, the timeout, an answer too large or malformed.
    Network,
  };
  // False when no HTTP answer arrived (refused, timed out, TLS failure, too large, malformed):
  // `error` says why, `failure` whose doing it was, and `status` is 0.
  bool ok = false;
  std::string error;
  unsigned status = 0;
  std::string content_type;
  std::string body;
  Failure failure = Failure::None;
};

class Client {
 public:
  // At most `max_in_flight` requests at once; beyond it, send() answers at once with an error
  // (Response::Failure::Local).
  explicit Client(std::size_t max_in_flight = 256);
  ~Client();  // stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request`; `done` runs once, on the client's thread, with the answer or the error. Safe
  // to call from any thread. After stop(), `done` runs at once with an error (Failure::Local).
  void send(Request request, std::function<void(Response)> done);
  // Cancels what is in flight (their `done` runs with an error "stopped", Failure::Local) and joins
  // the thread.
  // Idempotent. Called from a `done`, it cannot join: the destructor does, and must therefore not
  // run on the client's own thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqttd::http
