// A plain-TCP MQTT port: accepts connections and gives each to one broker worker for its whole
// life. Asio stays out of this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace mqttd {

class Broker;

class TcpListener {
 public:
  // Binds `address`:`port` (port 0 picks a free one); accepting runs on `io`.
  TcpListener(boost::asio::io_context& io, Broker& broker, const std::string& address, std::uint16_t port);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  void start();
  void stop();
  std::uint16_t port() const;
  const std::string& address() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mqttd
