// Transport for MQTT over TLS on the worker's EpollPoller: OpenSSL works the non-blocking socket
// directly. Reads decrypt into the connection's read buffer; writes copy what is queued into
// one per-thread staging buffer of a TLS record's size and encrypt it in one call, so that many
// small packets make one record and one system call. A connection that the broker ends closes as
// a TCP one does (LingeringSocket, listener/socket_peer.hpp), its close_notify sent first.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>

#include "broker/transport.hpp"
#include "listener/epoll_poller.hpp"
#include "listener/socket_peer.hpp"
#include "tls/openssl_ptr.hpp"

namespace mqttd {

class Broker;
class ClientConnection;

class TlsTransport final : public Transport, public LingeringSocket {
 public:
  // Takes the connected socket `fd` and serves it on `worker` with the server context `tls`.
  // Call on that worker's thread. `peer`: the client's address when it is not the socket's (from a
  // PROXY protocol header).
  static void serve(Broker& broker, std::size_t worker, int fd, std::shared_ptr<ssl_ctx_st> tls,
                    std::uint64_t endpoint_id, const sockaddr_in6* peer = nullptr);

  TlsTransport(Broker& broker, std::size_t worker, int fd, SSL_CTX* tls, EpollPoller& poller, std::uint64_t endpoint_id,
               const sockaddr_in6* peer = nullptr);
  ~TlsTransport() override;

  void on_events(std::uint32_t events) override;
  void flush() override;
  void close() override;
  void resume_reading() override;
  const std::string& peer() const override;
  const authn::PeerCertificate* peer_certificate() const override { return peer_certificate_.get(); }

 private:
  void handshake();
  void on_readable();
  void write_pending() override;
  bool output_empty() const override;
  void update_interest() override;
  void notify_closed() override;
  void send_close_notify() override;
  bool can_linger() const override { return handshake_done_; }
  void fail(const char* what);
  // Whether the events, which arrived while input is paused, say that the client is gone.
  bool gone_while_paused(std::uint32_t events);
  void read_buffered_later();

  tls::SslPtr ssl_;
  std::unique_ptr<ClientConnection> connection_;
  std::unique_ptr<authn::PeerCertificate> peer_certificate_;  // verified at the handshake
  sockaddr_in6 peer_address_{};
  std::uint32_t interest_ = 0;
  // The socket event each direction waits for: TLS may need to write to read, or read to write.
  std::uint32_t read_needs_ = 0x001;   // EPOLLIN
  std::uint32_t write_needs_ = 0x004;  // EPOLLOUT
  bool handshake_done_ = false;
  bool engine_closed_ = false;  // the connection was told (on_transport_closed), once
  // EPOLLRDHUP is no longer watched: the peer shut its side down but left data to process.
  bool rdhup_ignored_ = false;
};

}  // namespace mqttd
