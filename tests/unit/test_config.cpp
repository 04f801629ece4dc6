// The YAML readers on their own: durations, names, and a whole listener document.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "config/configuration.hpp"
#include "config/yaml_support.hpp"

using namespace mqttd::config;

namespace {

YAML::Node scalar(const std::string& text) { return YAML::Load(text); }

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/mqttd-unit-XXXXXX.yaml";
  int fd = ::mkstemps(path, 5);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("Go durations") {
  Context ctx("f", "x");
  CHECK(duration(ctx, scalar("90s")) == std::chrono::seconds(90));
  CHECK(duration(ctx, scalar("2160h")) == std::chrono::hours(2160));
  CHECK(duration(ctx, scalar("1h30m")) == std::chrono::minutes(90));
  CHECK(duration(ctx, scalar("500ms")) == std::chrono::milliseconds(500));
  CHECK(duration(ctx, scalar("1.5h")) == std::chrono::minutes(90));
  for (auto bad : {"90d", "h", "", "10", "-5s", "1h 30m"}) {
    INFO(bad);
    CHECK_THROWS_AS(duration(ctx, scalar(std::string("'") + bad + "'")), ConfigError);
  }
}

TEST_CASE("object names keep paths out") {
  Context ctx("f", "x");
  CHECK(object_name(ctx, scalar("server-cert-secret")) == "server-cert-secret");
  CHECK(object_name(ctx, scalar("a.b-c")) == "a.b-c");
  for (auto bad : {"../etc", "a/b", "UPPER", "-a", "a-", "a..b", ".", "a_b", ""}) {
    INFO(bad);
    CHECK_THROWS_AS(object_name(ctx, scalar(std::string("'") + bad + "'")), ConfigError);
  }
  CHECK_THROWS_WITH(object_name(ctx, scalar("'../x'")), Catch::Contains("f:1:1: x: '../x' is not a valid name"));
}

TEST_CASE("a listener document with every field") {
  auto path = write_temp(R"(apiVersion: mqttbroker.iotoperations.azure.com/v1
kind: BrokerListener
metadata: {name: edge}
spec:
  serviceType: NodePort
  ports:
  - port: 1884
    nodePort: 31884
  - port: 8884
    protocol: WebSockets
    tls:
      mode: Automatic
      certManagerCertificateSpec:
        issuerRef: {name: ca, kind: ClusterIssuer, group: cert-manager.io}
        duration: 240h
        renewBefore: 24h
        secretName: edge-cert
        privateKey: {algorithm: Ed25519, rotationPolicy: Never}
        san: {dns: [edge.example], ip: [10.0.0.1]}
  - port: 8885
    tls: {mode: Manual, manual: {secretRef: server-cert-secret}}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: ca}
spec: {ca: {secretName: root-ca}}
)");
  auto config = load(path);
  std::remove(path.c_str());
  REQUIRE(config.listeners.size() == 1);
  const auto& l = config.listeners[0];
  CHECK(l.name == "edge");
  CHECK(l.service_name == "edge");
  CHECK(l.service_type == "NodePort");
  REQUIRE(l.ports.size() == 3);
  CHECK(l.ports[0].node_port == 31884);
  CHECK(!l.ports[0].tls);
  CHECK(l.ports[0].location.line == 7);
  const auto& automatic = l.ports[1];
  CHECK(automatic.protocol == PortProtocol::WebSockets);
  REQUIRE(automatic.tls);
  CHECK(automatic.tls->mode == PortTls::Mode::Automatic);
  const auto& spec = automatic.tls->automatic;
  CHECK(spec.issuer == IssuerRef{"ca", "ClusterIssuer", "cert-manager.io"});
  CHECK(spec.duration == std::chrono::hours(240));
  CHECK(spec.renew_lead() == std::chrono::hours(24));
  CHECK(spec.secret_name == "edge-cert");
  CHECK(spec.algorithm == KeyAlgorithm::Ed25519);
  CHECK_FALSE(spec.rotate_key);
  CHECK(spec.dns_names == std::vector<std::string>{"edge.example"});
  CHECK(spec.ip_addresses == std::vector<std::string>{"10.0.0.1"});
  CHECK(l.ports[2].tls->manual_secret == "server-cert-secret");
  REQUIRE(config.issuers.size() == 1);
  CHECK(config.issuers[0].ca_secret == "root-ca");
  // Same service whatever the location; a changed protocol is another service.
  auto moved = l.ports[1];
  moved.location.line = 99;
  CHECK(moved.same_service(l.ports[1]));
  moved.protocol = PortProtocol::Mqtt;
  CHECK_FALSE(moved.same_service(l.ports[1]));
}

