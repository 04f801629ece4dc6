// The daemon's command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqttd {

// How ServiceAccountToken (K8S-SAT) tokens are checked: by the Kubernetes API's TokenReview (in a
// pod: from KUBERNETES_SERVICE_HOST/PORT and the pod's service-account files, or the flags), or
// offline against the issuer's keys (--sat-jwks and --sat-issuer, or --sat-oidc-issuer).
struct ServiceAccountTokenOptions {
  std::optional<std::string> api_url;  // https://host:port of the Kubernetes API
  std::string api_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string api_ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::optional<std::string> issuer;
  std::optional<std::string> jwks_file;
  std::optional<std::string> oidc_issuer;  // https URL: keys from its discovery document
  std::optional<std::string> oidc_ca_file;
  std::optional<std::string> service_accounts_file;
};

struct Options {
  std::optional<std::string> config;
  std::vector<std::pair<std::string, std::uint16_t>> listen;
  std::optional<unsigned> workers;
  std::optional<std::string> log_level;
  bool json_logs = false;
  std::string secrets_dir = "/etc/mqttd/secrets";
  std::string state_dir = "/var/lib/mqttd";
  std::string bind_address = "::";  // every address, IPv6 and IPv4
  bool check_only = false;
  std::optional<std::uint16_t> metrics_port;
  unsigned shutdown_timeout_seconds = 25;  // under Kubernetes' default grace period of 30 s
  unsigned shutdown_delay_seconds = 0;
  ServiceAccountTokenOptions service_account_tokens;
};

// Parses argv; prints the usage and exits 2 on a mistake, 0 on --help.
Options parse_options(int argc, char** argv);

}  // namespace mqttd
