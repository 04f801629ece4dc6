// Who may connect to a port and what its clients may do: the port's BrokerAuthentication and
// BrokerAuthorization, ready to use. Replaced as a whole when the configuration changes.
#pragma once

#include <memory>

#include "authn/authenticator.hpp"
#include "authz/policy.hpp"

namespace mqttd {

struct PortSecurity {
  std::shared_ptr<const authn::Authenticator> authenticator;  // null: every client is admitted
  // Applied only together with an authenticator (§3.2: authorization needs authentication).
  std::shared_ptr<const authz::Policy> policy;
};

}  // namespace mqttd
