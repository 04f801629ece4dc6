// The remote authentication methods' services, from the command line: the HTTPS client (one
// thread for every call to outside services), the K8S-SAT token validator (TokenReview in a
// cluster, or offline against a JWKS file), the factory of custom authentication clients, and a
// way to hash passwords off the HTTP thread.
#pragma once

#include <memory>

#include "authn/authenticator.hpp"
#include "daemon/options.hpp"

namespace mqttd {

class AuthenticationPool;
namespace http {
class Client;
}

struct RemoteAuthentication {
  RemoteAuthentication();
  ~RemoteAuthentication();  // stops the HTTP client first: no answer comes after it
  RemoteAuthentication(RemoteAuthentication&&) noexcept;
  RemoteAuthentication& operator=(RemoteAuthentication&&) noexcept;
  // Cancels what is in flight (its callbacks run with errors) and joins the HTTP thread. Call it
  // while the workers still exist: the callbacks post answers to them.
  void stop();

  std::unique_ptr<http::Client> http;
  authn::RemoteServices services;
};

// Throws std::runtime_error when the options name files that cannot be read (--sat-jwks,
// --sat-service-accounts, the API token): the daemon does not start.
RemoteAuthentication make_remote_authentication(const ServiceAccountTokenOptions& options, AuthenticationPool& pool);

}  // namespace mqttd
