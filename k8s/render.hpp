// `mqttd render-k8s`: the Kubernetes objects that run the daemon on the configuration it reads
// (docs/operations.md "Kubernetes"). Pure: no I/O, the caller reads the files.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "config/configuration.hpp"

namespace mqttd::k8s {

struct RenderOptions {
  std::string image = "mqttd:latest";
  std::string namespace_name = "azure-iot-operations";
};

// One configuration file as the daemon read it: `name` is its ConfigMap key (the file's name,
// without its folder), `content` its bytes.
struct InputFile {
  std::string name;
  std::string content;
};

// A valid configuration that Kubernetes cannot carry (a Service name with a dot, a ConfigMap
// over 1 MiB...). The message names the file and field as configuration errors do when it can.
struct RenderError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Rendered {
  std::string yaml;                   // documents separated by ---
  std::vector<std::string> warnings;  // valid, but probably not what was meant
};

// Where the pod mounts things; the daemon's defaults (--secrets-dir, --state-dir) match.
inline constexpr const char* kConfigMountPath = "/etc/mqttd/config";
inline constexpr const char* kSecretsMountPath = "/etc/mqttd/secrets";
inline constexpr const char* kStateMountPath = "/var/lib/mqttd";
inline constexpr int kRunAsUser = 10001;  // the Dockerfile's mqttd user

// ConfigMap, one Service per BrokerListener, the metrics Service, with a ServiceAccountToken
// method the ServiceAccount, ClusterRole and ClusterRoleBinding of the broker's API access, and a
// Deployment, or a StatefulSet (with its headless Service) when the Broker asks for persistence.
// Throws RenderError.
Rendered render(const config::Configuration& config, const RenderOptions& options,
                const std::vector<InputFile>& inputs);

}  // namespace mqttd::k8s
