// K8S-SAT without the Kubernetes API: tokens verified against the issuer's keys (a JWKS file),
// the account's attributes taken from a file of service accounts. For brokers that cannot reach
// the API server, or should not depend on it. A token cannot be revoked in this mode: it is good
// until its `exp` (Kubernetes' bound tokens live an hour by default).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "authn/remote_methods.hpp"

namespace mqttd::remote_auth {

struct OfflineTokenSettings {
  std::string issuer;     // the tokens' `iss` (the API server's --service-account-issuer)
  std::string jwks_file;  // the issuer's public keys (GET /openid/v1/jwks), re-read when it changes
  // YAML `serviceAccounts: [{namespace, name, annotations}]`; none, or an account not in it: no
  // attributes. Re-read when it changes.
  std::optional<std::string> service_accounts_file;
  std::chrono::seconds leeway{60};                      // clock skew allowed for exp and nbf
  std::chrono::milliseconds file_check_interval{1000};  // how often the files' mtimes are looked at
};

// Throws std::runtime_error naming the file and the problem when a file cannot be read or parsed.
// The validator answers synchronously (`done` runs before validate() returns).
std::shared_ptr<authn::TokenValidator> make_offline_token_validator(OfflineTokenSettings settings);

}  // namespace mqttd::remote_auth
