// One listening socket: accepts connections on the daemon's main thread, counts each against
// the broker's connection limit, picks the worker that will own it, and hands the socket over.
// Asio stays out of this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}
namespace boost::system {
class error_code;
}

namespace mqttd {

class Broker;

// Whether binding failed because the host (or pod) has no IPv6 at all, rather than because the
// address is taken or wrong.
bool ipv6_unavailable(const boost::system::error_code& ec);

class Acceptor {
 public:
  // Called on the accepting thread with the worker chosen for the connection and its socket,
  // which is non-blocking and now belongs to the callee.
  using Handoff = std::function<void(std::size_t worker, int fd)>;

  // Binds `address`:`port` (port 0 picks a free one); accepting runs on `io`. An IPv6 address
  // also accepts IPv4 clients; "::" on a host without IPv6 falls back to 0.0.0.0 (logged), and
  // address() says which. Throws boost::system::system_error when the port cannot be bound.
  Acceptor(boost::asio::io_context& io, Broker& broker, const std::string& address, std::uint16_t port,
           Handoff handoff);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // The port's handoff applies the per-address connection-rate limit itself: a port with the
  // PROXY protocol, where the client's address is known only once its header is read (counting
  // the load balancer's address would throttle every client behind it as one). Before start().
  void defer_address_admission();
  void start();
  void stop();
  std::uint16_t port() const;
  const std::string& address() const;

 private:
  void listen_on(const std::string& address, std::uint16_t port, boost::system::error_code& ec);
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mqttd
