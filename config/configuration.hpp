// The daemon's YAML resources, read and validated: Broker, BrokerListener, and the cert-manager
// kinds (Issuer, ClusterIssuer, Certificate) whose part the daemon plays itself. Every error
// names the file, line, column and field path. No I/O beyond reading the files.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "authz/policy_spec.hpp"
#include "broker/settings.hpp"

namespace mqttd::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Location {
  std::string file;
  int line = 0;
  int column = 0;
  std::string text() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }
  bool operator==(const Location&) const = default;
};

enum class KeyAlgorithm { Ec256, Ec384, Ec521, Ed25519, Rsa2048, Rsa4096, Rsa8192 };
const char* to_string(KeyAlgorithm a);

struct IssuerRef {
  std::string name;
  std::string kind = "Issuer";  // Issuer or ClusterIssuer
  std::string group = "cert-manager.io";
  bool operator==(const IssuerRef&) const = default;
};

// What a certificate the daemon issues looks like: a BrokerListener port's
// certManagerCertificateSpec, or the spec of a cert-manager Certificate resource.
struct CertificateSpec {
  IssuerRef issuer;
  std::chrono::milliseconds duration = std::chrono::hours(90 * 24);
  // Renew this long before expiry; unset means when a third of the lifetime is left (cert-manager's default).
  std::optional<std::chrono::milliseconds> renew_before;
  std::string secret_name;  // where the certificate is kept; generated from the owner's name when empty
  KeyAlgorithm algorithm = KeyAlgorithm::Ec256;
  bool rotate_key = true;  // rotationPolicy Always (a new key at each renewal) or Never
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::string common_name;
  bool is_ca = false;
  bool operator==(const CertificateSpec&) const = default;
  std::chrono::milliseconds renew_lead() const { return renew_before.value_or(duration / 3); }
};

struct PortTls {
  enum class Mode { Automatic, Manual };
  Mode mode = Mode::Automatic;
  CertificateSpec automatic;  // for Automatic
  std::string manual_secret;  // for Manual: the secret folder's name
  bool operator==(const PortTls&) const = default;
};

enum class PortProtocol { Mqtt, WebSockets };

// An address block (CIDR). IPv4 blocks are kept as IPv4-mapped IPv6 (a.b.c.d/n as
// ::ffff:a.b.c.d/96+n), the form in which a dual-stack socket reports IPv4 peers, so that one
// comparison serves both families.
struct AddressBlock {
  std::array<std::uint8_t, 16> address{};  // host bits zero (checked at load)
  unsigned prefix = 128;                   // over the 128 bits
  std::string text;                        // as written, for messages
  bool contains(const std::array<std::uint8_t, 16>& a) const {
    unsigned whole = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < whole; ++i)
      if (a[i] != address[i]) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return (a[whole] & mask) == address[whole];
  }
  bool operator==(const AddressBlock& o) const { return address == o.address && prefix == o.prefix; }
};

// A port behind a load balancer that sends the HAProxy PROXY protocol header (v1 or v2) before
// the client's bytes (docs/listeners.md, "PROXY protocol"). Ours, not AIO's.
struct ProxyProtocol {
  enum class Mode { Disabled, Optional, Required };
  Mode mode = Mode::Disabled;
  // Only these peers may send a header: anyone else could otherwise claim any address. Never
  // empty when the mode is not Disabled (checked at load: an empty list would trust no one, or
  // worse, be read as everyone).
  std::vector<AddressBlock> trusted_sources;
  // clientCertificates (ours): Trusted makes the client certificate that a TLS-terminating
  // balancer verified (v2 PP2_TYPE_SSL, its CN) the connection's certificate for X509
  // authentication. Only with mode Required, trusted sources, and no tls on the port (checked at
  // load).
  enum class ClientCertificates { Ignored, Trusted };
  ClientCertificates client_certificates = ClientCertificates::Ignored;
  bool enabled() const { return mode != Mode::Disabled; }
  bool trusts_client_certificates() const {
    return mode == Mode::Required && !trusted_sources.empty() && client_certificates == ClientCertificates::Trusted;
  }
  bool trusts(const std::array<std::uint8_t, 16>& address) const {
    for (const auto& block : trusted_sources)
      if (block.contains(address)) return true;
    return false;
  }
  bool operator==(const ProxyProtocol&) const = default;
};

struct ListenerPort {
  std::uint16_t port = 0;
  std::optional<std::uint16_t> node_port;
  PortProtocol protocol = PortProtocol::Mqtt;
  std::string authentication_ref;  // empty: no authentication
  std::string authorization_ref;   // empty: no authorization
  std::optional<PortTls> tls;      // empty: plain
  ProxyProtocol proxy_protocol;
  Location location;  // of the port's entry, for messages
  Location authorization_ref_location;
  // Two ports are the same socket service when they listen and speak the same way; their
  // authentication and authorization may change under connected clients (see PortManager).
  bool same_service(const ListenerPort& o) const {
    return port == o.port && node_port == o.node_port && protocol == o.protocol && tls == o.tls &&
           proxy_protocol == o.proxy_protocol;
  }
};

struct Listener {
  std::string name;
  std::string service_name;  // defaults to the listener's name
  std::string service_type = "ClusterIp";
  std::vector<ListenerPort> ports;
  Location location;
};

struct Issuer {
  std::string name;
  std::string kind;  // Issuer or ClusterIssuer
  bool self_signed = false;
  std::string ca_secret;  // for a CA issuer: the secret holding its tls.crt and tls.key
  bool built_in = false;  // the quickstart issuer the daemon provides when the files name it
  bool operator==(const Issuer&) const = default;
};

