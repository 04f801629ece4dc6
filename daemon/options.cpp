#include "daemon/options.hpp"

#include <cstdlib>
#include <iostream>

namespace mqttd {
namespace {

constexpr const char* kUsage = R"(usage: mqttd [options]
       mqttd passwd FILE USERNAME [--attribute NAME=VALUE]...
       mqttd render-k8s --config PATH [--image NAME] [--namespace NS]

  --config PATH         YAML resources: a file, or a folder of *.yaml files; reloaded when
                        they change and on SIGHUP
  --check-config PATH   validate PATH and exit (0 valid, 1 invalid)
  --secrets-dir DIR     mounted secrets, one folder per secret (default /etc/mqttd/secrets)
  --state-dir DIR       what the broker writes: issued certificates (default /var/lib/mqttd)
  --bind-address ADDR   address the configured ports listen on (default ::, every IPv6 and IPv4
                        address; 0.0.0.0 on a host without IPv6)
  --listen ADDR:PORT    an extra plain MQTT port (repeatable; IPv6 as [::1]:1883); default
                        127.0.0.1:1883 and [::1]:1883 when no --config and no --listen is given
  --workers N           worker threads (default: one per core)
  --log-level LEVEL     trace, debug, info, warn or error
  --metrics-port PORT   the diagnostics port (/metrics, /healthz, /readyz) on --bind-address;
                        overrides diagnostics.metrics.prometheusPort (default 9600; 0: none)
  --shutdown-delay S    on SIGTERM, /readyz fails at once but the ports close S seconds later
                        (default 0), while Kubernetes takes the pod out of its Service
  --shutdown-timeout S  then at most S seconds to publish wills and drain clients (default 25)
  --log-format FORMAT   text (default: time level=... event=... key=value) or json (one JSON
                        object per line: time, level, event, msg)
  --help                this text

Service-account tokens (K8S-SAT), for a ServiceAccountToken authentication method:
  --k8s-api-url URL     the Kubernetes API that reviews them (default, in a pod:
                        https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
  --k8s-token-file PATH the broker's own token for that API (default
                        /var/run/secrets/kubernetes.io/serviceaccount/token, re-read when it changes)
  --k8s-ca-file PATH    the CA of that API (default .../serviceaccount/ca.crt)
  --sat-jwks FILE       instead, verify tokens offline against the issuer's keys (a JWKS file,
                        re-read when it changes; RS256 and ES256); needs --sat-issuer
  --sat-oidc-issuer URL or verify them offline against the keys the issuer publishes: its
                        https URL/.well-known/openid-configuration names the JWKS (fetched at
                        start, every 10 minutes, and when a token names an unknown key); until
                        it arrives K8S-SAT clients get 0x88. Excludes --sat-jwks
  --sat-oidc-ca FILE    the CA of the issuer's TLS (default: the system's CAs)
  --sat-issuer ISSUER   the tokens' expected "iss" (kubectl get --raw /.well-known/openid-configuration);
                        with --sat-oidc-issuer, default that URL; the document's issuer must equal it
  --sat-service-accounts FILE
                        offline (either way): the ServiceAccounts' annotations (their aio-broker-auth/
                        attributes), as YAML: serviceAccounts: [{namespace, name, annotations}]

mqttd passwd adds or replaces USERNAME in the password file FILE (a Password method's
<secrets-dir>/<secretRef>/passwords) with a salted scrypt hash of the password read from
standard input (asked twice on a terminal); attributes go to authorization as the principal's.

mqttd render-k8s prints the Kubernetes objects that run mqttd on PATH (mqttd render-k8s --help).
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "mqttd: " << message << "\n\n" << kUsage;
  std::exit(2);
}

