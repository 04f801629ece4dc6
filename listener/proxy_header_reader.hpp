// The PROXY protocol step of a port that has it (docs/listeners.md, "PROXY protocol"): before TLS,
// WebSockets or MQTT, the accepted socket waits on its worker's EpollPoller for the header a load
// balancer sends, and then goes to its transport with the client's address from the header as its
// peer. Only ports with proxyProtocol come here; other ports hand their sockets to their
// transports directly, as before.
//
// Nothing is consumed until the verdict: the reader peeks (MSG_PEEK) at the first bytes, watching
// the socket edge-triggered so that each new arrival, not the bytes already seen, wakes it; only a
// valid header is then read off the socket. What follows the header, or the whole stream when
// there is none, stays in the socket for TLS, Beast or the MQTT engine to read as usual, so no
// transport needs to be handed leftover bytes.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "authn/credentials.hpp"
#include "config/configuration.hpp"
#include "listener/epoll_poller.hpp"

namespace mqttd {

class Broker;

namespace proxy_protocol {
struct Header;
}

// What a port with proxyProtocol shares with its connections that wait for their header. The
// settings are fixed for the port's life (a change re-binds the port). `closed` is set by the
// main thread when the port is removed or changed, before it asks the workers to close the port's
// connections: Broker::close_endpoint finds connections only, so a socket still waiting for its
// header checks the flag before it becomes one.
struct ProxyPort {
  config::ProxyProtocol settings;
  std::string listener;
  std::uint16_t port = 0;
  std::uint64_t endpoint_id = 0;  // for PortMetrics: a socket that never reaches its transport is counted closed here
  std::atomic<bool> closed{false};
};

class ProxyHeaderReader final : public PollHandler {
 public:
  // Serves the socket with its transport on this worker, the client's address as `peer`, and the
  // client certificate the load balancer verified when the port trusts it (else null).
  using Next = std::function<void(int fd, const sockaddr_in6& peer, std::unique_ptr<authn::PeerCertificate>)>;

  // Takes the accepted socket `fd` of a port with proxyProtocol; calls `next` on this worker once
  // the header is read (or, in Optional mode, once the first bytes show there is none), or closes
  // the socket. Bounded: the header must arrive within the CONNECT timeout, and at most
  // proxy_protocol::kMaxHeaderBytes are looked at. Call on `worker`'s thread.
  static void serve(Broker& broker, std::size_t worker, int fd, std::shared_ptr<const ProxyPort> port, Next next);

  ProxyHeaderReader(Broker& broker, EpollPoller& poller, int fd, std::shared_ptr<const ProxyPort> port, Next next,
                    const sockaddr_in6& real_peer, bool trusted, bool admitted);
  ~ProxyHeaderReader() override;

  void on_events(std::uint32_t events) override;
  void on_shutdown() override;

 private:
  // Closes the connection: logged as event=proxy_protocol_refused with the socket's peer.
  void refuse(const char* reason);
  // Closes the connection quietly (debug): the client left, or the port was closed.
  void drop(const char* why);
  void close_socket();
  // Hands the socket over to its transport with `peer`; `header` when one was read.
  void hand_over(const sockaddr_in6& peer, const proxy_protocol::Header* header);
  // The certificate `header` vouches for, on a port with clientCertificates: Trusted; else null.
  std::unique_ptr<authn::PeerCertificate> client_certificate(const sockaddr_in6& peer,
                                                             const proxy_protocol::Header& header);
  void time_out();

  Broker& broker_;
  EpollPoller& poller_;
  std::shared_ptr<const ProxyPort> port_;
  Next next_;
  sockaddr_in6 real_peer_;
  bool trusted_;
  bool admitted_;      // counted against the connection-rate limit already (an untrusted source)
  bool done_ = false;  // handed over or closed: the descriptor is no longer this object's
};

}  // namespace mqttd
