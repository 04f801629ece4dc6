// The client's thread runs one io_context; every request is an Exchange on it (resolve, connect,
// TLS handshake, write, read), under one deadline that closes the socket. All state but the
// stop flag and the count in flight lives on that thread, so it needs no lock.
#include "http/https_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "http/headers.hpp"
#include "http/tls_contexts.hpp"
#include "http/url.hpp"

namespace mqttd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

// No answer, the exchange with the server having failed (Network) unless told otherwise.
Response failure(std::string error, Response::Failure kind = Response::Failure::Network) {
  Response r;
  r.error = std::move(error);
  r.failure = kind;
  return r;
}

// No answer, by the broker's own doing: refused before any network activity, or cancelled by stop().
Response local_failure(std::string error) { return failure(std::move(error), Response::Failure::Local); }

std::string describe(const std::string& step, const beast::error_code& ec) {
  return std::string(step) + ": " + ec.message();
}

}  // namespace

class Exchange;

// What the exchanges share (Client::Impl, reachable from them without naming Client's privates).
struct ClientState {
  explicit ClientState(std::size_t max) : max_in_flight(max), work(asio::make_work_guard(io)) {}

  asio::io_context io;
  std::size_t max_in_flight;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;

  // Guarded by `mutex`: what send() on other threads reads.
  std::mutex mutex;
  bool stopping = false;
  std::mutex join_mutex;  // stop() on two threads at once: one joins, the other waits for it
  std::size_t in_flight = 0;

  // The client's thread only.
  TlsContextCache contexts;
  std::unordered_set<std::shared_ptr<Exchange>> live;

  void finished_one() {
    std::lock_guard lock(mutex);
    --in_flight;
  }
  bool is_stopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }
};