TEST_CASE("the default renewal is at a third of the lifetime left") {
  CertificateSpec spec;
  CHECK(spec.duration == std::chrono::hours(90 * 24));
  CHECK(spec.renew_lead() == std::chrono::hours(30 * 24));
}

// Found by fuzz_config (tests/fuzz/corpus/fuzz_config/crash-yaml-loadall-loop): yaml-cpp 0.7's
// LoadAll never returns on these texts (jbeder/yaml-cpp#1040); the loader refuses them instead.
TEST_CASE("texts on which yaml-cpp's LoadAll would loop forever are refused") {
  for (auto text : {",", "!pima, the\n# b\n"}) {
    INFO(text);
    CHECK_THROWS_WITH(load_from_string(text, "f.yaml"), Catch::Contains("invalid YAML"));
  }
  auto path = write_temp(",\n");
  CHECK_THROWS_WITH(load(path), Catch::Contains("invalid YAML"));
  std::remove(path.c_str());
  // Several documents, empty ones included, still load.
  CHECK_NOTHROW(load_from_string("---\n---\n# only a comment\n---\n"));
}

// Found by fuzz_config (tests/fuzz/corpus/fuzz_config/crash-complex-key): a mapping key that is
// itself a mapping made yaml-cpp throw BadConversion, which is not a ConfigError.
TEST_CASE("a key that is a mapping or a list is a ConfigError") {
  const std::string head =
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n";
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  cardinality:\n    ? frontend: {workers: 1}\n    : x\n"),
                    Catch::Contains("expected a field name"));
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  ? [a, b]\n  : x\n"), Catch::Contains("expected a field name"));
}

TEST_CASE("the state store's settings: quotas from the memory profile or spec.advanced.stateStore; persistence") {
  const std::string head =
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n";
  auto defaults = load_from_string(head + "spec: {}\n");
  CHECK(defaults.broker.state_store_max_keys == 1'000'000);
  CHECK(defaults.broker.state_store_max_bytes == 256ull << 20);
  CHECK_FALSE(defaults.broker.state_store_persistence.configured);
  CHECK(defaults.warnings.empty());

  auto tiny = load_from_string(head + "spec:\n  memoryProfile: Tiny\n");
  CHECK(tiny.broker.state_store_max_keys == 10'000);
  CHECK(tiny.broker.state_store_max_bytes == 16ull << 20);

  auto ours =
      load_from_string(head +
                       "spec:\n  memoryProfile: High\n  advanced:\n    stateStore: {maxKeys: 5, maxBytes: 4096, "
                       "maxWatchedKeysPerClient: 7}\n");
  CHECK(ours.broker.state_store_max_keys == 5);
  CHECK(ours.broker.state_store_max_bytes == 4096);
  CHECK(ours.broker.state_store_max_watched_keys == 7);
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  advanced:\n    stateStore: {maxKeys: 0}\n", "b.yaml"),
                    Catch::Contains("b.yaml:6") && Catch::Contains("spec.advanced.stateStore.maxKeys"));
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  advanced:\n    stateStore: {maxkeys: 3}\n", "b.yaml"),
                    Catch::Contains("maxkeys"));

  auto persisted = load_from_string(head +
                                        "spec:\n"
                                        "  persistence:\n"
                                        "    maxSize: 10G\n"
                                        "    dynamicSettings: {userPropertyKey: keep, userPropertyValue: 'yes'}\n"
                                        "    stateStore:\n"
                                        "      mode: Custom\n"
                                        "      stateStoreSettings:\n"
                                        "        dynamic: {mode: Disabled}\n"
                                        "        stateStoreResources:\n"
                                        "        - {keyType: String, keys: [a, b]}\n"
                                        "        - {keys: ['c*']}\n",
                                    "p.yaml");
  const auto& p = persisted.broker.state_store_persistence;
  CHECK(p.configured);
  CHECK(p.mode == mqttd::StateStorePersistence::Mode::Custom);
  CHECK_FALSE(p.dynamic);
  CHECK(p.user_property_key == "keep");
  CHECK(p.user_property_value == "yes");
  REQUIRE(p.resources.size() == 2);
  CHECK(p.resources[0].key_type == "String");
  CHECK(p.resources[1].key_type == "Pattern");
  REQUIRE(persisted.warnings.size() == 1);
  CHECK_THAT(persisted.warnings[0],
             Catch::Contains("p.yaml:6") && Catch::Contains("spec.persistence") && Catch::Contains("kept in memory"));
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  persistence:\n    maxSize: 10 gigabytes\n", "p.yaml"),
                    Catch::Contains("p.yaml:6") && Catch::Contains("spec.persistence.maxSize"));
  CHECK_THROWS_WITH(load_from_string(head + "spec:\n  persistence:\n    stateStore: {mode: All}\n", "p.yaml"),
                    Catch::Contains("maxSize is required"));
  CHECK_THROWS_WITH(
      load_from_string(head + "spec:\n  persistence:\n    maxSize: 1G\n    stateStore: {mode: Sometimes}\n", "p.yaml"),
      Catch::Contains("spec.persistence.stateStore.mode"));
}