std::pair<std::string, std::uint16_t> parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) usage_error("--listen needs ADDR:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  try {
    port = std::stoul(text.substr(colon + 1));
  } catch (...) {
    usage_error("invalid port in '" + text + "'");
  }
  if (port > 65535) usage_error("port out of range in '" + text + "'");
  return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--config") {
      o.config = value();
    } else if (arg == "--check-config") {
      o.config = value();
      o.check_only = true;
    } else if (arg == "--listen") {
      o.listen.push_back(parse_endpoint(value()));
    } else if (arg == "--secrets-dir") {
      o.secrets_dir = value();
    } else if (arg == "--state-dir") {
      o.state_dir = value();
    } else if (arg == "--bind-address") {
      o.bind_address = value();
    } else if (arg == "--workers") {
      try {
        o.workers = static_cast<unsigned>(std::stoul(value()));
      } catch (...) {
        usage_error("--workers needs a number");
      }
    } else if (arg == "--metrics-port") {
      auto text = value();
      try {
        auto n = std::stoul(text);
        if (n > 65535) throw std::out_of_range("port");
        o.metrics_port = static_cast<std::uint16_t>(n);
      } catch (...) {
        usage_error("--metrics-port needs a port number (0 turns the diagnostics port off), got '" + text + "'");
      }
    } else if (arg == "--shutdown-timeout") {
      auto text = value();
      try {
        auto n = std::stoul(text);
        if (n < 1 || n > 3600) throw std::out_of_range("timeout");
        o.shutdown_timeout_seconds = static_cast<unsigned>(n);
      } catch (...) {
        usage_error("--shutdown-timeout needs seconds from 1 to 3600, got '" + text + "'");
      }
    } else if (arg == "--shutdown-delay") {
      auto text = value();
      try {
        auto n = std::stoul(text);
        if (n > 600) throw std::out_of_range("delay");
        o.shutdown_delay_seconds = static_cast<unsigned>(n);
      } catch (...) {
        usage_error("--shutdown-delay needs seconds from 0 to 600, got '" + text + "'");
      }
    } else if (arg == "--log-level") {
      o.log_level = value();
      // spdlog reads an unknown name as "off": a typo would silence the daemon.
      if (*o.log_level != "trace" && *o.log_level != "debug" && *o.log_level != "info" && *o.log_level != "warn" &&
          *o.log_level != "error")
        usage_error("--log-level must be trace, debug, info, warn or error, got '" + *o.log_level + "'");
    } else if (arg == "--log-format") {
      auto format = value();
      if (format != "text" && format != "json") usage_error("--log-format must be text or json, got '" + format + "'");
      o.json_logs = format == "json";
    } else if (arg == "--k8s-api-url") {
      o.service_account_tokens.api_url = value();
      if (!o.service_account_tokens.api_url->starts_with("https://"))
        usage_error("--k8s-api-url must be an https:// URL");
    } else if (arg == "--k8s-token-file") {
      o.service_account_tokens.api_token_file = value();
    } else if (arg == "--k8s-ca-file") {
      o.service_account_tokens.api_ca_file = value();
    } else if (arg == "--sat-jwks") {
      o.service_account_tokens.jwks_file = value();
    } else if (arg == "--sat-oidc-issuer") {
      o.service_account_tokens.oidc_issuer = value();
      if (!o.service_account_tokens.oidc_issuer->starts_with("https://") ||
          o.service_account_tokens.oidc_issuer->size() == 8)
        usage_error("--sat-oidc-issuer must be an https:// URL");
    } else if (arg == "--sat-oidc-ca") {
      o.service_account_tokens.oidc_ca_file = value();
    } else if (arg == "--sat-issuer") {
      o.service_account_tokens.issuer = value();
    } else if (arg == "--sat-service-accounts") {
      o.service_account_tokens.service_accounts_file = value();
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  const auto& sat = o.service_account_tokens;
  if (sat.jwks_file && sat.oidc_issuer)
    usage_error("--sat-jwks and --sat-oidc-issuer exclude each other (the keys come from one or the other)");
  if (sat.jwks_file && !sat.issuer)
    usage_error("--sat-jwks and --sat-issuer go together (offline token verification needs both)");
  if (sat.issuer && !sat.jwks_file && !sat.oidc_issuer)
    usage_error("--sat-issuer is for offline verification (--sat-jwks or --sat-oidc-issuer)");
  if (sat.oidc_ca_file && !sat.oidc_issuer) usage_error("--sat-oidc-ca goes with --sat-oidc-issuer");
  bool offline = sat.jwks_file || sat.oidc_issuer;
  if (sat.service_accounts_file && !offline)
    usage_error(
        "--sat-service-accounts is for offline verification (--sat-jwks or --sat-oidc-issuer); in a "
        "cluster the ServiceAccounts' annotations are read from the API");
  if (offline && sat.api_url)
    usage_error(
        "offline verification (--sat-jwks, --sat-oidc-issuer) and --k8s-api-url (TokenReview) exclude each other");
  return o;
}

}  // namespace mqttd
