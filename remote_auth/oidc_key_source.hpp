// The issuer's keys from its OpenID Connect discovery document: GET
// <issuer>/.well-known/openid-configuration, its `issuer` checked and its https `jwks_uri`
// fetched, on the HTTPS client's thread. The first fetch starts at creation; until it succeeds
// there are no keys (K8S-SAT answers Unavailable) and it is retried, at most once per
// min_refetch_interval, when keys are asked for. Then the keys are fetched again when they are
// older than refresh_interval (noticed when asked for: the current keys are used meanwhile), and
// sooner when a token names a kid no key has (key rotation; at most once per
// min_refetch_interval). A failed refetch keeps the keys and logs a warning.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/https_client.hpp"
#include "remote_auth/offline_token_validator.hpp"

namespace mqttd::remote_auth {

struct OidcKeySourceSettings {
  std::string issuer_url;              // https://...; the discovery document is under it
  std::string expected_issuer;         // the document's `issuer` must equal it (empty: issuer_url)
  std::optional<std::string> ca_file;  // the CA of the issuer's TLS; none: the system's CAs
  std::chrono::milliseconds refresh_interval{std::chrono::minutes(10)};
  std::chrono::milliseconds min_refetch_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds timeout{5000};  // each request
};

using SendFunction = std::function<void(http::Request, std::function<void(http::Response)>)>;

// Throws std::runtime_error when issuer_url is not an https URL. `client` must outlive the source.
std::shared_ptr<KeySource> make_oidc_key_source(http::Client& client, OidcKeySourceSettings settings);
// The same over any sender (tests).
std::shared_ptr<KeySource> make_oidc_key_source_with(SendFunction send, OidcKeySourceSettings settings);

}  // namespace mqttd::remote_auth
