// What the protocol engine needs from the byte stream under it (TCP, TLS, WebSocket). The
// transport lives on the connection's worker thread and owns the ClientConnection.
#pragma once

#include <cstdint>
#include <string>

#include "authn/credentials.hpp"

namespace mqttd {

class Transport {
 public:
  virtual ~Transport() = default;
  // Write what the connection's OutputQueue holds, now or when the socket allows.
  virtual void flush() = 0;
  // Write what is queued, then close the connection.
  virtual void close() = 0;
  // Resume reading after the connection paused it (see ClientConnection::reading_paused).
  virtual void resume_reading() = 0;
  virtual const std::string& peer() const = 0;
  // The client certificate chain verified by the TLS handshake, if there is one.
  virtual const authn::PeerCertificate* peer_certificate() const { return nullptr; }

  // The listening port (one generation of it) that accepted this connection, so that closing or
  // changing that port closes its connections. Every port has one, --listen ports included; 0 is
  // no port (a connection that a test serves by hand).
  std::uint64_t endpoint_id() const { return endpoint_id_; }

 protected:
  explicit Transport(std::uint64_t endpoint_id = 0) : endpoint_id_(endpoint_id) {}

 private:
  std::uint64_t endpoint_id_;
};

}  // namespace mqttd
