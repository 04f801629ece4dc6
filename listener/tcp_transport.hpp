// Transport for MQTT over plain TCP, on the worker's EpollPoller. Reads go straight into the
// connection's read buffer (the worker's shared buffer while no packet is partial); writes
// gather everything queued into one sendmsg per turn of the event loop. A connection that the
// broker ends closes without a reset: see LingeringSocket (listener/socket_peer.hpp).
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>

#include "broker/transport.hpp"
#include "listener/epoll_poller.hpp"
#include "listener/socket_peer.hpp"

namespace mqttd {

class Broker;
class ClientConnection;

class TcpTransport final : public Transport, public LingeringSocket {
 public:
  // Takes the connected socket `fd` and serves it on `worker`. Call on that worker's thread.
  // `peer`: the client's address when it is not the socket's (from a PROXY protocol header).
  // `certificate`: the client certificate a trusted load balancer verified (PROXY protocol v2).
  static void serve(Broker& broker, std::size_t worker, int fd, std::uint64_t endpoint_id = 0,
                    const sockaddr_in6* peer = nullptr, std::unique_ptr<authn::PeerCertificate> certificate = nullptr);

  TcpTransport(Broker& broker, std::size_t worker, int fd, EpollPoller& poller, std::uint64_t endpoint_id,
               const sockaddr_in6* peer = nullptr, std::unique_ptr<authn::PeerCertificate> certificate = nullptr);
  ~TcpTransport() override;

  void on_events(std::uint32_t events) override;
  void flush() override;
  void close() override;
  void resume_reading() override;
  const std::string& peer() const override;
  const authn::PeerCertificate* peer_certificate() const override { return certificate_.get(); }

 private:
  void on_readable();
  void write_pending() override;
  bool output_empty() const override;
  void update_interest() override;
  void notify_closed() override;
  // Whether the events, which arrived while input is paused, say that the client is gone.
  bool gone_while_paused(std::uint32_t events);

  // Before connection_: the connection may ask for it while it is made.
  std::unique_ptr<authn::PeerCertificate> certificate_;
  std::unique_ptr<ClientConnection> connection_;
  sockaddr_in6 peer_address_{};  // formatted only when a log line needs it
  std::uint32_t interest_ = 0;   // the events epoll watches for
  bool engine_closed_ = false;   // the connection was told (on_transport_closed), once
  // EPOLLRDHUP is no longer watched: the peer shut its side down but left data to process.
  bool rdhup_ignored_ = false;
};

}  // namespace mqttd
