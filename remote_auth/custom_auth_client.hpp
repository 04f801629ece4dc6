// The client of one custom authentication server (a Custom method's customSettings), on the
// shared HTTPS client: it asks the server about CONNECTs and re-authentications, bounded so that
// a dead, slow or flooded server never stalls the broker's CONNECTs.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "authn/remote_methods.hpp"
#include "config/configuration.hpp"
#include "http/https_client.hpp"

namespace mqttd::remote_auth {

struct CustomAuthLimits {
  // Requests in flight to this endpoint; beyond it a check answers Unavailable at once (the
  // broker's own overload: CONNACK 0x88, AUTH 0x18; not the server's failure, so neither a
  // fall-through to the next method nor a count in the circuit breaker). So is a request the
  // shared HTTP client refuses on the spot (its own bound, stopped): http::Response::Failure::Local.
  std::size_t max_in_flight = 64;
  // One request, connect to last byte. The source broker's clients usually wait 10-30 s for a
  // CONNACK; 5 s leaves room for the next method after a timeout.
  std::chrono::milliseconds timeout{5000};
  std::size_t max_response_bytes = 64 * 1024;
  // Unreachable answers in a row (transport errors, timeouts, 5xx) that open the circuit breaker,
  // and how long it stays open before one probe request is let through. While it is open, checks
  // answer Unreachable at once.
  unsigned failures_to_open = 5;
  std::chrono::milliseconds cooldown{10000};
};

// `client` outlives the returned object (and the requests it has in flight: stop it first).
// Throws std::runtime_error, naming the path, when the endpoint is not a valid https URL, a
// header is not valid HTTP, the CA folder (`secrets_dir`/`ca_folder`) or the client certificate
// (`secrets_dir`/`client_cert_secret`/tls.crt and tls.key) is missing.
std::shared_ptr<authn::CustomAuthClient> make_custom_auth_client(http::Client& client,
                                                                 const config::CustomAuthSettings& settings,
                                                                 const std::string& secrets_dir,
                                                                 CustomAuthLimits limits = {});

}  // namespace mqttd::remote_auth
