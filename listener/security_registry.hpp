// Who may connect to each port and what its clients may do: the authenticators of the
// BrokerAuthentication resources (rebuilt when their password files change), the compiled
// policies of the BrokerAuthorization resources, and the PortSecurity registered with the broker
// under each port's endpoint id. Kept apart from the PortManager, which owns sockets and TLS
// contexts: a port asks for the security its references name and registers it here. Main
// thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "authn/authenticator.hpp"
#include "authz/policy.hpp"
#include "config/configuration.hpp"

namespace mqttd {

class Broker;
struct PortSecurity;

class SecurityRegistry {
 public:
  // Password files are read under `secrets_dir`; `remote` serves the ServiceAccountToken and
  // Custom methods.
  SecurityRegistry(Broker& broker, std::string secrets_dir, authn::RemoteServices remote = {});
  SecurityRegistry(const SecurityRegistry&) = delete;
  SecurityRegistry& operator=(const SecurityRegistry&) = delete;

  // Builds what each BrokerAuthentication and BrokerAuthorization of `config` needs, reusing
  // what did not change (an unchanged resource keeps its authenticator, and with it the
  // verified-password cache; an unchanged policy is not compiled again).
  void apply(const config::Configuration& config);
  // Rebuilds the authenticators whose password files changed (same resource, new authenticator)
  // and returns their names: the ports that use them take their new security.
  std::vector<std::string> poll();

  // The security that `port`'s references name now; null for a port with neither (anonymous
  // clients, no authorization), as a port of the command line is.
  std::shared_ptr<const PortSecurity> resolve(const config::ListenerPort& port) const;
  // `base` (an internal port's own authenticator) with the policy of the BrokerAuthorization
  // `authorization_ref` instead of base's policy. When no such resource exists (a reload removed
  // it) the policy refuses everything, and `found` says so: fail closed.
  std::shared_ptr<const PortSecurity> with_policy(const PortSecurity& base, const std::string& authorization_ref,
                                                  bool& found) const;
  // `base`'s authenticator with a policy that refuses everything, CONNECT included.
  std::shared_ptr<const PortSecurity> refusing_all(const PortSecurity& base) const;
  // Registers `security` for the port `endpoint_id` with the broker when it differs from the one
  // registered (authenticator or policy). With `connected_clients`, the broker then re-binds the
  // principals of that port's connections and disconnects those whose permissions changed.
  void install(std::uint64_t endpoint_id, std::shared_ptr<const PortSecurity> security, bool connected_clients);
  // The port is gone: the broker forgets its security.
  void remove(std::uint64_t endpoint_id);

 private:
  struct AuthenticatorEntry {
    std::shared_ptr<const authn::Authenticator> authenticator;
    std::string files_stamp;
    std::vector<std::string> reported;  // the problems last logged, so that each is logged once
  };
  static void report_problems(const std::string& name, AuthenticatorEntry& entry);

  Broker& broker_;
  std::string secrets_dir_;
  authn::RemoteServices remote_;
  std::map<std::string, AuthenticatorEntry> authenticators_;
  std::map<std::string, std::pair<config::Authorization, std::shared_ptr<const authz::Policy>>> policies_;
  std::map<std::uint64_t, std::shared_ptr<const PortSecurity>> installed_;
  mutable std::shared_ptr<const authz::Policy> refuse_all_;  // made on first use
};

}  // namespace mqttd
