// Transport for MQTT over plain TCP. Reads wait for readiness and then read straight into the
// connection's read buffer (the worker's shared buffer while no packet is partial); writes
// gather everything queued into one writev per turn of the event loop.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "broker/transport.hpp"

namespace mqttd {

class Broker;
class ClientConnection;

class TcpTransport : public Transport, public std::enable_shared_from_this<TcpTransport> {
 public:
  TcpTransport(Broker& broker, std::size_t worker, boost::asio::ip::tcp::socket socket);
  ~TcpTransport() override;

  // Call on the worker's thread.
  void start();

  void flush() override;
  void close() override;
  void resume_reading() override;
  const std::string& peer() const override { return peer_; }

 private:
  void wait_readable();
  void on_readable();
  void write_pending();
  void wait_writable();
  void finish_close();

  Broker& broker_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<ClientConnection> connection_;
  std::shared_ptr<TcpTransport> self_;  // set from start() until the connection is closed
  std::string peer_;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace mqttd
