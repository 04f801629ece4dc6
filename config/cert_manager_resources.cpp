// The cert-manager kinds whose part the daemon plays: Issuer and ClusterIssuer (selfSigned or
// ca), Certificate, and the certManagerCertificateSpec of a BrokerListener port.
#include <arpa/inet.h>
#include <fmt/format.h>

#include "config/readers.hpp"

namespace mqttd::config {
namespace {

std::vector<std::string> ip_addresses(const Context& ctx, const YAML::Node& node) {
  auto out = string_list(ctx, node);
  for (std::size_t i = 0; i < out.size(); ++i) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, out[i].c_str(), buf) != 1 && ::inet_pton(AF_INET6, out[i].c_str(), buf) != 1)
      ctx.index(i).fail(node[i], fmt::format("'{}' is not an IPv4 or IPv6 address", out[i]));
  }
  return out;
}

std::vector<std::string> dns_names(const Context& ctx, const YAML::Node& node) {
  auto out = string_list(ctx, node);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& n = out[i];
    bool ok = !n.empty() && n.size() <= 253;
    for (char c : n) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*');
    if (!ok) ctx.index(i).fail(node[i], fmt::format("'{}' is not a DNS name", n));
  }
  return out;
}

void read_durations(const Context& ctx, const YAML::Node& node, CertificateSpec& spec) {
  if (auto n = node["duration"]) {
    spec.duration = duration(ctx.child("duration"), n);
    if (spec.duration < std::chrono::seconds(1)) ctx.child("duration").fail(n, "must be at least 1s");
  }
  if (auto n = node["renewBefore"]) {
    spec.renew_before = duration(ctx.child("renewBefore"), n);
    if (*spec.renew_before >= spec.duration) ctx.child("renewBefore").fail(n, "must be shorter than the duration");
  }
}

bool rotation(const Context& ctx, const YAML::Node& node) {
  return enumeration(ctx, node, {"Always", "Never"}) == "Always";
}

}  // namespace

const char* to_string(KeyAlgorithm a) {
  switch (a) {
    case KeyAlgorithm::Ec256:
      return "Ec256";
    case KeyAlgorithm::Ec384:
      return "Ec384";
    case KeyAlgorithm::Ec521:
      return "Ec521";
    case KeyAlgorithm::Ed25519:
      return "Ed25519";
    case KeyAlgorithm::Rsa2048:
      return "Rsa2048";
    case KeyAlgorithm::Rsa4096:
      return "Rsa4096";
    case KeyAlgorithm::Rsa8192:
      return "Rsa8192";
  }
  return "?";
}

IssuerRef read_issuer_ref(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"name", "kind", "group"});
  IssuerRef ref;
  if (!node["name"]) ctx.fail(node, "missing field 'name'");
  ref.name = object_name(ctx.child("name"), node["name"]);
  if (!node["kind"]) ctx.fail(node, "missing field 'kind' (Issuer or ClusterIssuer)");
  ref.kind = enumeration(ctx.child("kind"), node["kind"], {"Issuer", "ClusterIssuer"});
  if (auto g = node["group"]) ref.group = enumeration(ctx.child("group"), g, {"cert-manager.io"});
  return ref;
}

CertificateSpec read_certificate_spec(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  reject_unknown(ctx, node, {"issuerRef", "duration", "renewBefore", "secretName", "privateKey", "san"});
  CertificateSpec spec;
  if (!node["issuerRef"]) ctx.fail(node, "missing field 'issuerRef'");
  spec.issuer = read_issuer_ref(ctx.child("issuerRef"), node["issuerRef"]);
  read_durations(ctx, node, spec);
  if (auto n = node["secretName"]) spec.secret_name = object_name(ctx.child("secretName"), n);
  if (auto key = node["privateKey"]) {
    auto kctx = ctx.child("privateKey");
    expect_map(kctx, key);
    reject_unknown(kctx, key, {"algorithm", "rotationPolicy"});
    if (auto a = key["algorithm"]) {
      auto name = enumeration(kctx.child("algorithm"), a,
                              {"Ec256", "Ec384", "Ec521", "Ed25519", "Rsa2048", "Rsa4096", "Rsa8192"});
      for (auto alg : {KeyAlgorithm::Ec256, KeyAlgorithm::Ec384, KeyAlgorithm::Ec521, KeyAlgorithm::Ed25519,
                       KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa4096, KeyAlgorithm::Rsa8192})
        if (name == to_string(alg)) spec.algorithm = alg;
    }
    if (auto r = key["rotationPolicy"]) spec.rotate_key = rotation(kctx.child("rotationPolicy"), r);
  }
  if (auto san = node["san"]) {
    auto sctx = ctx.child("san");
    expect_map(sctx, san);
    reject_unknown(sctx, san, {"dns", "ip"});
    if (auto d = san["dns"]) spec.dns_names = dns_names(sctx.child("dns"), d);
    if (auto i = san["ip"]) spec.ip_addresses = ip_addresses(sctx.child("ip"), i);
  }
  return spec;
}

