// The Kubernetes renderer (k8s/render.hpp): its output read back with yaml-cpp, object by object.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config/configuration.hpp"
#include "k8s/render.hpp"

using mqttd::config::load_from_string;
using namespace mqttd::k8s;

namespace {

constexpr const char* kBroker = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: Broker\n";
constexpr const char* kListener = "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerListener\n";

struct Output {
  std::vector<YAML::Node> objects;
  std::vector<std::string> warnings;

  YAML::Node find(const std::string& kind, const std::string& name) const {
    for (const auto& o : objects)
      if (o["kind"].as<std::string>() == kind && o["metadata"]["name"].as<std::string>() == name) return o;
    FAIL("no " << kind << " named " << name);
    return {};
  }
  std::size_t count(const std::string& kind) const {
    std::size_t n = 0;
    for (const auto& o : objects) n += o["kind"].as<std::string>() == kind;
    return n;
  }
  YAML::Node workload() const {
    for (const auto& o : objects) {
      auto kind = o["kind"].as<std::string>();
      if (kind == "Deployment" || kind == "StatefulSet") return o;
    }
    FAIL("no workload");
    return {};
  }
  YAML::Node container() const { return workload()["spec"]["template"]["spec"]["containers"][0]; }
};

Output render_text(const std::string& text, RenderOptions options = {},
                   std::vector<InputFile> inputs = {{"config.yaml", ""}}) {
  auto config = load_from_string(text, "config.yaml");
  if (inputs.size() == 1 && inputs[0].content.empty()) inputs[0].content = text;
  auto rendered = render(config, options, inputs);
  Output out;
  out.warnings = rendered.warnings;
  for (auto& doc : YAML::LoadAll(rendered.yaml)) out.objects.push_back(doc);
  return out;
}

std::vector<std::string> mount_paths(const YAML::Node& container) {
  std::vector<std::string> out;
  for (const auto& m : container["volumeMounts"]) out.push_back(m["mountPath"].as<std::string>());
  return out;
}

}  // namespace

TEST_CASE("render-k8s: one Service per listener, with its name, type and ports") {
  auto out = render_text(std::string(kListener) +
                         "metadata: {name: inside}\nspec:\n  ports:\n  - port: 1883\n  - port: 8885\n"
                         "    tls: {mode: Manual, manual: {secretRef: server-cert}}\n---\n" +
                         kListener +
                         "metadata: {name: outside}\nspec:\n  serviceName: broker-lb\n  serviceType: LoadBalancer\n"
                         "  ports:\n  - port: 9001\n    protocol: WebSockets\n---\n" +
                         kListener +
                         "metadata: {name: nodes}\nspec:\n  serviceType: NodePort\n  ports:\n"
                         "  - port: 1884\n    nodePort: 31884\n");
  // Three listeners, the metrics Service.
  CHECK(out.count("Service") == 4);
  auto inside = out.find("Service", "inside");  // serviceName defaults to the listener's name
  CHECK(inside["spec"]["type"].as<std::string>() == "ClusterIP");
  REQUIRE(inside["spec"]["ports"].size() == 2);
  CHECK(inside["spec"]["ports"][0]["name"].as<std::string>() == "mqtt-1883");
  CHECK(inside["spec"]["ports"][0]["port"].as<int>() == 1883);
  CHECK(inside["spec"]["ports"][0]["targetPort"].as<int>() == 1883);
  CHECK(inside["spec"]["ports"][1]["name"].as<std::string>() == "mqtts-8885");
  CHECK_FALSE(inside["spec"]["ports"][0]["nodePort"]);
  CHECK(inside["spec"]["selector"]["app.kubernetes.io/name"].as<std::string>() == "mqttd");
  CHECK(inside["spec"]["selector"]["app.kubernetes.io/instance"].as<std::string>() == "default");

  auto outside = out.find("Service", "broker-lb");
  CHECK(outside["spec"]["type"].as<std::string>() == "LoadBalancer");
  CHECK(outside["spec"]["ports"][0]["name"].as<std::string>() == "ws-9001");

  auto nodes = out.find("Service", "nodes");
  CHECK(nodes["spec"]["type"].as<std::string>() == "NodePort");
  CHECK(nodes["spec"]["ports"][0]["nodePort"].as<int>() == 31884);

  auto metrics = out.find("Service", "mqttd-default-metrics");
  CHECK(metrics["metadata"]["annotations"]["prometheus.io/scrape"].as<std::string>() == "true");
  CHECK(metrics["metadata"]["annotations"]["prometheus.io/port"].as<std::string>() == "9600");
  CHECK(metrics["spec"]["ports"][0]["port"].as<int>() == 9600);

  // Every port in the pod, and the probes on the metrics port.
  auto c = out.container();
  std::vector<int> ports;
  for (const auto& p : c["ports"]) ports.push_back(p["containerPort"].as<int>());
  CHECK(ports == std::vector<int>{1883, 8885, 9001, 1884, 9600});
  CHECK(c["livenessProbe"]["httpGet"]["path"].as<std::string>() == "/healthz");
  CHECK(c["livenessProbe"]["httpGet"]["port"].as<int>() == 9600);
  CHECK(c["readinessProbe"]["httpGet"]["path"].as<std::string>() == "/readyz");
}

