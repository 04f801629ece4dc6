// The ports that the BrokerListener resources describe, kept in step with the configuration on
// the daemon's main thread: opens added ports, closes removed ones (their clients get DISCONNECT
// 0x8B), re-binds changed ones, and leaves unchanged ones and their clients alone. A TLS port
// serves only once its certificate can be loaded; until then it waits for its secret, and a
// replaced certificate reaches new handshakes while connected clients stay. Who may connect to a
// port is the SecurityRegistry's business; this class owns the sockets and TLS contexts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/configuration.hpp"
#include "listener/security_registry.hpp"
#include "tls/certificate_manager.hpp"

namespace boost::asio {
class io_context;
}

namespace mqttd {

class Broker;

class PortManager {
 public:
  PortManager(boost::asio::io_context& io, Broker& broker, std::string bind_address, tls::Paths paths);
  ~PortManager();
  PortManager(const PortManager&) = delete;
  PortManager& operator=(const PortManager&) = delete;

  // Makes the open ports match `config`. Returns the ports that could not be bound (they are
  // retried at each poll).
  std::vector<std::string> apply(const config::Configuration& config);
  // Loads certificates that appeared or changed, binds the ports that were waiting for one,
  // retries ports that could not be bound, and reloads changed password files. Call about once
  // a second.
  void poll();
  // Stops accepting on every port (the broker closes the connections when it stops).
  void close_all();

 private:
  struct Port;
  void open(Port& port);
  void refresh_certificate(Port& port);
  std::string secret_folder_of(const Port& port) const;
  // Gives the port the security its references name now. When that changes the trusted client
  // CA of a serving TLS port, a new TLS context is built first, and nothing changes if it fails
  // (logged as event=port_security_unchanged; retried by poll() when the files change).
  void update_port_security(Port& port, bool connected_clients);
  // What the port's TLS context is built from: its secret's files and, with `client_ca`, the CA's.
  std::string tls_stamp(const Port& port, const std::optional<std::string>& client_ca) const;

  boost::asio::io_context& io_;
  Broker& broker_;
  std::string bind_address_;
  tls::Paths paths_;
  SecurityRegistry security_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::uint64_t next_endpoint_id_ = 1;
};

}  // namespace mqttd
