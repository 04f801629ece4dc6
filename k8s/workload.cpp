// The Deployment (or StatefulSet) running the daemon: non-root, read-only root filesystem, the
// ConfigMap and the secrets the configuration names mounted where the daemon's defaults look,
// probes on the metrics port and resources from the Broker's cardinality and memory profile.
#include <fmt/format.h>

#include <map>
#include <set>

#include "k8s/objects.hpp"

namespace mqttd::k8s {
namespace {

// What the daemon reads from --secrets-dir, by folder name: Secrets (manual TLS chains, trusted
// client CAs, password files, a Custom method's client certificate, the CA of a CA issuer unless a
// Certificate of the configuration issues it: the daemon writes that one itself, under
// --state-dir) and ConfigMaps (a Custom method's caCertConfigMap, which AIO names a ConfigMap).
struct Mounted {
  bool secret = false;
  bool config_map = false;
};

std::map<std::string, Mounted> mounted_folders(const config::Configuration& config) {
  std::map<std::string, Mounted> folders;
  std::set<std::string> written;
  for (const auto& c : config.certificates) written.insert(c.spec.secret_name);
  for (const auto& l : config.listeners)
    for (const auto& p : l.ports)
      if (p.tls && p.tls->mode == config::PortTls::Mode::Manual) folders[p.tls->manual_secret].secret = true;
  for (const auto& a : config.authentications)
    for (const auto& m : a.methods) {
      if (!m.trusted_client_ca.empty()) folders[m.trusted_client_ca].secret = true;
      if (!m.password_secret.empty()) folders[m.password_secret].secret = true;
      if (m.custom.ca_folder) folders[*m.custom.ca_folder].config_map = true;
      if (m.custom.client_cert_secret) folders[*m.custom.client_cert_secret].secret = true;
    }
  for (const auto& i : config.issuers)
    if (!i.self_signed && !i.built_in && !i.ca_secret.empty() && !written.contains(i.ca_secret))
      folders[i.ca_secret].secret = true;
  return folders;
}

// The volume source of a folder. Optional: the daemon starts without it and waits ("Awaiting
// creation of secret"), as the source broker does; kubelet fills the volume once the object
// exists. A name that is both a Secret and a ConfigMap of the configuration gets both, projected.
void folder_source(const std::string& name, const Mounted& m, Tree& volume) {
  auto source = [&](const char* key) {
    return Tree::map({{key, Tree::string(name)}, {"optional", Tree::boolean(true)}});
  };
  if (m.secret && m.config_map) {
    Tree secret = Tree::map({{"name", Tree::string(name)}, {"optional", Tree::boolean(true)}});
    Tree config_map = Tree::map({{"name", Tree::string(name)}, {"optional", Tree::boolean(true)}});
    volume.set("projected", Tree::map({{"sources", Tree::sequence({Tree::map({{"secret", secret}}),
                                                                   Tree::map({{"configMap", config_map}})})}}));
    return;
  }
  if (m.config_map)
    volume.set("configMap", source("name"));
  else
    volume.set("secret", source("secretName"));
}

// memoryProfile → the frontend's maximum memory in the reference's table (Tiny ~99 MiB, Low
// ~387 MiB, Medium ~1.9 GiB, High ~4.9 GiB), in MiB so the quantity stays exact.
std::string memory_quantity(const std::string& profile) {
  if (profile == "Tiny") return "99Mi";
  if (profile == "Low") return "387Mi";
  if (profile == "High") return "5018Mi";
  return "1946Mi";
}

// AIO's generateResourceLimits.cpu requests one CPU per frontend worker; its default is 2 workers.
// Memory follows the profile whatever that setting says: requests equal limits, so the pod is not
// the first evicted under memory pressure (its sessions live in memory).
Tree resources(const config::Configuration& config) {
  Tree requests = Tree::map(), limits = Tree::map();
  if (config.deployment.generate_cpu_limits) {
    unsigned workers = config.broker.workers ? config.broker.workers : 2;
    requests.set("cpu", Tree::string(std::to_string(workers)));
    limits.set("cpu", Tree::string(std::to_string(workers)));
  }
  auto memory = memory_quantity(config.deployment.memory_profile);
  requests.set("memory", Tree::string(memory));
  limits.set("memory", Tree::string(memory));
  return Tree::map({{"requests", std::move(requests)}, {"limits", std::move(limits)}});
}

// A secret volume's name: readable when the secret's name allows it.
std::string volume_name(const std::string& secret, std::size_t index, const std::set<std::string>& taken) {
  std::string name = "secret-" + secret;
  for (char& c : name)
    if (c == '.') c = '-';
  if (!is_dns_label(name) || taken.contains(name)) name = fmt::format("secret-{}", index);
  return name;
}

Tree container_port(const std::string& name, std::uint16_t port) {
  return Tree::map(
      {{"name", Tree::string(name)}, {"containerPort", Tree::integer(port)}, {"protocol", Tree::string("TCP")}});
}

Tree probe(const std::string& path, std::uint16_t port, int period) {
  return Tree::map({{"httpGet", Tree::map({{"path", Tree::string(path)}, {"port", Tree::integer(port)}})},
                    {"periodSeconds", Tree::integer(period)},
                    {"timeoutSeconds", Tree::integer(5)},
                    {"failureThreshold", Tree::integer(3)}});
}

Tree container(const Scope& scope, Tree mounts) {
  const auto& config = scope.config;
  Tree c = Tree::map({{"name", Tree::string("mqttd")}, {"image", Tree::string(scope.options.image)}});
  Tree args = Tree::sequence({Tree::string("--config"), Tree::string(kConfigMountPath)});
  // Without cardinality.frontend.workers the daemon would start one worker per core of the node,
  // however few CPUs the pod has: the source broker's default of 2, which the CPU request uses.
  if (!config.broker.workers) {
    args.push(Tree::string("--workers"));
    args.push(Tree::string("2"));
  }
  c.set("args", std::move(args));
  Tree ports = Tree::sequence();
  for (const auto& l : config.listeners)
    for (const auto& p : l.ports) ports.push(container_port(port_name(p), p.port));
  auto metrics = config.diagnostics.prometheus_port;
  if (metrics) {
    for (const auto& l : config.listeners)
      for (const auto& p : l.ports)
        if (p.port == metrics)
          throw RenderError(fmt::format("{}: BrokerListener/{} port {} is also the Broker's prometheusPort",
                                        p.location.text(), l.name, p.port));
    ports.push(container_port("metrics", metrics));
  }
  c.set("ports", std::move(ports));
  if (metrics) {
    c.set("livenessProbe", probe("/healthz", metrics, 10));
    c.set("readinessProbe", probe("/readyz", metrics, 5));
  } else {
    scope.warnings.push_back(
        "Broker diagnostics.metrics.prometheusPort is 0: the pod has no liveness or readiness probe");
  }
  c.set("resources", resources(config));
  c.set("securityContext", Tree::map({{"allowPrivilegeEscalation", Tree::boolean(false)},
                                      {"readOnlyRootFilesystem", Tree::boolean(true)},
                                      {"capabilities", Tree::map({{"drop", Tree::sequence({Tree::string("ALL")})}})}}));
  c.set("volumeMounts", std::move(mounts));
  return c;
}

Tree pod_security(const config::Configuration& config) {
  Tree s = Tree::map({{"runAsNonRoot", Tree::boolean(true)},
                      {"runAsUser", Tree::integer(kRunAsUser)},
                      {"runAsGroup", Tree::integer(kRunAsUser)},
                      // Makes the state volume (a PersistentVolume in particular) writable by the user.
                      {"fsGroup", Tree::integer(kRunAsUser)},
                      {"seccompProfile", Tree::map({{"type", Tree::string("RuntimeDefault")}})}});
  // Without capabilities a process binds ports below 1024 only if the pod's network namespace
  // allows it (a "safe" sysctl since Kubernetes 1.22).
  bool low_port = false;
  for (const auto& l : config.listeners)
    for (const auto& p : l.ports) low_port |= p.port < 1024;
  if (low_port)
    s.set("sysctls", Tree::sequence({Tree::map({{"name", Tree::string("net.ipv4.ip_unprivileged_port_start")},
                                                {"value", Tree::string("0")}})}));
  return s;
}

Tree pod_template(const Scope& scope) {
  Tree mounts = Tree::sequence(), volumes = Tree::sequence();
  mounts.push(Tree::map({{"name", Tree::string("config")},
                         {"mountPath", Tree::string(kConfigMountPath)},
                         {"readOnly", Tree::boolean(true)}}));
  volumes.push(Tree::map(
      {{"name", Tree::string("config")}, {"configMap", Tree::map({{"name", Tree::string(scope.config_map_name())}})}}));
  // What the daemon writes (issued certificates, the quickstart issuer's root): the claim of a
  // StatefulSet, else a volume that lives as long as the pod.
  mounts.push(Tree::map({{"name", Tree::string("state")}, {"mountPath", Tree::string(kStateMountPath)}}));
  if (!scope.persistent()) volumes.push(Tree::map({{"name", Tree::string("state")}, {"emptyDir", Tree::map()}}));
  std::set<std::string> taken{"config", "state"};
  std::size_t index = 0;
  for (const auto& [secret, kind] : mounted_folders(scope.config)) {
    auto name = volume_name(secret, index++, taken);
    taken.insert(name);
    mounts.push(Tree::map({{"name", Tree::string(name)},
                           {"mountPath", Tree::string(std::string(kSecretsMountPath) + "/" + secret)},
                           {"readOnly", Tree::boolean(true)}}));
    Tree volume = Tree::map({{"name", Tree::string(name)}});
    folder_source(secret, kind, volume);
    volumes.push(std::move(volume));
  }
  Tree spec = Tree::map();
  // The API token only for a broker that reviews tokens, with the ServiceAccount of rbac.cpp;
  // otherwise none at all, not even the namespace's default account's.
  if (scope.reviews_tokens()) spec.set("serviceAccountName", Tree::string(scope.service_account_name()));
  spec.set("automountServiceAccountToken", Tree::boolean(scope.reviews_tokens()));
  spec.set("securityContext", pod_security(scope.config));
  // The daemon drains its clients within 25 s of SIGTERM.
  spec.set("terminationGracePeriodSeconds", Tree::integer(30));
  spec.set("containers", Tree::sequence({container(scope, std::move(mounts))}));
  spec.set("volumes", std::move(volumes));
  return Tree::map({{"metadata", Tree::map({{"labels", scope.labels()}})}, {"spec", std::move(spec)}});
}

// maxSize (digits and K, M, G, T, P or E, decimal as in AIO) as a Kubernetes quantity, whose
// kilo is a lowercase k.
std::string storage_quantity(const std::string& max_size) {
  std::string q = max_size;
  if (!q.empty() && q.back() == 'K') q.back() = 'k';
  return q;
}

Tree volume_claim(const Scope& scope) {
  const auto& persistence = *scope.config.deployment.persistence;
  // persistentVolumeClaimSpec as given, with what a claim needs and the Broker says: the size.
  Tree spec = Tree::map();
  try {
    if (!persistence.volume_claim_spec.empty())
      spec = Tree::strings_from_yaml(YAML::Load(persistence.volume_claim_spec));
    if (!spec.find("accessModes")) spec.set("accessModes", Tree::sequence({Tree::string("ReadWriteOnce")}));
    Tree& requests = spec["resources"]["requests"];
    if (!requests.find("storage")) requests.set("storage", Tree::string(storage_quantity(persistence.max_size)));
  } catch (const std::logic_error&) {
    throw RenderError("Broker spec.persistence.persistentVolumeClaimSpec: resources.requests must be a map");
  }
  return Tree::map({{"metadata", Tree::map({{"name", Tree::string("state")}})}, {"spec", std::move(spec)}});
}

}  // namespace

Tree workload(const Scope& scope) {
  bool stateful = scope.persistent();
  Tree w = Tree::map(
      {{"apiVersion", Tree::string("apps/v1")}, {"kind", Tree::string(stateful ? "StatefulSet" : "Deployment")}});
  w.set("metadata", scope.metadata(scope.base));
  Tree& spec = w["spec"];
  // One broker: its sessions and retained messages live in this process, so two replicas would
  // be two brokers (cardinality.frontend.replicas is not rendered).
  spec.set("replicas", Tree::integer(1));
  if (stateful) spec.set("serviceName", Tree::string(scope.headless_service_name()));
  spec.set("selector", Tree::map({{"matchLabels", scope.labels()}}));
  // A rolling update would run the old and the new broker side by side, splitting the clients.
  if (!stateful) spec.set("strategy", Tree::map({{"type", Tree::string("Recreate")}}));
  spec.set("template", pod_template(scope));
  if (stateful) spec.set("volumeClaimTemplates", Tree::sequence({volume_claim(scope)}));
  return w;
}

}  // namespace mqttd::k8s
