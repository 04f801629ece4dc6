// The object builders of render(), one file each. Internal to k8s/.
#pragma once

#include <string>
#include <vector>

#include "k8s/render.hpp"
#include "k8s/yaml_tree.hpp"

namespace mqttd::k8s {

struct Scope {
  const config::Configuration& config;
  const RenderOptions& options;
  std::string instance;  // app.kubernetes.io/instance: the Broker's name
  std::string base;      // mqttd-<instance>: the workload's name and its objects' prefix
  std::vector<std::string>& warnings;

  Tree labels() const;  // the pod's labels, which every Service selects
  Tree metadata(const std::string& name) const;
  bool persistent() const { return config.deployment.persistence.has_value(); }
  std::string config_map_name() const { return base + "-config"; }
  std::string metrics_service_name() const { return base + "-metrics"; }
  std::string headless_service_name() const { return base + "-pods"; }
  // Whether the daemon calls the Kubernetes API: a ServiceAccountToken method reviews tokens
  // (TokenReview) and reads the clients' ServiceAccounts.
  bool reviews_tokens() const;
  std::string service_account_name() const { return base; }
  // The ClusterRole and its ClusterRoleBinding are cluster-scoped: the namespace keeps two
  // installs apart. A namespace has no dot, so <base>.<namespace> names one install only.
  std::string cluster_role_name() const { return base + "." + options.namespace_name; }
};

// A port's name in the pod and in its Service: mqtt-1883, mqtts-8883, ws-9001, wss-9443.
std::string port_name(const config::ListenerPort& port);

// Kubernetes' name rules, for names that come from the configuration.
bool is_dns_label(const std::string& name);       // RFC 1123 label: Pods' volumes
bool is_service_name(const std::string& name);    // RFC 1035 label: a letter first
bool is_config_map_key(const std::string& name);  // [-._a-zA-Z0-9]+

Tree config_map(const Scope& scope, const std::vector<InputFile>& inputs);
// The listeners' Services, the metrics Service and, for a StatefulSet, its headless Service.
std::vector<Tree> services(const Scope& scope);
// The ServiceAccount, ClusterRole and ClusterRoleBinding of a broker that reviews tokens; none
// otherwise.
std::vector<Tree> rbac(const Scope& scope);
// The Deployment, or the StatefulSet when persistence is configured.
Tree workload(const Scope& scope);

}  // namespace mqttd::k8s