TEST_CASE("what the Broker says about its pod is kept for render-k8s") {
  std::string broker = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\n";
  auto config = load_from_string(broker +
                                 "metadata: {name: edge}\nspec:\n  generateResourceLimits: {cpu: Disabled}\n"
                                 "  memoryProfile: Low\n  persistence:\n    maxSize: 2G\n"
                                 "    persistentVolumeClaimSpec: {storageClassName: fast}\n");
  CHECK(config.deployment.broker_name == "edge");
  CHECK_FALSE(config.deployment.generate_cpu_limits);
  CHECK(config.deployment.memory_profile == "Low");
  REQUIRE(config.deployment.persistence);
  CHECK(config.deployment.persistence->max_size == "2G");
  CHECK(YAML::Load(config.deployment.persistence->volume_claim_spec)["storageClassName"].as<std::string>() == "fast");

  auto defaults = load_from_string(broker + "spec: {}\n");
  CHECK(defaults.deployment.broker_name == "default");
  CHECK(defaults.deployment.generate_cpu_limits);  // Enabled is the API's default
  CHECK(defaults.deployment.memory_profile == "Medium");
  CHECK_FALSE(defaults.deployment.persistence);

  CHECK_THROWS_WITH(
      load_from_string(broker + "metadata: {name: default}\nspec:\n  generateResourceLimits: {cpu: Yes}\n", "f.yaml"),
      Catch::Contains("f.yaml:5:33: Broker.spec.generateResourceLimits.cpu"));
  CHECK_THROWS_WITH(
      load_from_string(broker + "metadata: {name: default}\nspec:\n  generateResourceLimits: {memory: Enabled}\n",
                       "f.yaml"),
      Catch::Contains("unknown field"));
  CHECK_THROWS_WITH(load_from_string(broker + "metadata: {name: Not_A_Name}\nspec: {}\n", "f.yaml"),
                    Catch::Contains("f.yaml:3:18: metadata.name"));
}

