// One Service per BrokerListener (its serviceName, type and ports), the metrics Service that
// Prometheus finds by its annotations, and the headless Service a StatefulSet needs.
#include <fmt/format.h>

#include <map>

#include "k8s/objects.hpp"

namespace mqttd::k8s {
namespace {

// The broker's serviceType spelling (ClusterIp) to the Service API's (ClusterIP).
std::string service_type(const std::string& listener_type) {
  return listener_type == "ClusterIp" ? "ClusterIP" : listener_type;
}

Tree service_port(const std::string& name, std::uint16_t port) {
  return Tree::map({{"name", Tree::string(name)},
                    {"port", Tree::integer(port)},
                    {"targetPort", Tree::integer(port)},
                    {"protocol", Tree::string("TCP")}});
}

Tree service(const Scope& scope, const std::string& name, const std::string& type, Tree ports) {
  Tree s = Tree::map({{"apiVersion", Tree::string("v1")}, {"kind", Tree::string("Service")}});
  s.set("metadata", scope.metadata(name));
  Tree& spec = s["spec"];
  spec.set("type", Tree::string(type));
  spec.set("selector", scope.labels());
  spec.set("ports", std::move(ports));
  return s;
}

// Every port the pod serves: the listeners' and the metrics port.
Tree all_ports(const Scope& scope) {
  Tree ports = Tree::sequence();
  for (const auto& l : scope.config.listeners)
    for (const auto& p : l.ports) ports.push(service_port(port_name(p), p.port));
  if (auto metrics = scope.config.diagnostics.prometheus_port) ports.push(service_port("metrics", metrics));
  return ports;
}

}  // namespace

std::vector<Tree> services(const Scope& scope) {
  std::vector<Tree> out;
  std::map<std::string, std::string> owners;  // Service name → who asked for it
  auto claim = [&](const std::string& name, const std::string& owner) {
    auto [it, fresh] = owners.emplace(name, owner);
    if (!fresh) throw RenderError(fmt::format("{} and {} both need a Service named '{}'", it->second, owner, name));
  };
  for (const auto& l : scope.config.listeners) {
    auto where = fmt::format("{}: BrokerListener/{}.spec.serviceName", l.location.text(), l.name);
    if (!is_service_name(l.service_name))
      throw RenderError(
          fmt::format("{}: '{}' cannot be a Service name (at most 63 lowercase letters, digits and "
                      "'-', starting with a letter)",
                      where, l.service_name));
    claim(l.service_name, "BrokerListener '" + l.name + "'");
    auto type = service_type(l.service_type);
    Tree ports = Tree::sequence();
    for (const auto& p : l.ports) {
      Tree& port = ports.push(service_port(port_name(p), p.port));
      // The configuration allows nodePort only on a NodePort listener.
      if (p.node_port && type != "ClusterIP") {
        port.set("nodePort", Tree::integer(*p.node_port));
        if (*p.node_port < 30000 || *p.node_port > 32767)
          scope.warnings.push_back(fmt::format(
              "{}: BrokerListener/{} port {}: nodePort {} is outside Kubernetes' default service-node-port-range "
              "30000-32767",
              p.location.text(), l.name, p.port, *p.node_port));
      }
    }
    out.push_back(service(scope, l.service_name, type, std::move(ports)));
  }
  if (auto metrics = scope.config.diagnostics.prometheus_port) {
    claim(scope.metrics_service_name(), "the metrics port");
    Tree s =
        service(scope, scope.metrics_service_name(), "ClusterIP", Tree::sequence({service_port("metrics", metrics)}));
    s["metadata"].set("annotations", Tree::map({{"prometheus.io/scrape", Tree::string("true")},
                                                {"prometheus.io/port", Tree::string(std::to_string(metrics))},
                                                {"prometheus.io/path", Tree::string("/metrics")}}));
    out.push_back(std::move(s));
  }
  if (scope.persistent()) {
    // The StatefulSet's governing Service: gives the pod a stable DNS name, balances nothing.
    claim(scope.headless_service_name(), "the StatefulSet");
    Tree s = service(scope, scope.headless_service_name(), "ClusterIP", all_ports(scope));
    s["spec"].set("clusterIP", Tree::string("None"));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace mqttd::k8s
