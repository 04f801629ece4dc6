// K8S-SAT through the Kubernetes API: the API server reviews the token (TokenReview), then the
// ServiceAccount's annotations give the attributes. Answers are cached: an accepted review until
// the token's expiry (so a deleted account's token stays accepted until then, as in the offline
// mode), a refusal for kRefusedCacheTime (a flood of bad tokens costs one call each per 10 s).
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
  std::size_t max_cache_entries = 10000;
};

// A token without `exp`: its review is trusted for this long.
inline constexpr std::chrono::minutes kDefaultReviewLifetime{10};
inline constexpr std::chrono::seconds kRefusedCacheTime{10};

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
