// The Broker fields mqttd checks but does not implement (config/unimplemented_settings.*): range
// and shape errors with their file:line:column and path, and when a warning is given or not.
#include <catch2/catch.hpp>
#include <string>

#include "config/configuration.hpp"

using namespace mqttd::config;

namespace {

const std::string kHead =
    "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\nmetadata: {name: default}\n";

Configuration broker(const std::string& spec) { return load_from_string(kHead + "spec:\n" + spec, "b.yaml"); }

}  // namespace

TEST_CASE("unimplemented Broker fields: out of range values are refused with file, line, column and path") {
  struct Case {
    const char* spec;
    const char* error;
  };
  const Case cases[] = {
      {"  cardinality:\n    frontend: {replicas: 0}\n",
       "b.yaml:6:26: Broker.spec.cardinality.frontend.replicas: 0 is out of range 1..16"},
      {"  cardinality:\n    frontend: {replicas: 17}\n",
       "b.yaml:6:26: Broker.spec.cardinality.frontend.replicas: 17 is out of range 1..16"},
      {"  cardinality:\n    backendChain: {partitions: 17, redundancyFactor: 2}\n",
       "b.yaml:6:32: Broker.spec.cardinality.backendChain.partitions: 17 is out of range 1..16"},
      {"  cardinality:\n    backendChain: {partitions: 1, redundancyFactor: 6}\n",
       "b.yaml:6:53: Broker.spec.cardinality.backendChain.redundancyFactor: 6 is out of range 1..5"},
      {"  cardinality:\n    backendChain: {partitions: 1, redundancyFactor: 2, workers: 0}\n",
       "b.yaml:6:65: Broker.spec.cardinality.backendChain.workers: 0 is out of range 1..16"},
      {"  cardinality:\n    backendChain: {redundancyFactor: 2}\n",
       "b.yaml:6:19: Broker.spec.cardinality.backendChain: missing field 'partitions' (1..16)"},
      {"  cardinality:\n    backendChain: {partitions: 2, redundancyFactor: 2, replicas: 2}\n",
       "b.yaml:6:56: Broker.spec.cardinality.backendChain.replicas: unknown field"},
      {"  diagnostics:\n    traces: {cacheSizeMegabytes: 129}\n",
       "b.yaml:6:34: Broker.spec.diagnostics.traces.cacheSizeMegabytes: 129 is out of range 1..128"},
      {"  diagnostics:\n    traces: {spanChannelCapacity: 999}\n",
       "b.yaml:6:35: Broker.spec.diagnostics.traces.spanChannelCapacity: 999 is out of range 1000..100000"},
      {"  diagnostics:\n    traces: {spanChannelCapacity: 100001}\n",
       "b.yaml:6:35: Broker.spec.diagnostics.traces.spanChannelCapacity: 100001 is out of range 1000..100000"},
      {"  diagnostics:\n    traces: {mode: On}\n",
       "b.yaml:6:20: Broker.spec.diagnostics.traces.mode: 'On' is not one of: Enabled, Disabled"},
      {"  diagnostics:\n    traces:\n      selfTracing: {intervalSeconds: 0}\n",
       "b.yaml:7:38: Broker.spec.diagnostics.traces.selfTracing.intervalSeconds: 0 is out of range 1..300"},
      {"  diagnostics:\n    traces:\n      selfTracing: {intervalSeconds: 301}\n",
       "b.yaml:7:38: Broker.spec.diagnostics.traces.selfTracing.intervalSeconds: 301 is out of range 1..300"},
      {"  diagnostics:\n    traces:\n      selfTracing: {mode: Disabled, interval: 3}\n",
       "b.yaml:7:37: Broker.spec.diagnostics.traces.selfTracing.interval: unknown field"},
      {"  diagnostics:\n    logs:\n      opentelemetryExportConfig: {otlpGrpcEndpoint: 'http://c:4317', "
       "intervalSeconds: 301}\n",
       "b.yaml:7:87: Broker.spec.diagnostics.logs.opentelemetryExportConfig.intervalSeconds: 301 is out of range "
       "1..300"},
      {"  diagnostics:\n    logs:\n      opentelemetryExportConfig: {otlpGrpcEndpoint: x, level: verbose}\n",
       "b.yaml:7:63: Broker.spec.diagnostics.logs.opentelemetryExportConfig.level: 'verbose' is not one of: trace, "
       "debug, info, warn, error"},
      {"  diagnostics:\n    metrics:\n      opentelemetryExportConfig: {intervalSeconds: 30}\n",
       "b.yaml:7:34: Broker.spec.diagnostics.metrics.opentelemetryExportConfig: missing field 'otlpGrpcEndpoint'"},
      {"  diagnostics:\n    metrics:\n      opentelemetryExportConfig: {otlpGrpcEndpoint: x, intervalSeconds: 0}\n",
       "b.yaml:7:73: Broker.spec.diagnostics.metrics.opentelemetryExportConfig.intervalSeconds: 0 is out of range "
       "1..300"},
      {"  diagnostics:\n    metrics:\n      opentelemetryExportConfig: {otlpGrpcEndpoint: x, level: info}\n",
       "b.yaml:7:56: Broker.spec.diagnostics.metrics.opentelemetryExportConfig.level: unknown field"},
      {"  advanced:\n    encryptInternalTraffic: true\n",
       "b.yaml:6:29: Broker.spec.advanced.encryptInternalTraffic: 'true' is not one of: Enabled, Disabled"},
      {"  advanced:\n    internalCerts: {duration: 240h, renewBefore: 240h, privateKey: {algorithm: Ec256, "
       "rotationPolicy: Always}}\n",
       "b.yaml:6:50: Broker.spec.advanced.internalCerts.renewBefore: must be shorter than the duration"},
      {"  advanced:\n    internalCerts: {duration: 10d, renewBefore: 1h, privateKey: {algorithm: Ec256, "
       "rotationPolicy: Always}}\n",
       "b.yaml:6:31: Broker.spec.advanced.internalCerts.duration: '10d' is not a duration"},
      {"  advanced:\n    internalCerts: {duration: 240h, renewBefore: 1h, privateKey: {algorithm: Rsa1024, "
       "rotationPolicy: Always}}\n",
       "b.yaml:6:78: Broker.spec.advanced.internalCerts.privateKey.algorithm: 'Rsa1024' is not one of: Ec256"},
      {"  advanced:\n    internalCerts: {duration: 240h, renewBefore: 1h, privateKey: {algorithm: Ec256}}\n",
       "b.yaml:6:66: Broker.spec.advanced.internalCerts.privateKey: missing field 'rotationPolicy' (Always or Never)"},
      {"  advanced:\n    internalCerts: {duration: 240h}\n",
       "b.yaml:6:20: Broker.spec.advanced.internalCerts: missing field 'renewBefore'"},
      {"  diskBackedMessageBuffer: {maxSize: 10GB}\n",
       "b.yaml:5:38: Broker.spec.diskBackedMessageBuffer.maxSize: must be digits and a unit K, M, G, T, P or E"},
      {"  diskBackedMessageBuffer: {maxSize: G}\n",
       "b.yaml:5:38: Broker.spec.diskBackedMessageBuffer.maxSize: must be digits and a unit"},
      {"  diskBackedMessageBuffer: {ephemeralVolumeClaimSpec: {}}\n",
       "b.yaml:5:28: Broker.spec.diskBackedMessageBuffer: missing field 'maxSize' (e.g. 10G)"},
      {"  diskBackedMessageBuffer:\n    maxSize: 1G\n    ephemeralVolumeClaimSpec: {}\n"
       "    persistentVolumeClaimSpec: {}\n",
       "b.yaml:6:5: Broker.spec.diskBackedMessageBuffer: give one of ephemeralVolumeClaimSpec and "
       "persistentVolumeClaimSpec, not both"},
      {"  diskBackedMessageBuffer:\n    maxSize: 1G\n    ephemeralVolumeClaimSpec: {accessModes: [ReadWriteAlways]}\n",
       "b.yaml:7:46: Broker.spec.diskBackedMessageBuffer.ephemeralVolumeClaimSpec.accessModes[0]: 'ReadWriteAlways' "
       "is not one of"},
      {"  diskBackedMessageBuffer:\n    maxSize: 1G\n    persistentVolumeClaimSpec: {storageClass: local-path}\n",
       "b.yaml:7:33: Broker.spec.diskBackedMessageBuffer.persistentVolumeClaimSpec.storageClass: unknown field"},
      {"  diskBackedMessageBuffer:\n    maxSize: 1G\n    persistentVolumeClaimSpec:\n      selector:\n"
       "        matchExpressions: [{key: tier, operator: In}]\n",
       "b.yaml:9:28: Broker.spec.diskBackedMessageBuffer.persistentVolumeClaimSpec.selector.matchExpressions[0]: "
       "operator In needs values"},
      {"  diskBackedMessageBuffer:\n    maxSize: 1G\n    persistentVolumeClaimSpec:\n      dataSource: {kind: PVC}\n",
       "b.yaml:8:19: Broker.spec.diskBackedMessageBuffer.persistentVolumeClaimSpec.dataSource: missing field 'name'"},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    CHECK_THROWS_WITH(broker(c.spec), Catch::StartsWith(c.error));
  }
}

