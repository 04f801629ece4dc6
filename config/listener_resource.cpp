// BrokerListener: serviceName, serviceType and ports, each port with its protocol, references
// and TLS settings (§1 of the reference).
#include <fmt/format.h>

#include "config/readers.hpp"

namespace mqttd::config {
namespace {

PortTls read_tls(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"mode", "certManagerCertificateSpec", "manual"});
  if (!node["mode"]) ctx.fail(node, "missing field 'mode' (Automatic or Manual)");
  PortTls tls;
  tls.mode = enumeration(ctx.child("mode"), node["mode"], {"Automatic", "Manual"}) == "Automatic"
                 ? PortTls::Mode::Automatic
                 : PortTls::Mode::Manual;
  if (tls.mode == PortTls::Mode::Automatic) {
    if (node["manual"]) ctx.child("manual").fail(node["manual"], "only for mode Manual");
    auto spec = node["certManagerCertificateSpec"];
    if (!spec) ctx.fail(node, "mode Automatic needs certManagerCertificateSpec with an issuerRef");
    tls.automatic = read_certificate_spec(ctx.child("certManagerCertificateSpec"), spec);
  } else {
    if (node["certManagerCertificateSpec"])
      ctx.child("certManagerCertificateSpec").fail(node["certManagerCertificateSpec"], "only for mode Automatic");
    auto manual = node["manual"];
    if (!manual) ctx.fail(node, "mode Manual needs manual.secretRef");
    auto mctx = ctx.child("manual");
    expect_map(mctx, manual);
    reject_unknown(mctx, manual, {"secretRef"});
    if (!manual["secretRef"]) mctx.fail(manual, "missing field 'secretRef'");
    tls.manual_secret = object_name(mctx.child("secretRef"), manual["secretRef"]);
  }
  return tls;
}

ListenerPort read_port(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"port", "nodePort", "protocol", "authenticationRef", "authorizationRef", "tls"});
  ListenerPort p;
  p.location = ctx.locate(node);
  if (!node["port"]) ctx.fail(node, "missing field 'port'");
  p.port = static_cast<std::uint16_t>(integer(ctx.child("port"), node["port"], 1, 65535));
  if (auto n = node["nodePort"]) p.node_port = static_cast<std::uint16_t>(integer(ctx.child("nodePort"), n, 1, 65535));
  if (auto n = node["protocol"])
    p.protocol = enumeration(ctx.child("protocol"), n, {"Mqtt", "WebSockets"}) == "Mqtt" ? PortProtocol::Mqtt
                                                                                         : PortProtocol::WebSockets;
  if (auto n = node["authenticationRef"]) p.authentication_ref = object_name(ctx.child("authenticationRef"), n);
  if (auto n = node["authorizationRef"]) {
    p.authorization_ref = object_name(ctx.child("authorizationRef"), n);
    p.authorization_ref_location = ctx.locate(n);
  }
  if (auto n = node["tls"]) p.tls = read_tls(ctx.child("tls"), n);
  return p;
}

}  // namespace

Listener read_listener(const Context& ctx, const std::string& name, const YAML::Node& spec, const Location& where,
                       std::vector<std::string>& warnings) {
  Listener l;
  l.name = name;
  l.location = where;
  if (!spec) throw ConfigError(fmt::format("{}: {}: missing field 'spec'", where.text(), ctx.path()));
  expect_map(ctx, spec);
  reject_unknown(ctx, spec, {"serviceName", "serviceType", "ports"});
  l.service_name = spec["serviceName"] ? object_name(ctx.child("serviceName"), spec["serviceName"]) : name;
  if (auto n = spec["serviceType"])
    l.service_type = enumeration(ctx.child("serviceType"), n, {"ClusterIp", "NodePort", "LoadBalancer"});
  auto ports = spec["ports"];
  if (!ports) ctx.fail(spec, "missing field 'ports'");
  auto pctx = ctx.child("ports");
  expect_sequence(pctx, ports);
  if (ports.size() == 0) pctx.fail(ports, "a listener needs at least one port");
  for (std::size_t i = 0; i < ports.size(); ++i) {
    auto port = read_port(pctx.index(i), ports[i]);
    for (const auto& earlier : l.ports)
      if (earlier.port == port.port)
        pctx.index(i).child("port").fail(
            ports[i]["port"],
            fmt::format("port {} appears twice in this listener (first at {})", port.port, earlier.location.text()));
    if (port.node_port && l.service_type != "NodePort")
      pctx.index(i).child("nodePort").fail(ports[i]["nodePort"], "only for serviceType NodePort");
    // The source broker's Service opens the node port; mqttd creates no Service. The same number
    // as the port needs no warning: the daemon listens there.
    if (port.node_port && *port.node_port != port.port)
      warn(warnings, pctx.index(i).child("nodePort"), ports[i]["nodePort"],
           fmt::format("mqttd creates no Kubernetes Service: it listens on port {} only, not on {} (publish {} "
                       "as {} with the Service, load balancer or container runtime in front of the daemon)",
                       port.port, *port.node_port, port.port, *port.node_port));
    l.ports.push_back(std::move(port));
  }
  return l;
}

}  // namespace mqttd::config