// One request, from the resolver to the last byte of the answer.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(ClientState& client, Request request, std::function<void(Response)> done)
      : client_(client),
        request_(std::move(request)),
        done_(std::move(done)),
        resolver_(client.io),
        deadline_(client.io) {}

  void start() {
    client_.live.insert(shared_from_this());
    if (client_.is_stopping()) return finish(local_failure("stopped"));
    std::string why;
    auto url = parse_https_url(request_.url, &why);
    if (!url) return finish(local_failure("bad URL: " + why));
    url_ = std::move(*url);
    if (request_.method != "GET" && request_.method != "POST")
      return finish(local_failure("unsupported method " + request_.method));
    for (const auto& [name, value] : request_.headers)
      if (!is_valid_header_name(name) || !is_valid_header_value(value))
        return finish(local_failure("a header field that is not valid HTTP: " + name));
    auto tls = client_.contexts.get(request_.tls.get());
    if (!tls.context) return finish(local_failure("TLS settings: " + tls.error));
    context_ = std::move(tls.context);  // the stream keeps a reference to it
    stream_.emplace(client_.io, *context_);
    if (auto error = set_peer_identity()) return finish(local_failure(*error));

    deadline_.expires_after(request_.timeout);
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->finish(failure("timed out after " + std::to_string(self->request_.timeout.count()) + " ms"));
    });
    auto flags = url_.host_is_ip ? tcp::resolver::numeric_host : tcp::resolver::flags();
    resolver_.async_resolve(url_.host, std::to_string(url_.port), flags,
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                              self->on_resolved(ec, std::move(results));
                            });
  }

  // Ends the exchange (once): the socket closes, pending operations complete as cancelled, and
  // `done` runs.
  void finish(Response response) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    resolver_.cancel();
    if (stream_) beast::get_lowest_layer(*stream_).close();
    auto self = shared_from_this();  // `live` may hold the last reference
    client_.live.erase(self);
    client_.finished_one();
    try {
      done_(std::move(response));
    } catch (const std::exception& e) {
      // The client's thread must survive a callback's mistake: every other request runs on it.
      spdlog::error("event=http_callback_failed error=\"{}\"", e.what());
    }
  }

 private:
  // The certificate must name the URL's host: a DNS name (also sent as SNI) or an IP address.
  std::optional<std::string> set_peer_identity() {
    SSL* ssl = stream_->native_handle();
    if (url_.host_is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str()) != 1)
        return "cannot check the certificate against " + url_.host;
      return std::nullopt;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, url_.host.c_str()) != 1) return "cannot check the certificate against " + url_.host;
    if (SSL_set_tlsext_host_name(ssl, url_.host.c_str()) != 1) return "cannot send the server name " + url_.host;
    return std::nullopt;
  }

  void on_resolved(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_) return;
    if (ec) return finish(failure(describe("resolve " + url_.host, ec)));
    beast::get_lowest_layer(*stream_).async_connect(
        results, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) { self->on_connected(ec); });
  }

  void on_connected(beast::error_code ec) {
    if (finished_) return;
    if (ec) return finish(failure(describe("connect", ec)));
    stream_->async_handshake(asio::ssl::stream_base::client,
                             [self = shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
  }

  void on_handshake(beast::error_code ec) {
    if (finished_) return;
    if (ec) return finish(failure(describe("TLS handshake", ec)));
    outgoing_.method(request_.method == "GET" ? bhttp::verb::get : bhttp::verb::post);
    outgoing_.target(url_.target);
    outgoing_.version(11);
    outgoing_.set(bhttp::field::host, url_.host_header());
    outgoing_.set(bhttp::field::user_agent, "mqttd");
    // One request per connection: the server may close as soon as it has answered.
    outgoing_.set(bhttp::field::connection, "close");
    for (const auto& [name, value] : request_.headers)
      if (!is_reserved_header(name)) outgoing_.set(name, value);
    outgoing_.body() = std::move(request_.body);
    if (request_.method == "POST" || !outgoing_.body().empty()) outgoing_.content_length(outgoing_.body().size());
    bhttp::async_write(*stream_, outgoing_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void on_written(beast::error_code ec) {
    if (finished_) return;
    if (ec) return finish(failure(describe("write", ec)));
    // The bound covers the headers and the body together: the header's share is known once
    // it is read, and what is left of the bound is the body's.
    std::size_t bound = request_.max_response_bytes;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(bound, UINT32_MAX)));
    parser_->body_limit(bound);
    bhttp::async_read_header(*stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, std::size_t header_bytes) {
                               self->on_header(ec, header_bytes);
                             });
  }

  void on_header(beast::error_code ec, std::size_t header_bytes) {
    if (finished_) return;
    // A Content-Length over the bound is found with the header (body_limit), before any body.
    if (ec == bhttp::error::header_limit || ec == bhttp::error::body_limit)
      return finish(failure("the answer is larger than the bound"));
    if (ec) return finish(failure(describe("read", ec)));
    std::size_t bound = request_.max_response_bytes;
    std::size_t left = header_bytes < bound ? bound - header_bytes : 0;
    // Beast checks a Content-Length against body_limit only while parsing the header; a chunked
    // or until-close body is checked as it arrives.
    if (auto length = parser_->content_length(); length && *length > left)
      return finish(failure("the answer is larger than the bound"));
    parser_->body_limit(left);
    bhttp::async_read(*stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (finished_) return;
    if (ec == bhttp::error::body_limit) return finish(failure("the answer is larger than the bound"));
    // A server that closes without TLS's close_notify truncates the stream; the answer still
    // counts when its framing (Content-Length or chunks) says it is whole, which is_done() checks.
    if (ec && !(ec == asio::ssl::error::stream_truncated && parser_->is_done()))
      return finish(failure(describe("read", ec)));
    auto& message = parser_->get();
    Response response;
    response.ok = true;
    response.status = message.result_int();
    if (auto type = message.find(bhttp::field::content_type); type != message.end())
      response.content_type = std::string(type->value());
    response.body = std::move(message.body());
    finish(std::move(response));
  }

  ClientState& client_;
  Request request_;
  std::function<void(Response)> done_;
  HttpsUrl url_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  std::shared_ptr<asio::ssl::context> context_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  bhttp::request<bhttp::string_body> outgoing_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  bool finished_ = false;
};

struct Client::Impl : ClientState {
  using ClientState::ClientState;
};

Client::Client(std::size_t max_in_flight) : impl_(std::make_unique<Impl>(max_in_flight)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

Client::~Client() { stop(); }

void Client::send(Request request, std::function<void(Response)> done) {
  {
    std::unique_lock lock(impl_->mutex);
    if (impl_->stopping) {
      lock.unlock();
      return done(local_failure("stopped"));
    }
    if (impl_->in_flight >= impl_->max_in_flight) {
      lock.unlock();
      return done(local_failure("too many requests in flight (" + std::to_string(impl_->max_in_flight) + ")"));
    }
    ++impl_->in_flight;
  }
  auto exchange = std::make_shared<Exchange>(*impl_, std::move(request), std::move(done));
  asio::post(impl_->io, [exchange] { exchange->start(); });
}

void Client::stop() {
  bool first = false;
  {
    std::lock_guard lock(impl_->mutex);
    first = !impl_->stopping;
    impl_->stopping = true;
  }
  if (first) {
    // On the client's thread, after what was already posted: requests that have not started
    // see `stopping` when they do, and end as stopped too.
    asio::post(impl_->io, [impl = impl_.get()] {
      auto live = impl->live;  // finish() erases from the set
      for (const auto& exchange : live) exchange->finish(local_failure("stopped"));
      impl->work.reset();  // run() returns once the cancelled operations have completed
    });
  }
  // From a `done` the thread cannot join itself: the next stop() (the destructor's, which must
  // not run on the client's thread) joins it.
  if (impl_->thread.get_id() == std::this_thread::get_id()) return;
  std::lock_guard lock(impl_->join_mutex);
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace mqttd::http
