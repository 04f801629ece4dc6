// The service accounts' annotations for the offline K8S-SAT mode, where the broker does not ask
// the Kubernetes API: a YAML file
//   serviceAccounts:
//     - {namespace: ns, name: sa, annotations: {aio-broker-auth/group: authz-sat}}
// reduced to each account's attributes (authn::attributes_from_annotations).
#pragma once

#include <map>
#include <string>
#include <utility>

namespace mqttd::remote_auth {

// (namespace, name) -> attributes.
using ServiceAccountAttributes = std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>>;

// Throws std::runtime_error naming the problem (not YAML, a missing name, an account twice...).
ServiceAccountAttributes parse_service_accounts(const std::string& yaml_text);

}  // namespace mqttd::remote_auth