namespace {

std::string proxy_listener(const std::string& proxy) {
  return "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\nmetadata: {name: lb}\n"
         "spec:\n  ports:\n  - port: 1883\n    proxyProtocol: " +
         proxy + "\n";
}

std::string refusal(const std::string& proxy) {
  try {
    load_from_string(proxy_listener(proxy), "f.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("proxyProtocol: modes, trusted sources as address blocks, and what is refused") {
  auto config = load_from_string(
      proxy_listener("{mode: Required, trustedSources: [10.0.0.0/8, '2001:db8::/32', 192.0.2.7, '::1']}"));
  const auto& proxy = config.listeners.at(0).ports.at(0).proxy_protocol;
  CHECK(proxy.mode == ProxyProtocol::Mode::Required);
  REQUIRE(proxy.trusted_sources.size() == 4);
  CHECK(proxy.trusted_sources[0].prefix == 104);  // IPv4 blocks as IPv4-mapped IPv6
  CHECK(proxy.trusted_sources[2].prefix == 128);
  auto v4 = [](std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, a, b, c, d};
  };
  CHECK(proxy.trusts(v4(10, 200, 3, 4)));
  CHECK_FALSE(proxy.trusts(v4(11, 0, 0, 1)));
  CHECK(proxy.trusts(v4(192, 0, 2, 7)));
  CHECK_FALSE(proxy.trusts(v4(192, 0, 2, 8)));
  CHECK(proxy.trusts({0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}));
  CHECK_FALSE(proxy.trusts({0x20, 0x01, 0x0d, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}));
  CHECK(proxy.trusts({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  // ::1 and the IPv4 0.0.0.1 are different addresses.
  CHECK_FALSE(proxy.trusts(v4(0, 0, 0, 1)));

  auto optional = load_from_string(proxy_listener("{mode: Optional, trustedSources: [0.0.0.0/0]}"));
  const auto& any = optional.listeners[0].ports[0].proxy_protocol;
  CHECK(any.mode == ProxyProtocol::Mode::Optional);
  CHECK(any.trusts(v4(8, 8, 8, 8)));
  CHECK_FALSE(any.trusts({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));  // IPv4 only
  CHECK_FALSE(load_from_string(proxy_listener("{}")).listeners[0].ports[0].proxy_protocol.enabled());

  // A changed proxyProtocol is another service (the port is re-bound).
  auto a = config.listeners[0].ports[0];
  auto b = a;
  CHECK(a.same_service(b));
  b.proxy_protocol.trusted_sources.pop_back();
  CHECK_FALSE(a.same_service(b));
  b = a;
  b.proxy_protocol.mode = ProxyProtocol::Mode::Optional;
  CHECK_FALSE(a.same_service(b));

  CHECK(refusal("{mode: Required}") ==
        "f.yaml:7:20: BrokerListener/lb.spec.ports[0].proxyProtocol: mode Optional or Required needs trustedSources: "
        "the load balancers' addresses (CIDR)");
  CHECK(refusal("{mode: Optional, trustedSources: []}").find("needs trustedSources") != std::string::npos);
  CHECK(refusal("{mode: Always, trustedSources: [10.0.0.0/8]}").find("proxyProtocol.mode") != std::string::npos);
  CHECK(refusal("{mode: Required, trustedSources: [10.0.0.0/33]}") ==
        "f.yaml:7:54: BrokerListener/lb.spec.ports[0].proxyProtocol.trustedSources[0]: '10.0.0.0/33': the prefix "
        "length must be 0..32");
  CHECK(refusal("{mode: Required, trustedSources: [10.0.0.1/8]}")
            .find("has host bits set (the block's address ends "
                  "in zero bits: did you mean 10.0.0.0/8?)") != std::string::npos);
  CHECK(refusal("{mode: Required, trustedSources: ['2001:db8::1/32']}").find("did you mean 2001:db8::/32?") !=
        std::string::npos);
  for (auto bad : {"10.0.0/8", "lb.example", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08x", "::1/129"}) {
    INFO(bad);
    CHECK(refusal(std::string("{mode: Required, trustedSources: ['") + bad + "']}").find("trustedSources[0]") !=
          std::string::npos);
  }
  CHECK(refusal("{mode: Required, trustedSources: [10.0.0.0/8], trusted: []}").find("unknown field") !=
        std::string::npos);
}

namespace {

// A port with `port_extra` (tls, ...) and proxyProtocol `proxy`, using BrokerAuthentication
// `methods` (X509 with attributes, or Password) when `methods` is not empty.
std::string x509_behind_balancer(const std::string& proxy, const std::string& port_extra = "",
                                 const std::string& methods = "X509") {
  std::string text =
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\nmetadata: {name: lb}\n"
      "spec:\n  ports:\n  - port: 1883\n    authenticationRef: certs\n" +
      port_extra + "    proxyProtocol: " + proxy +
      "\n---\napiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\n"
      "metadata: {name: certs}\nspec:\n  authenticationMethods:\n";
  if (methods == "X509")
    text += "  - method: X509\n    x509Settings:\n      trustedClientCaCert: client-ca\n";
  else
    text += "  - method: Password\n    passwordSettings: {secretRef: users}\n";
  return text;
}

std::string refusal_of(const std::string& text) {
  try {
    load_from_string(text, "f.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("proxyProtocol.clientCertificates: Trusted only on a Required plain port, and X509 then needs no tls") {
  const std::string tls = "    tls: {mode: Manual, manual: {secretRef: server-cert}}\n";
  auto config =
      load_from_string(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8], clientCertificates: "
                                            "Trusted}"));
  const auto& proxy = config.listeners.at(0).ports.at(0).proxy_protocol;
  CHECK(proxy.client_certificates == ProxyProtocol::ClientCertificates::Trusted);
  CHECK(proxy.trusts_client_certificates());
  // The default, and Ignored written out: X509 on a plain port stays refused.
  CHECK_FALSE(load_from_string(proxy_listener("{mode: Required, trustedSources: [10.0.0.0/8]}"))
                  .listeners[0]
                  .ports[0]
                  .proxy_protocol.trusts_client_certificates());
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8]}")) ==
        "f.yaml:6:5: BrokerListener/lb.spec.ports[0].authenticationRef: BrokerAuthentication 'certs' uses X509, which "
        "needs tls on this port (or, behind a TLS-terminating load balancer, proxyProtocol.clientCertificates: "
        "Trusted)");
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8], clientCertificates: "
                                        "Ignored}"))
            .find("uses X509, which needs tls on this port") != std::string::npos);
  // A changed setting is another service (the port is re-bound).
  auto a = config.listeners[0].ports[0];
  auto b = a;
  b.proxy_protocol.client_certificates = ProxyProtocol::ClientCertificates::Ignored;
  CHECK_FALSE(a.same_service(b));
  // Trusted without X509 is allowed (the certificates are then not used by anyone).
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8], clientCertificates: Trusted}",
                                        "", "Password")) == "accepted");

  // Refused: Optional mode, no trusted sources, a TLS port, an unknown value.
  CHECK(refusal_of(x509_behind_balancer("{mode: Optional, trustedSources: [10.0.0.0/8], clientCertificates: "
                                        "Trusted}")) ==
        "f.yaml:8:87: BrokerListener/lb.spec.ports[0].proxyProtocol.clientCertificates: Trusted needs mode Required "
        "and trustedSources: only a header that every connection must send, from a listed load balancer, may vouch "
        "for a client certificate");
  CHECK(refusal_of(x509_behind_balancer("{mode: Disabled, clientCertificates: Trusted}"))
            .find("proxyProtocol.clientCertificates: Trusted needs mode Required") != std::string::npos);
  CHECK(refusal_of(x509_behind_balancer("{clientCertificates: Trusted}"))
            .find("proxyProtocol.clientCertificates: Trusted needs mode Required") != std::string::npos);
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [], clientCertificates: Trusted}"))
            .find("needs trustedSources") != std::string::npos);
  CHECK(refusal_of(
            x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8], clientCertificates: Trusted}", tls)) ==
        "f.yaml:9:87: BrokerListener/lb.spec.ports[0].proxyProtocol.clientCertificates: Trusted is for a port without "
        "tls behind a TLS-terminating load balancer; this port has tls and verifies client certificates itself");
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8], clientCertificates: Yes}"))
            .find("proxyProtocol.clientCertificates") != std::string::npos);
  // A TLS port with X509 and the default setting: as before.
  CHECK(refusal_of(x509_behind_balancer("{mode: Required, trustedSources: [10.0.0.0/8]}", tls)) == "accepted");
}

TEST_CASE("X509 authorizationAttributes: a subject is TYPE = value parts, or a load error naming it") {
  auto with_subject = [](const std::string& subject) {
    return "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\n"
           "metadata: {name: certs}\nspec:\n  authenticationMethods:\n"
           "  - method: X509\n    x509Settings:\n      trustedClientCaCert: client-ca\n"
           "      authorizationAttributes:\n        fan:\n          subject: '" +
           subject + "'\n          attributes: {building: '17'}\n";
  };
  for (const char* ok : {"CN = smart-fan", "CN=a, OU=b", "CN=a+OU=b", "CN=caf\\C3\\A9", "CN=a\\,b", "CN=a=b"})
    CHECK(refusal_of(with_subject(ok)) == "accepted");
  // An escaped '=' is no separator: "x\=y" has no pair, and would match an empty subject.
  for (const char* bad : {"x\\=y", "CN=a, OU", "CN=a,", "=a", "CN=a\\", "smart-fan"}) {
    INFO(bad);
    CHECK_THAT(refusal_of(with_subject(bad)),
               Catch::Contains("f.yaml:11:20: ") &&
                   Catch::Contains("authorizationAttributes.fan.subject: a subject is a distinguished name"));
  }
}
