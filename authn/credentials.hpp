// What a client presents to be authenticated: its CONNECT fields and, on a TLS port, the
// certificate chain verified during the handshake. Plain data, filled by the broker and the
// transports.
#pragma once

#include <chrono>
#include <memory>
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
  std::string chain_pem;                            // the verified chain, leaf first, as PEM
};

struct Credentials {
  std::string_view client_id;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
  std::optional<std::string_view> authentication_method;  // MQTT 5 enhanced authentication
  std::optional<std::string_view> authentication_data;
  const PeerCertificate* certificate = nullptr;
};

// The same, owning its bytes: for a check that outlives the packet it came from (a password
// hashed on another thread, a question to a remote server).
struct OwnedCredentials {
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> authentication_method;
  std::optional<std::string> authentication_data;
  std::shared_ptr<const PeerCertificate> certificate;

  Credentials view() const {
    Credentials c;
    c.client_id = client_id;
    if (username) c.username = *username;
    if (password) c.password = *password;
    if (authentication_method) c.authentication_method = *authentication_method;
    if (authentication_data) c.authentication_data = *authentication_data;
    c.certificate = certificate.get();
    return c;
  }
};

}  // namespace mqttd::authn
