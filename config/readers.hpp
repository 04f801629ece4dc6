// One reader per resource kind. Internal to config/.
#pragma once

#include "config/yaml_support.hpp"

namespace mqttd::config {

void read_broker_spec(const Context& ctx, const YAML::Node& spec, Configuration& out);
// `warnings` receives the fields that are valid but do nothing in mqttd (see warn()).
Listener read_listener(const Context& ctx, const std::string& name, const YAML::Node& spec, const Location& where,
                       std::vector<std::string>& warnings);
Issuer read_issuer(const Context& ctx, const std::string& name, const std::string& kind, const YAML::Node& spec,
                   std::vector<std::string>& warnings);
Certificate read_certificate(const Context& ctx, const std::string& name, const YAML::Node& spec,
                             std::vector<std::string>& warnings);
// A BrokerListener port's certManagerCertificateSpec.
CertificateSpec read_certificate_spec(const Context& ctx, const YAML::Node& node);
IssuerRef read_issuer_ref(const Context& ctx, const YAML::Node& node);
Authentication read_authentication(const Context& ctx, const std::string& name, const YAML::Node& spec,
                                   const Location& where);
Authorization read_authorization(const Context& ctx, const std::string& name, const YAML::Node& spec,
                                 const Location& where);

}  // namespace mqttd::config