Issuer read_issuer(const Context& ctx, const std::string& name, const std::string& kind, const YAML::Node& spec,
                   std::vector<std::string>& warnings) {
  Issuer issuer;
  issuer.name = name;
  issuer.kind = kind;
  expect_map(ctx, spec);
  static constexpr std::string_view kUnsupported[] = {"acme", "vault", "venafi"};
  for (auto other : kUnsupported)
    if (spec[std::string(other)])
      ctx.child(other).fail(spec[std::string(other)],
                            fmt::format("issuer type '{}' is not supported (supported: selfSigned, ca)", other));
  reject_unknown(ctx, spec, {"selfSigned", "ca"});
  if (spec["selfSigned"] && spec["ca"]) ctx.fail(spec, "give one of selfSigned and ca, not both");
  if (auto self = spec["selfSigned"]) {
    issuer.self_signed = true;
    // `selfSigned: {}` as a rule; its one field in cert-manager is not implemented.
    if (!self.IsNull()) {
      auto sctx = ctx.child("selfSigned");
      expect_map(sctx, self);
      reject_unknown(sctx, self, {"crlDistributionPoints"});
      if (auto crl = self["crlDistributionPoints"];
          crl && !string_list(sctx.child("crlDistributionPoints"), crl).empty())
        warn(warnings, sctx.child("crlDistributionPoints"), crl,
             "the certificates mqttd issues carry no CRL distribution points (mqttd publishes no revocation list)");
    }
  } else if (auto ca = spec["ca"]) {
    auto cctx = ctx.child("ca");
    expect_map(cctx, ca);
    reject_unknown(cctx, ca, {"secretName"});
    if (!ca["secretName"]) cctx.fail(ca, "missing field 'secretName'");
    issuer.ca_secret = object_name(cctx.child("secretName"), ca["secretName"]);
  } else {
    ctx.fail(spec, "an issuer needs selfSigned: {} or ca: {secretName: ...}");
  }
  return issuer;
}

Certificate read_certificate(const Context& ctx, const std::string& name, const YAML::Node& spec,
                             std::vector<std::string>& warnings) {
  Certificate cert;
  cert.name = name;
  expect_map(ctx, spec);
  reject_unknown(ctx, spec,
                 {"commonName", "isCA", "secretName", "issuerRef", "duration", "renewBefore", "dnsNames", "ipAddresses",
                  "privateKey"});
  auto& s = cert.spec;
  s.algorithm = KeyAlgorithm::Rsa2048;  // cert-manager's default for a Certificate
  if (!spec["secretName"]) ctx.fail(spec, "missing field 'secretName'");
  s.secret_name = object_name(ctx.child("secretName"), spec["secretName"]);
  if (!spec["issuerRef"]) ctx.fail(spec, "missing field 'issuerRef'");
  s.issuer = read_issuer_ref(ctx.child("issuerRef"), spec["issuerRef"]);
  if (auto n = spec["commonName"]) s.common_name = text(ctx.child("commonName"), n);
  if (auto n = spec["isCA"]) s.is_ca = boolean(ctx.child("isCA"), n);
  read_durations(ctx, spec, s);
  if (auto n = spec["dnsNames"]) s.dns_names = dns_names(ctx.child("dnsNames"), n);
  if (auto n = spec["ipAddresses"]) s.ip_addresses = ip_addresses(ctx.child("ipAddresses"), n);
  if (s.common_name.empty() && s.dns_names.empty() && s.ip_addresses.empty())
    ctx.fail(spec, "a Certificate needs a commonName, dnsNames or ipAddresses");
  if (auto key = spec["privateKey"]) {
    auto kctx = ctx.child("privateKey");
    expect_map(kctx, key);
    reject_unknown(kctx, key, {"algorithm", "size", "rotationPolicy", "encoding"});
    std::string algorithm = "RSA";
    if (auto a = key["algorithm"]) algorithm = enumeration(kctx.child("algorithm"), a, {"RSA", "ECDSA", "Ed25519"});
    std::uint64_t size = 0;
    if (auto z = key["size"]) size = integer(kctx.child("size"), z, 0, 8192);
    auto bad_size = [&](std::string_view allowed) {
      kctx.child("size").fail(key["size"],
                              fmt::format("size {} is not valid for {} (one of {})", size, algorithm, allowed));
    };
    if (algorithm == "ECDSA") {
      s.algorithm = size == 0 || size == 256 ? KeyAlgorithm::Ec256
                    : size == 384            ? KeyAlgorithm::Ec384
                    : size == 521            ? KeyAlgorithm::Ec521
                                             : (bad_size("256, 384, 521"), KeyAlgorithm::Ec256);
    } else if (algorithm == "RSA") {
      s.algorithm = size == 0 || size == 2048 ? KeyAlgorithm::Rsa2048
                    : size == 4096            ? KeyAlgorithm::Rsa4096
                    : size == 8192            ? KeyAlgorithm::Rsa8192
                                              : (bad_size("2048, 4096, 8192"), KeyAlgorithm::Rsa2048);
    } else {
      if (size != 0) bad_size("none");
      s.algorithm = KeyAlgorithm::Ed25519;
    }
    if (auto r = key["rotationPolicy"]) s.rotate_key = rotation(kctx.child("rotationPolicy"), r);
    if (auto e = key["encoding"]; e && enumeration(kctx.child("encoding"), e, {"PKCS1", "PKCS8"}) == "PKCS1")
      warn(warnings, kctx.child("encoding"), e,
           "mqttd writes every private key in PKCS#8 (BEGIN PRIVATE KEY), not PKCS#1; OpenSSL, Go and most TLS "
           "libraries read both");
  }
  return cert;
}

}  // namespace mqttd::config
