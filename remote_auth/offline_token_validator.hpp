// K8S-SAT without the Kubernetes API: tokens verified against the issuer's keys (a JWKS file, or
// the JWKS its OpenID Connect discovery document names, see oidc_key_source.hpp), the account's
// attributes taken from a file of service accounts. For brokers that cannot reach the API server,
// or should not depend on it. A token cannot be revoked in this mode: it is good until its `exp`
// (Kubernetes' bound tokens live an hour by default).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "authn/jwt.hpp"
#include "authn/remote_methods.hpp"

namespace mqttd::remote_auth {

// Where the issuer's keys come from. Thread-safe.
class KeySource {
 public:
  using Keys = std::shared_ptr<const authn::jwt::KeySet>;
  virtual ~KeySource() = default;
  // The keys in use; null while there are none yet (the validator then answers Unavailable).
  // Never blocks on the network.
  virtual Keys current() = 0;
  // A token named a kid that no key of current() has: the issuer may have rotated its keys. A
  // source that can look again starts (or joins) a refetch and returns true; `then` later runs,
  // once, on any thread, with the keys after it (the old ones if it failed). False (too soon
  // after the last fetch, or a source that cannot): `then` is never called.
  virtual bool refetch_for_unknown_kid(std::function<void(Keys)> /*then*/) { return false; }
};

// A JWKS file, re-read when it changes (at most once per `check_interval`); a broken new version
// keeps the last good keys. Throws std::runtime_error naming the file when it cannot be read or
// parsed at creation.
std::shared_ptr<KeySource> make_jwks_file_key_source(const std::string& path, std::chrono::milliseconds check_interval);

// The keys of a JWKS document, the skipped ones logged. Throws std::runtime_error.
authn::jwt::KeySet parse_logged_jwks(const std::string& text);

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

// The same with the keys from `keys` (settings.jwks_file is not used). Until it has keys, every
// token is answered Unavailable. A token whose kid no key has waits for the source's refetch when
// it starts one (then `done` runs later, on the source's thread); otherwise the answer is
// synchronous.
std::shared_ptr<authn::TokenValidator> make_offline_token_validator(OfflineTokenSettings settings,
                                                                    std::shared_ptr<KeySource> keys);

}  // namespace mqttd::remote_auth
