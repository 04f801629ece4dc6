// BrokerListener: serviceName, serviceType and ports, each port with its protocol, references,
// TLS settings (§1 of the reference) and, ours, its PROXY protocol settings.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <cstring>

#include "config/readers.hpp"

namespace mqttd::config {
namespace {

std::string host_of(const std::array<std::uint8_t, 16>& address, bool ipv4) {
  char out[INET6_ADDRSTRLEN] = "";
  if (ipv4)
    ::inet_ntop(AF_INET, address.data() + 12, out, sizeof(out));
  else
    ::inet_ntop(AF_INET6, address.data(), out, sizeof(out));
  return out;
}

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

// "10.0.0.0/8", "2001:db8::/32", or one address ("192.0.2.7", a /32 or /128). Host bits must be
// zero: "10.0.0.1/8" is refused rather than read as 10.0.0.0/8, since it is ambiguous whether the
// operator meant one address or the block.
AddressBlock address_block(const Context& ctx, const YAML::Node& node) {
  AddressBlock block;
  block.text = text(ctx, node);
  auto slash = block.text.find('/');
  std::string host = block.text.substr(0, slash);
  unsigned char bytes[16] = {};
  unsigned max_prefix = 0;
  if (::inet_pton(AF_INET, host.c_str(), bytes) == 1) {
    block.address[10] = block.address[11] = 0xFF;
    std::memcpy(block.address.data() + 12, bytes, 4);
    max_prefix = 32;
  } else if (::inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    std::memcpy(block.address.data(), bytes, 16);
    max_prefix = 128;
  } else {
    ctx.fail(node, fmt::format("'{}' is not an address block (CIDR such as 10.0.0.0/8 or 2001:db8::/32)", block.text));
  }
  unsigned prefix = max_prefix;
  if (slash != std::string::npos) {
    auto digits = block.text.substr(slash + 1);
    bool ok = !digits.empty() && digits.size() <= 3 && digits.find_first_not_of("0123456789") == std::string::npos;
    if (ok) prefix = static_cast<unsigned>(std::stoul(digits));
    if (!ok || prefix > max_prefix)
      ctx.fail(node, fmt::format("'{}': the prefix length must be 0..{}", block.text, max_prefix));
  }
  block.prefix = prefix + (128 - max_prefix);
  AddressBlock network = block;
  network.address = {};
  for (unsigned i = 0; i < 16; ++i) {
    unsigned bits = block.prefix > i * 8 ? std::min(8u, block.prefix - i * 8) : 0;
    network.address[i] = static_cast<std::uint8_t>(block.address[i] & (bits ? 0xFF << (8 - bits) : 0));
  }
  if (network.address != block.address)
    ctx.fail(node, fmt::format("'{}' has host bits set (the block's address ends in zero bits: did you mean {}?)",
                               block.text, host_of(network.address, max_prefix == 32) + "/" + std::to_string(prefix)));
  return block;
}

ProxyProtocol read_proxy_protocol(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"mode", "trustedSources", "clientCertificates"});
  ProxyProtocol proxy;
  if (auto n = node["mode"]) {
    auto mode = enumeration(ctx.child("mode"), n, {"Disabled", "Optional", "Required"});
    proxy.mode = mode == "Disabled"   ? ProxyProtocol::Mode::Disabled
                 : mode == "Optional" ? ProxyProtocol::Mode::Optional
                                      : ProxyProtocol::Mode::Required;
  }
  if (auto n = node["trustedSources"]) {
    auto sctx = ctx.child("trustedSources");
    expect_sequence(sctx, n);
    for (std::size_t i = 0; i < n.size(); ++i) proxy.trusted_sources.push_back(address_block(sctx.index(i), n[i]));
  }
  // Fail closed: a header is believed only from a listed source, so a port that reads headers
  // with nobody listed is a mistake, never "everyone".
  if (proxy.enabled() && proxy.trusted_sources.empty())
    ctx.fail(node, "mode Optional or Required needs trustedSources: the load balancers' addresses (CIDR)");
  if (auto n = node["clientCertificates"]) {
    auto cctx = ctx.child("clientCertificates");
    if (enumeration(cctx, n, {"Ignored", "Trusted"}) == "Trusted") {
      proxy.client_certificates = ProxyProtocol::ClientCertificates::Trusted;
      // Fail closed: a certificate is believed only from a header every connection must have,
      // sent by a listed balancer. In Optional mode a direct client is served without a header,
      // which is safe, but the setting would read as if the port authenticated by the balancer.
      if (proxy.mode != ProxyProtocol::Mode::Required || proxy.trusted_sources.empty())
        cctx.fail(n,
                  "Trusted needs mode Required and trustedSources: only a header that every connection must "
                  "send, from a listed load balancer, may vouch for a client certificate");
    }
  }
  return proxy;
}

ListenerPort read_port(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node,
                 {"port", "nodePort", "protocol", "authenticationRef", "authorizationRef", "tls", "proxyProtocol"});
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
  if (auto n = node["proxyProtocol"]) {
    p.proxy_protocol = read_proxy_protocol(ctx.child("proxyProtocol"), n);
    // A TLS port verifies client certificates itself, against the X509 method's CAs: a second
    // source of certificates would make it unclear which one authenticates.
    if (p.tls && p.proxy_protocol.client_certificates == ProxyProtocol::ClientCertificates::Trusted)
      ctx.child("proxyProtocol")
          .child("clientCertificates")
          .fail(n["clientCertificates"],
                "Trusted is for a port without tls behind a TLS-terminating load balancer; this port has tls "
                "and verifies client certificates itself");
  }
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
