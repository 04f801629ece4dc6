// K8S-SAT through the Kubernetes API: the API server reviews the token (TokenReview), then the
// ServiceAccount's annotations give the attributes. Answers are cached: an accepted review until
// the token's expiry (so a deleted account's token stays accepted until then, as in the offline
// mode), a refusal for kRefusedCacheTime (a flood of bad tokens costs one call each per 10 s),
// refusals apart from accepted reviews so that they never evict them. What cannot be a
// service-account token for the method (not a JWT, no audience of the method, expired) is refused
// without asking the API server; identical reviews in flight share one call; and the reviews in
// flight are bounded (max_in_flight), so that a flood of K8S-SAT CONNECTs cannot take all of the
// shared HTTPS client's requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "authn/remote_methods.hpp"
#include "http/https_client.hpp"

namespace mqttd::remote_auth {

struct KubernetesApiSettings {
  std::string url;         // https://host:port of the API server, no path
  std::string token_file;  // the broker's own token (re-read when the kubelet rotates it)
  std::string ca_file;     // the API server's CA (PEM)
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds file_check_interval{1000};
  // Accepted reviews cached; refusals get a tenth of it besides (VerdictCache).
  std::size_t max_cache_entries = 10000;
  // How long an accepted review answers again without asking (never past the token's `exp`): a
  // token revoked meanwhile (its pod deleted, its ServiceAccount removed) or a ServiceAccount whose
  // annotations changed is seen at the next CONNECT after at most this, as the API server's own
  // webhook token cache does (2 minutes by default).
  std::chrono::milliseconds accepted_cache_time{std::chrono::minutes(2)};
  // Reviews in flight (each a TokenReview, then the ServiceAccount); beyond it a validation
  // answers Unavailable at once (CONNACK 0x88, AUTH 0x18). Below the shared HTTPS client's bound
  // (256), so that custom authentication endpoints keep requests of their own.
  std::size_t max_in_flight = 128;
};

// A token without `exp`: its review is trusted for this long.
inline constexpr std::chrono::minutes kDefaultReviewLifetime{10};
inline constexpr std::chrono::seconds kRefusedCacheTime{10};
// A token whose `exp` is further in the past than this is refused without a review (the clock
// skew allowed, as in the offline mode).
inline constexpr std::chrono::seconds kExpiryLeeway{60};
// Validations of one token waiting on the same review; beyond it, Unavailable at once.
inline constexpr std::size_t kMaxWaitersPerReview = 1024;

// Sends one request and calls back with its answer, on any thread (http::Client::send).
using RequestSender = std::function<void(http::Request, std::function<void(http::Response)>)>;

// Throws std::runtime_error when the token file cannot be read. `client` must outlive the
// validator and every answer it waits for (the validator keeps itself alive until then).
// Defined only when mqttd_http is built (token_review_client.cpp).
std::shared_ptr<authn::TokenValidator> make_token_review_validator(http::Client& client,
                                                                   KubernetesApiSettings settings);
// The same over any sender: the tests' fake API.
std::shared_ptr<authn::TokenValidator> make_token_review_validator_with(RequestSender send,
                                                                        KubernetesApiSettings settings);

}  // namespace mqttd::remote_auth