TEST_CASE("unimplemented Broker fields: a warning only where the value asks for something mqttd does not do") {
  // Values that mqttd already is: one replica, a one-partition chain without redundancy, no
  // internal encryption, traces off.
  auto quiet = broker(
      "  cardinality:\n"
      "    frontend: {replicas: 1, workers: 2}\n"
      "    backendChain: {partitions: 1, redundancyFactor: 1, workers: 1}\n"
      "  advanced: {encryptInternalTraffic: Disabled}\n"
      "  diagnostics:\n"
      "    traces: {mode: Disabled, cacheSizeMegabytes: 16, selfTracing: {mode: Enabled, intervalSeconds: 30}}\n");
  CHECK(quiet.warnings.empty());

  auto loud = broker(
      "  cardinality:\n"
      "    frontend: {replicas: 3}\n"
      "    backendChain: {partitions: 1, redundancyFactor: 2}\n"
      "  advanced: {encryptInternalTraffic: Enabled}\n"
      "  diagnostics:\n"
      "    traces: {}\n");
  REQUIRE(loud.warnings.size() == 4);
  CHECK_THAT(loud.warnings[0], Catch::StartsWith("b.yaml:8:38: Broker.spec.advanced.encryptInternalTraffic: "
                                                 "nothing to encrypt"));
  CHECK_THAT(loud.warnings[1], Catch::StartsWith("b.yaml:6:26: Broker.spec.cardinality.frontend.replicas: 3 "
                                                 "replicas asked for, but mqttd is one process: run several "
                                                 "daemons behind a load balancer"));
  CHECK_THAT(loud.warnings[2], Catch::StartsWith("b.yaml:7:19: Broker.spec.cardinality.backendChain: no backend "
                                                 "chain in one process: messages are kept by the daemon itself") &&
                                   Catch::Contains("partitions 1, redundancyFactor 2 and workers 1 have no effect"));
  CHECK_THAT(loud.warnings[3], Catch::StartsWith("b.yaml:10:13: Broker.spec.diagnostics.traces: no traces"));
}

