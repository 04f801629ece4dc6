#include "k8s/render.hpp"

#include <fmt/format.h>

#include "k8s/objects.hpp"

namespace mqttd::k8s {

Tree Scope::labels() const {
  return Tree::map(
      {{"app.kubernetes.io/name", Tree::string("mqttd")}, {"app.kubernetes.io/instance", Tree::string(instance)}});
}

Tree Scope::metadata(const std::string& name) const {
  return Tree::map(
      {{"name", Tree::string(name)}, {"namespace", Tree::string(options.namespace_name)}, {"labels", labels()}});
}

std::string port_name(const config::ListenerPort& port) {
  bool tls = port.tls.has_value();
  const char* scheme =
      port.protocol == config::PortProtocol::WebSockets ? (tls ? "wss" : "ws") : (tls ? "mqtts" : "mqtt");
  return fmt::format("{}-{}", scheme, port.port);
}

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A label value: at most 63 of [-_.a-zA-Z0-9], starting and ending with a letter or digit.
bool is_label_value(const std::string& s) {
  auto alnum = [](char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); };
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

}  // namespace

bool is_dns_label(const std::string& s) {
  if (s.empty() || s.size() > 63 || !lower_alnum(s.front()) || !lower_alnum(s.back())) return false;
  for (char c : s)
    if (!lower_alnum(c) && c != '-') return false;
  return true;
}

bool is_service_name(const std::string& s) { return is_dns_label(s) && s.front() >= 'a' && s.front() <= 'z'; }

bool is_config_map_key(const std::string& s) {
  if (s.empty() || s.size() > 253 || s == "." || s == "..") return false;
  for (char c : s)
    if (!lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '-' && c != '_' && c != '.') return false;
  return true;
}

Rendered render(const config::Configuration& config, const RenderOptions& options,
                const std::vector<InputFile>& inputs) {
  Rendered out;
  Scope scope{config, options, config.deployment.broker_name, "mqttd-" + config.deployment.broker_name, out.warnings};
  if (!is_dns_label(options.namespace_name))
    throw RenderError(
        fmt::format("namespace '{}' is not a valid namespace name (a DNS label)", options.namespace_name));
  if (!is_label_value(scope.instance))
    throw RenderError(fmt::format("Broker name '{}' cannot be a label value (at most 63 characters)", scope.instance));
  // A StatefulSet's pods carry "<name>-<revision hash>" in a label, which must fit 63 characters.
  std::size_t max_base = scope.persistent() ? 52 : 63;
  if (scope.base.size() + std::string_view("-metrics").size() > 63 || scope.base.size() > max_base)
    throw RenderError(
        fmt::format("Broker name '{}' is too long for the objects' names (mqttd-<name>-metrics must fit 63 characters)",
                    scope.instance));
  if (config.listeners.empty()) out.warnings.push_back("no BrokerListener: the broker would serve no port");

  std::vector<Tree> documents;
  documents.push_back(config_map(scope, inputs));
  for (auto& s : services(scope)) documents.push_back(std::move(s));
  for (auto& o : rbac(scope)) documents.push_back(std::move(o));
  documents.push_back(workload(scope));
  for (std::size_t i = 0; i < documents.size(); ++i) {
    if (i > 0) out.yaml += "---\n";
    out.yaml += to_document(documents[i]);
  }
  return out;
}

}  // namespace mqttd::k8s
