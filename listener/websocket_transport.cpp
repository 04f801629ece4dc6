#include "listener/websocket_transport.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/transport.hpp"
#include "listener/socket_peer.hpp"
#include "tls/tls_credentials.hpp"

namespace mqttd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr std::size_t kReadBytes = 4096;
constexpr std::size_t kMaxWriteBytes = 65536;  // copied per frame; the rest waits in the output queue
constexpr std::uint32_t kMaxRequestHeaderBytes = 8192;

// The subprotocol to answer with: "mqtt" if the client offers it (MQTT 5 §6), or the 3.1 name
// some older clients send; empty if neither.
std::string choose_subprotocol(beast::string_view offered) {
  std::string chosen;
  std::size_t start = 0;
  std::string list(offered);
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    auto token = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto b = token.find_first_not_of(" \t"), e = token.find_last_not_of(" \t");
    token = b == std::string::npos ? "" : token.substr(b, e - b + 1);
    if (token == "mqtt") return token;
    if (token == "mqttv3.1" && chosen.empty()) chosen = token;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return chosen;
}

template <class NextLayer>
class WebSocketTransport final : public Transport, public std::enable_shared_from_this<WebSocketTransport<NextLayer>> {
 public:
  WebSocketTransport(Broker& broker, std::size_t worker, NextLayer&& next, std::uint64_t endpoint_id, bool tls,
                     std::string peer, std::unique_ptr<authn::PeerCertificate> certificate = nullptr)
      : Transport(endpoint_id),
        ws_(std::move(next)),
        peer_certificate_(std::move(certificate)),
        peer_(std::move(peer)),
        tls_(tls) {
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).set_option(tcp::no_delay(true), ec);
    parser_.header_limit(kMaxRequestHeaderBytes);
    // The connection exists from the start, so that its CONNECT timeout also bounds the handshakes.
    connection_ = broker.open_connection(worker, *this);
  }

  ~WebSocketTransport() override { finish_close(); }

  void start() {
    self_ = this->shared_from_this();
    if constexpr (std::is_same_v<NextLayer, asio::ssl::stream<tcp::socket>>) {
      ws_.next_layer().async_handshake(asio::ssl::stream_base::server,
                                       [this, self = self_](const boost::system::error_code& ec) {
                                         if (ec) return fail("tls handshake", ec);
                                         if (auto cert = tls::peer_certificate_of(ws_.next_layer().native_handle()))
                                           peer_certificate_ = std::make_unique<authn::PeerCertificate>(*cert);
                                         read_request();
                                       });
    } else {
      read_request();
    }
  }

  void flush() override {
    if (accepted_ && !writing_ && !closed_) write_some();
  }

  void close() override {
    if (closing_) return;
    closing_ = true;
    // After this turn, so that what the connection queued just now is written first.
    asio::post(beast::get_lowest_layer(ws_).get_executor(), [this, self = self_] {
      if (closed_) return;
      if (!accepted_) return finish_close();
      if (!writing_) write_some();
    });
  }

  void resume_reading() override {
    if (accepted_ && !reading_ && !closing_ && !closed_) read_some();
  }

  const std::string& peer() const override { return peer_; }
  const authn::PeerCertificate* peer_certificate() const override { return peer_certificate_.get(); }

 private:
  void fail(const char* what, const boost::system::error_code& ec) {
    if (ec != asio::error::operation_aborted)
      spdlog::debug("event=websocket_closed peer={} stage=\"{}\" error=\"{}\"", peer_, what, ec.message());
    finish_close();
  }

  void read_request() {
    http::async_read(ws_.next_layer(), http_buffer_, parser_,
                     [this, self = self_](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return fail("http request", ec);
                       on_request();
                     });
  }

  void on_request() {
    auto& request = parser_.get();
    std::string target(request.target());
    target = target.substr(0, target.find('?'));
    if (!websocket::is_upgrade(request)) return refuse(http::status::upgrade_required, "MQTT over WebSockets only\n");
    if (target != "/mqtt" && target != "/") return refuse(http::status::not_found, "use the path /mqtt\n");
    subprotocol_ = choose_subprotocol(request[http::field::sec_websocket_protocol]);
    if (subprotocol_.empty())
      return refuse(http::status::bad_request, "the WebSocket subprotocol 'mqtt' is required\n");
    ws_.set_option(websocket::stream_base::decorator([protocol = subprotocol_](websocket::response_type& response) {
      response.set(http::field::sec_websocket_protocol, protocol);
      response.set(http::field::server, "mqttd");
    }));
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(10);
    timeouts.idle_timeout = websocket::stream_base::none();  // MQTT's keep alive governs idleness
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.binary(true);
    ws_.auto_fragment(false);
    // The engine bounds each MQTT packet; a frame is only a slice of the byte stream, read in pieces.
    ws_.read_message_max(0);
    ws_.async_accept(request, [this, self = self_](const boost::system::error_code& ec) {
      if (ec) return fail("websocket upgrade", ec);
      accepted_ = true;
      spdlog::debug("event=websocket_open peer={} subprotocol={} tls={}", peer_, subprotocol_, tls_);
      if (closing_) return write_some();
      read_some();
      flush();
    });
  }

  void refuse(http::status status, const char* body) {
    auto response = std::make_shared<http::response<http::string_body>>(status, parser_.get().version());
    response->set(http::field::server, "mqttd");
    response->set(http::field::content_type, "text/plain");
    response->keep_alive(false);
    response->body() = body;
    response->prepare_payload();
    spdlog::debug("event=websocket_refused peer={} status={} target=\"{}\"", peer_, static_cast<int>(status),
                  std::string(parser_.get().target()));
    http::async_write(
        ws_.next_layer(), *response,
        [this, self = self_, response](const boost::system::error_code&, std::size_t) { finish_close(); });
  }

  void read_some() {
    reading_ = true;
    ws_.async_read_some(asio::buffer(read_buffer_),
                        [this, self = self_](const boost::system::error_code& ec, std::size_t n) {
                          reading_ = false;
                          if (ec) return fail("read", ec);
                          if (ws_.got_text()) {
                            // MQTT 5 §6: "If a Client sends data in any other type of data frame, the Server MUST
                            // close".
                            spdlog::debug("event=websocket_closed peer={} reason=\"text frame\"", peer_);
                            return finish_close();
                          }
                          if (closing_) return;
                          connection_->on_bytes(codec::Bytes(read_buffer_.data(), n));
                          // on_bytes() may have resumed reading already (attach() calls resume_reading()): a
                          // second read would run beside it (two reads at once: a read parked by Beast for its
                          // pong was never resumed, and it held the transport alive).
                          if (!closing_ && !closed_ && !reading_ && !connection_->reading_paused()) read_some();
                        });
  }

  void write_some() {
    // A write that completed after finish_close() (a read failed meanwhile) must start nothing:
    // self_ is gone, so a new operation would not keep the transport alive (use after free).
    if (closed_) return;
    auto& out = connection_->output();
    if (out.empty()) {
      if (closing_) shutdown();
      return;
    }
    // Copied so that the output queue may grow while Beast writes.
    write_buffer_.clear();
    iovec iov[64];
    while (!out.empty() && write_buffer_.size() < kMaxWriteBytes) {
      std::size_t count = out.gather(iov, 64);
      std::size_t taken = 0;
      for (std::size_t i = 0; i < count && write_buffer_.size() < kMaxWriteBytes; ++i) {
        auto* p = static_cast<const std::byte*>(iov[i].iov_base);
        std::size_t take = std::min(iov[i].iov_len, kMaxWriteBytes - write_buffer_.size());
        write_buffer_.insert(write_buffer_.end(), p, p + take);
        taken += take;
      }
      connection_->consume_written(taken);
    }
    writing_ = true;
    ws_.async_write(asio::buffer(write_buffer_),
                    [this, self = self_](const boost::system::error_code& ec, std::size_t) {
                      writing_ = false;
                      if (ec) return fail("write", ec);
                      if (connection_->output().empty() && !closing_) connection_->on_output_drained();
                      write_some();
                    });
  }

  void shutdown() {
    if (shutting_down_ || closed_) return;
    shutting_down_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [this, self = self_](const boost::system::error_code&) { finish_close(); });
  }

  void finish_close() {
    if (closed_) return;
    closed_ = true;
    closing_ = true;
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close(ec);
    connection_->on_transport_closed();
    // Pending handlers hold their own references; the last one destroys the transport.
    auto keep = std::move(self_);
  }

  websocket::stream<NextLayer> ws_;
  std::shared_ptr<WebSocketTransport> self_;  // alive until closed, even with no operation pending
  std::unique_ptr<ClientConnection> connection_;
  std::unique_ptr<authn::PeerCertificate> peer_certificate_;
  beast::flat_buffer http_buffer_;
  http::request_parser<http::empty_body> parser_;
  std::array<std::byte, kReadBytes> read_buffer_{};
  std::vector<std::byte> write_buffer_;
  std::string peer_;
  std::string subprotocol_;
  bool tls_;
  bool accepted_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool shutting_down_ = false;
  bool closed_ = false;
};

}  // namespace

void serve_websocket(Broker& broker, std::size_t worker, int fd, std::shared_ptr<ssl_ctx_st> tls,
                     std::uint64_t endpoint_id, const sockaddr_in6* peer,
                     std::unique_ptr<authn::PeerCertificate> certificate) {
  auto& io = broker.io_context(worker);
  std::string peer_text = format_peer(peer ? *peer : peer_address(fd));
  boost::system::error_code ec;
  tcp::socket socket(io);
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  socket.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    broker.connection_closed();
    return;
  }
  if (tls) {
    // Asio's context takes a reference of its own to our OpenSSL context; the stream keeps the
    // SSL object, which holds the context.
    SSL_CTX_up_ref(tls.get());
    asio::ssl::context context(tls.get());
    auto t = std::make_shared<WebSocketTransport<asio::ssl::stream<tcp::socket>>>(
        broker, worker, asio::ssl::stream<tcp::socket>(std::move(socket), context), endpoint_id, true,
        std::move(peer_text));
    t->start();
  } else {
    auto t = std::make_shared<WebSocketTransport<tcp::socket>>(broker, worker, std::move(socket), endpoint_id, false,
                                                               std::move(peer_text), std::move(certificate));
    t->start();
  }
}

}  // namespace mqttd
