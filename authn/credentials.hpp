// What a client presents to be authenticated: its CONNECT fields and, on a TLS port, the
// certificate chain verified during the handshake. Plain data, filled by the broker and the
// transports.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mqttd::authn {

// A client certificate chain that the TLS handshake verified against the port's trusted CAs.
struct PeerCertificate {
  // Each certificate's subject as OpenSSL prints it (RFC 2253), leaf first, then up the chain.
  std::vector<std::string> subjects;
  std::string common_name;                          // of the leaf
  std::chrono::system_clock::time_point not_after;  // of the leaf
};

struct Credentials {
  std::string_view client_id;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
  std::optional<std::string_view> authentication_method;  // MQTT 5 enhanced authentication
  const PeerCertificate* certificate = nullptr;
};

}  // namespace mqttd::authn