// A cert-manager Certificate resource: the daemon issues it into the secret `spec.secret_name`.
struct Certificate {
  std::string name;
  CertificateSpec spec;
  Location location;  // of metadata.name, for messages
  bool operator==(const Certificate& o) const { return name == o.name && spec == o.spec; }
};

// BrokerAuthentication: methods tried in order (§2.2 of the reference).
struct X509AttributeEntry {
  std::string name;     // the entry's key in authorizationAttributes
  std::string subject;  // a DN as written, e.g. "CN = smart-fan, OU = Engineering"
  std::map<std::string, std::string> attributes;
  bool operator==(const X509AttributeEntry&) const = default;
};

// customSettings of a Custom method: the source broker's custom authentication API 0.5.0.
struct CustomAuthSettings {
  std::string endpoint;                                      // https://host[:port][/path]
  std::optional<std::string> ca_folder;                      // caCertConfigMap: PEM CAs for the server's certificate
  std::optional<std::string> client_cert_secret;             // auth.x509.secretRef: a folder with tls.crt, tls.key
  std::vector<std::pair<std::string, std::string>> headers;  // extra HTTP headers, in file order
  bool operator==(const CustomAuthSettings&) const = default;
};

struct AuthenticationMethod {
  enum class Kind { X509, Password, Anonymous, ServiceAccountToken, Custom };
  Kind kind = Kind::Anonymous;
  std::string trusted_client_ca;  // X509: a folder under the secrets folder with PEM CA certificates
  std::vector<X509AttributeEntry> x509_attributes;
  std::string password_secret;         // Password: a folder under the secrets folder holding `passwords`
  std::vector<std::string> audiences;  // ServiceAccountToken: a token must carry one of them
  CustomAuthSettings custom;           // Custom
  // Anonymous on the daemon's internal ports only; never read from YAML. When set, the only client
  // id the method admits (any other is refused with 0x87), and the attributes it gives that client,
  // so that a BrokerAuthorization can name the daemon's own client by attribute.
  std::string internal_client_id;
  std::map<std::string, std::string> internal_attributes;
  bool operator==(const AuthenticationMethod&) const = default;
};

struct Authentication {
  std::string name;
  std::vector<AuthenticationMethod> methods;
  Location location;
  bool operator==(const Authentication& o) const { return name == o.name && methods == o.methods; }
  const AuthenticationMethod* x509() const {
    for (const auto& m : methods)
      if (m.kind == AuthenticationMethod::Kind::X509) return &m;
    return nullptr;
  }
};

struct Authorization {
  std::string name;
  authz::PolicySpec policy;
  Location location;
  bool operator==(const Authorization& o) const { return name == o.name && policy == o.policy; }
};

// spec.diagnostics.selfCheck: an internal client's round trip through the broker (docs/operations.md).
struct SelfCheck {
  bool enabled = true;
  std::chrono::seconds interval{30};  // 30..300
  std::chrono::seconds timeout{15};   // 5..120
  // mqttd's own field: a BrokerAuthorization that decides what the self-check client may do
  // instead of the built-in rule (empty: the built-in rule).
  std::string authorization_ref;
  Location authorization_ref_location;
  bool operator==(const SelfCheck& o) const {
    return enabled == o.enabled && interval == o.interval && timeout == o.timeout &&
           authorization_ref == o.authorization_ref;
  }
};

// What the daemon serves about itself: Prometheus metrics and the health probes share one port.
struct Diagnostics {
  std::uint16_t prometheus_port = 9600;  // 0: no metrics and probe server
  SelfCheck self_check;
  bool operator==(const Diagnostics&) const = default;
};

// What the Broker resource says about the pod that runs the broker. The daemon does not use it
// (a running process cannot resize itself); `mqttd render-k8s` turns it into the workload's
// resources and volumes (docs/operations.md "Kubernetes").
struct Deployment {
  std::string broker_name = "default";  // the Broker's metadata.name
  std::string memory_profile = "Medium";
  bool generate_cpu_limits = true;  // generateResourceLimits.cpu: Enabled is the API's default
  // spec.persistence: maxSize as written (digits and K, M, G, T, P or E) and
  // persistentVolumeClaimSpec as YAML text (empty when absent), for a volume claim template.
  struct Persistence {
    std::string max_size;
    std::string volume_claim_spec;
    bool operator==(const Persistence&) const = default;
  };
  std::optional<Persistence> persistence;
  bool operator==(const Deployment&) const = default;
};

struct Configuration {
  BrokerSettings broker;
  Deployment deployment;
  std::string log_level = "info";
  Diagnostics diagnostics;
  std::vector<Listener> listeners;
  std::vector<Issuer> issuers;
  std::vector<Certificate> certificates;
  std::vector<Authentication> authentications;
  std::vector<Authorization> authorizations;
  std::vector<std::string> files;     // what was read
  std::vector<std::string> warnings;  // valid, but probably not what was meant

  const Issuer* find_issuer(const IssuerRef& ref) const;
  const Authentication* find_authentication(const std::string& name) const;
  const Authorization* find_authorization(const std::string& name) const;
};

// The issuer that AIO deploys for its default listener; the daemon provides it (a self-signed
// root kept under the state folder) when a listener refers to it and the files do not define it.
inline constexpr const char* kQuickstartIssuer = "azure-iot-operations-aio-certificate-issuer";
inline constexpr std::uint16_t kDefaultListenerPort = 18883;

// Reads one file, or every *.yaml / *.yml file of a folder in name order. Several documents
// may share a file (separated by ---). Throws ConfigError.
Configuration load(const std::string& path);
// The same checks on one file's text, named `name` in the messages; `files` stays empty (nothing
// to watch). For tests and fuzzing. Throws ConfigError.
Configuration load_from_string(const std::string& text, const std::string& name = "<string>");

}  // namespace mqttd::config