TEST_CASE("render-k8s: a nodePort outside the default range is rendered with a warning") {
  auto out = render_text(std::string(kListener) +
                         "metadata: {name: nodes}\nspec:\n  serviceType: NodePort\n  ports:\n"
                         "  - port: 1884\n    nodePort: 1884\n");
  CHECK(out.find("Service", "nodes")["spec"]["ports"][0]["nodePort"].as<int>() == 1884);
  REQUIRE(out.warnings.size() == 1);
  CHECK(out.warnings[0].find("30000-32767") != std::string::npos);
}

TEST_CASE("render-k8s: a Deployment that runs the image as the Dockerfile's user, read-only") {
  RenderOptions options;
  options.image = "registry.example/mqttd:1.2";
  options.namespace_name = "brokers";
  auto out = render_text(std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n", options);
  CHECK(out.count("StatefulSet") == 0);
  auto d = out.find("Deployment", "mqttd-default");
  CHECK(d["metadata"]["namespace"].as<std::string>() == "brokers");
  CHECK(d["spec"]["replicas"].as<int>() == 1);
  auto labels = d["spec"]["template"]["metadata"]["labels"];
  CHECK(d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"].as<std::string>() ==
        labels["app.kubernetes.io/instance"].as<std::string>());
  auto pod = d["spec"]["template"]["spec"];
  CHECK(pod["securityContext"]["runAsNonRoot"].as<bool>());
  CHECK(pod["securityContext"]["runAsUser"].as<int>() == 10001);
  CHECK(pod["terminationGracePeriodSeconds"].as<int>() == 30);
  CHECK_FALSE(pod["securityContext"]["sysctls"]);  // no port below 1024
  auto c = out.container();
  CHECK(c["image"].as<std::string>() == "registry.example/mqttd:1.2");
  CHECK(c["args"][0].as<std::string>() == "--config");
  CHECK(c["args"][1].as<std::string>() == "/etc/mqttd/config");
  CHECK(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  CHECK(c["securityContext"]["allowPrivilegeEscalation"].as<bool>() == false);
  CHECK(c["securityContext"]["capabilities"]["drop"][0].as<std::string>() == "ALL");
  // The ConfigMap at the config folder, an emptyDir for what the daemon writes.
  CHECK(mount_paths(c) == std::vector<std::string>{"/etc/mqttd/config", "/var/lib/mqttd"});
  auto volumes = pod["volumes"];
  CHECK(volumes[0]["configMap"]["name"].as<std::string>() == "mqttd-default-config");
  CHECK(volumes[1]["emptyDir"].IsMap());
}

TEST_CASE("render-k8s: the secrets the configuration reads are mounted under /etc/mqttd/secrets") {
  auto out = render_text(
      std::string(kListener) +
      "metadata: {name: l}\nspec:\n  ports:\n  - port: 8883\n    authenticationRef: devices\n"
      "    tls: {mode: Manual, manual: {secretRef: server-cert}}\n"
      "  - port: 8884\n    tls:\n      mode: Automatic\n      certManagerCertificateSpec:\n"
      "        issuerRef: {name: ca-issuer, kind: Issuer}\n"
      "  - port: 8886\n    tls:\n      mode: Automatic\n      certManagerCertificateSpec:\n"
      "        issuerRef: {name: issued-ca-issuer, kind: Issuer}\n---\n"
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\nmetadata: {name: devices}\n"
      "spec:\n  authenticationMethods:\n  - method: X509\n    x509Settings: {trustedClientCaCert: client-ca}\n"
      "  - method: Password\n    passwordSettings: {secretRef: mqtt.users}\n---\n"
      "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: ca-issuer}\nspec: {ca: {secretName: my-ca}}\n"
      "---\napiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: issued-ca-issuer}\n"
      "spec: {ca: {secretName: issued-ca}}\n---\napiVersion: cert-manager.io/v1\nkind: Issuer\n"
      "metadata: {name: selfsigned}\nspec: {selfSigned: {}}\n---\napiVersion: cert-manager.io/v1\nkind: Certificate\n"
      "metadata: {name: ca}\nspec:\n  isCA: true\n  commonName: ca\n  secretName: issued-ca\n"
      "  issuerRef: {name: selfsigned, kind: Issuer}\n");
  auto c = out.container();
  // Sorted; issued-ca is written by the daemon (a Certificate), so it is not mounted.
  CHECK(mount_paths(c) == std::vector<std::string>{"/etc/mqttd/config", "/var/lib/mqttd",
                                                   "/etc/mqttd/secrets/client-ca", "/etc/mqttd/secrets/mqtt.users",
                                                   "/etc/mqttd/secrets/my-ca", "/etc/mqttd/secrets/server-cert"});
  auto volumes = out.workload()["spec"]["template"]["spec"]["volumes"];
  REQUIRE(volumes.size() == 6);
  CHECK(volumes[3]["name"].as<std::string>() == "secret-mqtt-users");  // a dot cannot be in a volume name
  CHECK(volumes[3]["secret"]["secretName"].as<std::string>() == "mqtt.users");
  CHECK(volumes[3]["secret"]["optional"].as<bool>());
  for (std::size_t i = 2; i < 6; ++i)
    CHECK(c["volumeMounts"][i]["name"].as<std::string>() == volumes[i]["name"].as<std::string>());
}

TEST_CASE("render-k8s: a Custom method's CA ConfigMap and client certificate are mounted") {
  auto out = render_text(
      std::string(kListener) +
      "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n    authenticationRef: custom\n---\n"
      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\nmetadata: {name: custom}\n"
      "spec:\n  authenticationMethods:\n  - method: Custom\n    customSettings:\n"
      "      endpoint: https://auth.example:8443/\n      caCertConfigMap: custom-auth-ca\n"
      "      auth: {x509: {secretRef: custom-auth-client}}\n");
  auto c = out.container();
  CHECK(mount_paths(c) == std::vector<std::string>{"/etc/mqttd/config", "/var/lib/mqttd",
                                                   "/etc/mqttd/secrets/custom-auth-ca",
                                                   "/etc/mqttd/secrets/custom-auth-client"});
  auto volumes = out.workload()["spec"]["template"]["spec"]["volumes"];
  REQUIRE(volumes.size() == 4);
  // caCertConfigMap names a ConfigMap (as in AIO); the client certificate is a Secret.
  CHECK(volumes[2]["name"].as<std::string>() == "secret-custom-auth-ca");
  CHECK(volumes[2]["configMap"]["name"].as<std::string>() == "custom-auth-ca");
  CHECK(volumes[2]["configMap"]["optional"].as<bool>());
  CHECK_FALSE(volumes[2]["secret"]);
  CHECK(volumes[3]["secret"]["secretName"].as<std::string>() == "custom-auth-client");
  CHECK(volumes[3]["secret"]["optional"].as<bool>());
  for (std::size_t i = 2; i < 4; ++i)
    CHECK(c["volumeMounts"][i]["name"].as<std::string>() == volumes[i]["name"].as<std::string>());
  // No ServiceAccountToken method: no API access.
  CHECK(out.count("ServiceAccount") == 0);

  SECTION("a name that is both a ConfigMap and a Secret of the configuration: one projected volume") {
    auto both = render_text(
        "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\nmetadata: {name: a}\n"
        "spec:\n  authenticationMethods:\n  - method: Custom\n    customSettings:\n"
        "      endpoint: https://auth.example/\n      caCertConfigMap: shared\n"
        "  - method: X509\n    x509Settings: {trustedClientCaCert: shared}\n");
    auto v = both.workload()["spec"]["template"]["spec"]["volumes"];
    REQUIRE(v.size() == 3);
    auto sources = v[2]["projected"]["sources"];
    REQUIRE(sources.size() == 2);
    CHECK(sources[0]["secret"]["name"].as<std::string>() == "shared");
    CHECK(sources[0]["secret"]["optional"].as<bool>());
    CHECK(sources[1]["configMap"]["name"].as<std::string>() == "shared");
    CHECK(mount_paths(both.container()).back() == "/etc/mqttd/secrets/shared");
  }
}

TEST_CASE(
    "render-k8s: a ServiceAccountToken method gets a ServiceAccount allowed exactly TokenReview and "
    "reading ServiceAccounts") {
  RenderOptions options;
  options.namespace_name = "brokers";
  auto out =
      render_text(std::string(kBroker) + "metadata: {name: edge}\n---\n" + kListener +
                      "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n    authenticationRef: sat\n---\n"
                      "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\n"
                      "metadata: {name: sat}\nspec:\n  authenticationMethods:\n"
                      "  - method: ServiceAccountToken\n    serviceAccountTokenSettings: {audiences: [aio-internal]}\n",
                  options);
  REQUIRE(out.count("ServiceAccount") == 1);
  REQUIRE(out.count("ClusterRole") == 1);
  REQUIRE(out.count("ClusterRoleBinding") == 1);
  auto account = out.find("ServiceAccount", "mqttd-edge");
  CHECK(account["apiVersion"].as<std::string>() == "v1");
  CHECK(account["metadata"]["namespace"].as<std::string>() == "brokers");
  CHECK(account["metadata"]["labels"]["app.kubernetes.io/instance"].as<std::string>() == "edge");

  // Cluster-scoped, so named after the namespace too (two installs must not share them), and
  // without metadata.namespace.
  auto role = out.find("ClusterRole", "mqttd-edge.brokers");
  CHECK(role["apiVersion"].as<std::string>() == "rbac.authorization.k8s.io/v1");
  CHECK_FALSE(role["metadata"]["namespace"]);
  // Exactly two rules, one group, resource and verb each.
  auto strings = [](const YAML::Node& list) { return list.as<std::vector<std::string>>(); };
  REQUIRE(role["rules"].size() == 2);
  for (const auto& rule : role["rules"]) CHECK(rule.size() == 3);
  CHECK(strings(role["rules"][0]["apiGroups"]) == std::vector<std::string>{"authentication.k8s.io"});
  CHECK(strings(role["rules"][0]["resources"]) == std::vector<std::string>{"tokenreviews"});
  CHECK(strings(role["rules"][0]["verbs"]) == std::vector<std::string>{"create"});
  CHECK(strings(role["rules"][1]["apiGroups"]) == std::vector<std::string>{""});
  CHECK(strings(role["rules"][1]["resources"]) == std::vector<std::string>{"serviceaccounts"});
  CHECK(strings(role["rules"][1]["verbs"]) == std::vector<std::string>{"get"});
  CHECK(role["rules"][1]["apiGroups"][0].as<std::string>().empty());  // the core group, not null

  auto binding = out.find("ClusterRoleBinding", "mqttd-edge.brokers");
  CHECK(binding["apiVersion"].as<std::string>() == "rbac.authorization.k8s.io/v1");
  CHECK_FALSE(binding["metadata"]["namespace"]);
  CHECK(binding["roleRef"]["apiGroup"].as<std::string>() == "rbac.authorization.k8s.io");
  CHECK(binding["roleRef"]["kind"].as<std::string>() == "ClusterRole");
  CHECK(binding["roleRef"]["name"].as<std::string>() == "mqttd-edge.brokers");
  REQUIRE(binding["subjects"].size() == 1);
  CHECK(binding["subjects"][0]["kind"].as<std::string>() == "ServiceAccount");
  CHECK(binding["subjects"][0]["name"].as<std::string>() == "mqttd-edge");
  CHECK(binding["subjects"][0]["namespace"].as<std::string>() == "brokers");

  auto pod = out.workload()["spec"]["template"]["spec"];
  CHECK(pod["serviceAccountName"].as<std::string>() == "mqttd-edge");
  CHECK(pod["automountServiceAccountToken"].as<bool>());

  // Before the workload, whose pod needs the account to exist.
  std::vector<std::string> kinds;
  for (const auto& o : out.objects) kinds.push_back(o["kind"].as<std::string>());
  CHECK(kinds == std::vector<std::string>{"ConfigMap", "Service", "Service", "ServiceAccount", "ClusterRole",
                                          "ClusterRoleBinding", "Deployment"});
}

TEST_CASE("render-k8s: without a ServiceAccountToken method the pod has no API token and no RBAC objects") {
  auto out = render_text(std::string(kListener) +
                         "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n    authenticationRef: pw\n---\n"
                         "apiVersion: mqttbroker.iotoperations.azure.com/v1\nkind: BrokerAuthentication\n"
                         "metadata: {name: pw}\nspec:\n  authenticationMethods:\n"
                         "  - method: Password\n    passwordSettings: {secretRef: users}\n");
  CHECK(out.count("ServiceAccount") == 0);
  CHECK(out.count("ClusterRole") == 0);
  CHECK(out.count("ClusterRoleBinding") == 0);
  auto pod = out.workload()["spec"]["template"]["spec"];
  CHECK_FALSE(pod["serviceAccountName"]);
  REQUIRE(pod["automountServiceAccountToken"]);
  CHECK(pod["automountServiceAccountToken"].as<bool>() == false);
}

TEST_CASE("render-k8s: persistence makes a StatefulSet with a volume claim of maxSize") {
  auto out = render_text(std::string(kBroker) +
                         "metadata: {name: edge}\nspec:\n  persistence:\n    maxSize: 500M\n"
                         "    persistentVolumeClaimSpec:\n      storageClassName: fast\n"
                         "      volumeMode: 'Filesystem'\n      selector: {matchLabels: {tier: 'true'}}\n---\n" +
                         kListener + "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n");
  CHECK(out.count("Deployment") == 0);
  auto s = out.find("StatefulSet", "mqttd-edge");
  CHECK(s["metadata"]["labels"]["app.kubernetes.io/instance"].as<std::string>() == "edge");
  CHECK(s["spec"]["serviceName"].as<std::string>() == "mqttd-edge-pods");
  auto headless = out.find("Service", "mqttd-edge-pods");
  CHECK(headless["spec"]["clusterIP"].as<std::string>() == "None");
  auto claim = s["spec"]["volumeClaimTemplates"][0];
  CHECK(claim["metadata"]["name"].as<std::string>() == "state");
  CHECK(claim["spec"]["storageClassName"].as<std::string>() == "fast");
  CHECK(claim["spec"]["volumeMode"].as<std::string>() == "Filesystem");
  CHECK(claim["spec"]["accessModes"][0].as<std::string>() == "ReadWriteOnce");
  CHECK(claim["spec"]["resources"]["requests"]["storage"].as<std::string>() == "500M");
  // A label value stays a string (yaml-cpp would read either form as "true": look at the text).
  auto text = render(load_from_string(std::string(kBroker) +
                                      "metadata: {name: edge}\nspec:\n  persistence:\n    maxSize: 500M\n"
                                      "    persistentVolumeClaimSpec: {selector: {matchLabels: {tier: 'true'}}}\n"),
                     {}, {})
                  .yaml;
  CHECK(text.find("tier: \"true\"") != std::string::npos);
  // The claim replaces the emptyDir at the state folder.
  auto pod = s["spec"]["template"]["spec"];
  for (const auto& v : pod["volumes"]) CHECK_FALSE(v["emptyDir"]);
  CHECK(out.container()["volumeMounts"][1]["name"].as<std::string>() == "state");
  CHECK(out.container()["volumeMounts"][1]["mountPath"].as<std::string>() == "/var/lib/mqttd");
}

TEST_CASE("render-k8s: kilo in maxSize is Kubernetes' lowercase k") {
  auto out =
      render_text(std::string(kBroker) + "metadata: {name: default}\nspec:\n  persistence: {maxSize: 200000K}\n");
  auto claim = out.workload()["spec"]["volumeClaimTemplates"][0];
  CHECK(claim["spec"]["resources"]["requests"]["storage"].as<std::string>() == "200000k");
}

TEST_CASE("render-k8s: resources follow the workers and the memory profile") {
  SECTION("cpu limits on (the API's default): one CPU per frontend worker") {
    auto out = render_text(std::string(kBroker) +
                           "metadata: {name: default}\nspec:\n  cardinality: {frontend: {workers: 3}}\n"
                           "  memoryProfile: Low\n");
    auto r = out.container()["resources"];
    CHECK(r["requests"]["cpu"].as<std::string>() == "3");
    CHECK(r["limits"]["cpu"].as<std::string>() == "3");
    CHECK(r["requests"]["memory"].as<std::string>() == "387Mi");
    CHECK(r["limits"]["memory"].as<std::string>() == "387Mi");
    CHECK(out.container()["args"].size() == 2);  // the daemon reads its 3 workers from the file
  }
  SECTION("two workers when the Broker does not say") {
    auto out = render_text(std::string(kBroker) + "metadata: {name: default}\nspec: {memoryProfile: Tiny}\n");
    auto r = out.container()["resources"];
    CHECK(r["requests"]["cpu"].as<std::string>() == "2");
    CHECK(r["limits"]["memory"].as<std::string>() == "99Mi");
    // And the daemon runs the 2 workers the pod pays for, not one per core of the node.
    auto args = out.container()["args"];
    REQUIRE(args.size() == 4);
    CHECK(args[2].as<std::string>() == "--workers");
    CHECK(args[3].as<std::string>() == "2");
  }
  SECTION("cpu limits off: memory only; Medium without a profile") {
    auto out = render_text(std::string(kBroker) +
                           "metadata: {name: default}\nspec:\n  generateResourceLimits: {cpu: Disabled}\n");
    auto r = out.container()["resources"];
    CHECK_FALSE(r["requests"]["cpu"]);
    CHECK_FALSE(r["limits"]["cpu"]);
    CHECK(r["requests"]["memory"].as<std::string>() == "1946Mi");
  }
  SECTION("High") {
    auto out = render_text(std::string(kBroker) + "metadata: {name: default}\nspec: {memoryProfile: High}\n");
    CHECK(out.container()["resources"]["limits"]["memory"].as<std::string>() == "5018Mi");
  }
}

TEST_CASE("render-k8s: prometheusPort 0 means no metrics port, Service or probes") {
  auto out = render_text(std::string(kBroker) +
                         "metadata: {name: default}\nspec:\n  diagnostics:\n"
                         "    metrics: {prometheusPort: 0}\n");
  CHECK(out.count("Service") == 0);
  auto c = out.container();
  CHECK_FALSE(c["livenessProbe"]);
  CHECK_FALSE(c["readinessProbe"]);
  CHECK(out.warnings.size() == 2);  // no listener, no probes
}

TEST_CASE("render-k8s: a port below 1024 gets the unprivileged-port sysctl") {
  auto out = render_text(std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 883\n");
  auto sysctls = out.workload()["spec"]["template"]["spec"]["securityContext"]["sysctls"];
  REQUIRE(sysctls.size() == 1);
  CHECK(sysctls[0]["name"].as<std::string>() == "net.ipv4.ip_unprivileged_port_start");
  CHECK(sysctls[0]["value"].as<std::string>() == "0");
}

TEST_CASE("render-k8s: the ConfigMap holds the files byte for byte") {
  std::string listener = std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n";
  // Texts a literal block cannot carry exactly fall back to a quoted scalar.
  std::vector<InputFile> inputs = {{"a.yaml", listener},
                                   {"b.yaml", "# no final newline\n\n  indented: yes\t\r\n\n\n"},
                                   {"c.yml", "  leading: spaces\nno: newline"},
                                   {"d.yaml", "unicode: \"\xc3\xa9t\xc3\xa9\"\n"}};
  auto out = render_text(listener, {}, inputs);
  auto cm = out.find("ConfigMap", "mqttd-default-config");
  REQUIRE(cm["data"].size() == inputs.size());
  for (const auto& f : inputs) {
    INFO(f.name);
    CHECK(cm["data"][f.name].as<std::string>() == f.content);
  }
  auto volumes = out.workload()["spec"]["template"]["spec"]["volumes"];
  CHECK(volumes[0]["configMap"]["name"].as<std::string>() == "mqttd-default-config");
}

TEST_CASE("render-k8s: what Kubernetes cannot carry is an error") {
  auto config = load_from_string(
      std::string(kListener) + "metadata: {name: l}\nspec:\n  serviceName: broker.lb\n  ports:\n  - port: 1883\n",
      "f.yaml");
  CHECK_THROWS_WITH(render(config, {}, {}), Catch::Contains("f.yaml:3:18: BrokerListener/l.spec.serviceName"));
  auto ok = load_from_string(std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n");
  CHECK_THROWS_WITH(render(ok, {}, {{"notes.txt", "x"}}), Catch::Contains("*.yaml"));
  CHECK_THROWS_WITH(render(ok, {}, {{"bad.yaml", "\xff\xfe"}}), Catch::Contains("UTF-8"));
  RenderOptions bad_namespace;
  bad_namespace.namespace_name = "Not_A_Namespace";
  CHECK_THROWS_AS(render(ok, bad_namespace, {}), RenderError);
  auto metrics_clash =
      load_from_string(std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 9600\n");
  CHECK_THROWS_WITH(render(metrics_clash, {}, {}), Catch::Contains("prometheusPort"));
}

TEST_CASE("render-k8s: the output is the same every time") {
  std::string text = std::string(kListener) + "metadata: {name: l}\nspec:\n  ports:\n  - port: 1883\n";
  auto config = load_from_string(text);
  CHECK(render(config, {}, {{"l.yaml", text}}).yaml == render(config, {}, {{"l.yaml", text}}).yaml);
}
