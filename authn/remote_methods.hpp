// The authentication methods that ask someone else: a Kubernetes service-account token checked by
// the API server's TokenReview (or offline against the issuer's keys), and a custom
// authentication server (API 0.5.0). The Authenticator talks to them through these interfaces and
// knows no HTTP; their answers come back on another thread, through a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mqttd::authn {

struct RemoteVerdict {
  enum class Kind {
    Accepted,     // relevant and valid
    Refused,      // relevant and invalid: the flow ends
    Unreachable,  // no answer (custom: "not relevant", the next method is tried)
    Unavailable,  // a transient failure that is not a refusal (CONNACK 0x88, AUTH 0x18)
  };
  Kind kind = Kind::Refused;
  std::optional<std::string> username;  // only if the method vouches for one
  // Who the credentials belong to, stable across connections (a service account's
  // "<namespace>/<name>"): part of the identity that owns a persistent session, so that another
  // account resuming the same client id starts fresh. Empty: the method names no one.
  std::string subject;
  std::map<std::string, std::string> attributes;
  std::optional<std::chrono::system_clock::time_point> expires;
  std::optional<std::uint8_t> reason_code;  // a custom server's CONNACK reason for a refusal
  std::string detail;                       // for logs: never a secret
};
using VerdictCallback = std::function<void(RemoteVerdict)>;

// Validates a Kubernetes service-account token (a JWT) for one of `audiences`. Accepted verdicts
// carry the ServiceAccount's `aio-broker-auth/` (or older `aio-mq-broker-auth/`) annotations as
// attributes and the token's expiry. Thread-safe.
class TokenValidator {
 public:
  virtual ~TokenValidator() = default;
  virtual void validate(std::string token, std::vector<std::string> audiences, VerdictCallback done) = 0;
};

// What a custom authentication server is told about a CONNECT.
struct CustomConnectInfo {
  std::optional<std::string> username;
  std::optional<std::string> password;  // raw bytes; sent base64-encoded
  std::string certificate_chain_pem;    // the verified client chain, leaf first; empty if none
};

// One custom authentication endpoint (customSettings). Thread-safe.
class CustomAuthClient {
 public:
  virtual ~CustomAuthClient() = default;
  virtual void check_connect(CustomConnectInfo info, VerdictCallback done) = 0;
  virtual void check_auth(VerdictCallback done) = 0;  // an MQTT 5 AUTH (re-authentication)
};

}  // namespace mqttd::authn