TEST_CASE("other kinds: a node port and a PKCS#1 key encoding are warned about, not ignored") {
  auto listener = load_from_string(
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\nmetadata: {name: edge}\n"
      "spec:\n  serviceType: NodePort\n  ports:\n  - {port: 1884, nodePort: 31884}\n  - {port: 1885, nodePort: 1885}\n",
      "l.yaml");
  REQUIRE(listener.warnings.size() == 1);  // the same number as the port: the daemon listens there
  CHECK_THAT(listener.warnings[0], Catch::StartsWith("l.yaml:7:28: BrokerListener/edge.spec.ports[0].nodePort: mqttd "
                                                     "creates no Kubernetes Service: it listens on port 1884 only"));

  const std::string cert =
      "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: root}\nspec:\n  selfSigned: {}\n---\n"
      "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\n"
      "spec:\n  secretName: c\n  commonName: c\n  issuerRef: {name: root, kind: Issuer}\n";
  CHECK(load_from_string(cert + "  privateKey: {encoding: PKCS8}\n").warnings.empty());
  auto pkcs1 = load_from_string(cert + "  privateKey: {encoding: PKCS1}\n", "c.yaml");
  REQUIRE(pkcs1.warnings.size() == 1);
  CHECK_THAT(pkcs1.warnings[0], Catch::StartsWith("c.yaml:14:26: Certificate/c.spec.privateKey.encoding: mqttd "
                                                  "writes every private key in PKCS#8"));

  const std::string issuer = "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: root}\nspec:\n";
  CHECK(load_from_string(issuer + "  selfSigned:\n").warnings.empty());
  auto crl = load_from_string(issuer + "  selfSigned: {crlDistributionPoints: ['http://x/crl']}\n", "i.yaml");
  REQUIRE(crl.warnings.size() == 1);
  CHECK_THAT(crl.warnings[0], Catch::StartsWith("i.yaml:5:39: Issuer/root.spec.selfSigned.crlDistributionPoints: "
                                                "the certificates mqttd issues carry no CRL distribution points"));
  CHECK_THROWS_WITH(load_from_string(issuer + "  selfSigned: {crl: []}\n", "i.yaml"),
                    Catch::StartsWith("i.yaml:5:16: Issuer/root.spec.selfSigned.crl: unknown field"));
}
