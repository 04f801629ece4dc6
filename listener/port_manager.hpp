// The ports that the BrokerListener resources describe, kept in step with the configuration on
// the daemon's main thread: opens added ports, closes removed ones (their clients get DISCONNECT
// 0x8B), re-binds changed ones, and leaves unchanged ones and their clients alone. A TLS port
// serves only once its certificate can be loaded; until then it waits for its secret, and a
// replaced certificate reaches new handshakes while connected clients stay. The ports of the
// command line (--listen) are ports here too: each has an endpoint id, anonymous security
// registered like a configured port's, and is opened by the same code, which alone picks the
// transport (plain TCP, TLS or WebSockets) of an accepted connection. Who may connect to a port is
// the SecurityRegistry's business; this class owns the sockets and TLS contexts.
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
  PortManager(boost::asio::io_context& io, Broker& broker, std::string bind_address, tls::Paths paths,
              authn::RemoteServices remote_authentication = {});
  ~PortManager();
  PortManager(const PortManager&) = delete;
  PortManager& operator=(const PortManager&) = delete;

  // A plain MQTT port of the command line (--listen `address`:`port`), for anonymous clients: it
  // stays open whatever the configuration says, and opens at the next apply(), after the
  // configured ports. With `optional_without_ipv6`, a host without IPv6 skips it (logged as
  // event=ipv6_unavailable) instead of failing: the embedded default's [::1]:1883, which such a
  // host cannot have, while 127.0.0.1:1883 serves.
  void add_command_line_port(std::string address, std::uint16_t port, bool optional_without_ipv6);
  // A plain MQTT port on 127.0.0.1 with a port number the system picks, for the daemon's own
  // clients (the self-check): named `listener`, with `security` installed as given (the
  // configuration never replaces it), left out of port_states() (readiness must not depend on the
  // port that checks it), kept through reloads like the --listen ports, and opened by the next
  // apply() before them. Failing to bind it is not fatal: it is retried at each poll. With an
  // `authorization_ref`, the policy of that BrokerAuthorization (as each apply() finds it)
  // replaces `security`'s own.
  void add_internal_port(std::string listener, std::shared_ptr<const PortSecurity> security,
                         std::string authorization_ref = {});
  // The port number of the internal port `listener`; 0 while it is not open.
  std::uint16_t internal_port(const std::string& listener) const;
  // Makes the open ports match `config`, then opens the command-line ports not open yet. Returns
  // the ports that could not be bound (they are retried at each poll).
  std::vector<std::string> apply(const config::Configuration& config);
  // Loads certificates that appeared or changed, binds the ports that were waiting for one,
  // retries ports that could not be bound, and reloads changed password files. Call about once
  // a second.
  void poll();
  // What each port is doing now, for /readyz and /metrics (main thread).
  struct PortState {
    std::string listener;
    std::uint16_t port = 0;
    bool open = false;             // accepting
    bool awaiting_secret = false;  // a TLS port whose certificate does not exist yet
  };
  std::vector<PortState> port_states() const;
  // Stops accepting on every port (the broker closes the connections when it stops).
  void close_all();

 private:
  struct Port;
  // A new port with the next endpoint id and the security its references name.
  std::unique_ptr<Port> make_port(std::string listener, const config::ListenerPort& spec, std::string address);
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
