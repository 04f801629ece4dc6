// The client certificate a load balancer vouches for in a PROXY protocol v2 header
// (listener/proxy_client_certificate.*), for ports with proxyProtocol.clientCertificates: Trusted:
// which headers give one, the CN's bounds, and the RFC 4514 escaping that keeps a CN from adding
// RDNs to the DN that X509 attribute entries are matched on.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "authn/authenticator.hpp"
#include "listener/proxy_client_certificate.hpp"

using namespace mqttd::proxy_protocol;
using mqttd::config::AuthenticationMethod;

namespace {

Header v2_header(std::uint8_t client, std::uint32_t verify, std::string cn) {
  Header h;
  h.version = 2;
  h.source = Endpoint{};
  TlsInfo tls;
  tls.client = client;
  tls.verify = verify;
  tls.common_name = std::move(cn);
  tls.version = "TLSv1.3";
  h.tls = tls;
  return h;
}

}  // namespace

TEST_CASE("proxy client certificate: only a verified certificate with a CN") {
  auto accepted = client_certificate_of(v2_header(0x05, 0, "smart-fan"));
  REQUIRE(accepted.status == ClientCertificate::Status::Accepted);
  CHECK(accepted.certificate.subjects == std::vector<std::string>{"CN=smart-fan"});
  CHECK(accepted.certificate.common_name == "smart-fan");
  CHECK(accepted.certificate.chain_pem.empty());
  // No expiry from the balancer: far in the future, and representable (no overflow when the
  // connection computes the time left).
  CHECK(accepted.certificate.not_after > std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100));
  CHECK(accepted.certificate.not_after - std::chrono::system_clock::now() > std::chrono::seconds(0));

  // PP2_CLIENT_CERT_CONN or PP2_CLIENT_CERT_SESS, with PP2_CLIENT_SSL.
  CHECK(client_certificate_of(v2_header(0x03, 0, "smart-fan")).status == ClientCertificate::Status::Accepted);
  CHECK(client_certificate_of(v2_header(0x07, 0, "smart-fan")).status == ClientCertificate::Status::Accepted);
  CHECK(client_certificate_of(v2_header(0x01, 0, "smart-fan")).status == ClientCertificate::Status::None);
  CHECK(client_certificate_of(v2_header(0x04, 0, "smart-fan")).status == ClientCertificate::Status::None);  // no SSL
  CHECK(client_certificate_of(v2_header(0x00, 0, "smart-fan")).status == ClientCertificate::Status::None);
  // verify != 0: the balancer did not verify it.
  CHECK(client_certificate_of(v2_header(0x05, 1, "smart-fan")).status == ClientCertificate::Status::None);
  CHECK(client_certificate_of(v2_header(0x05, 0x80000000u, "smart-fan")).status == ClientCertificate::Status::None);
  // No CN.
  CHECK(client_certificate_of(v2_header(0x05, 0, "")).status == ClientCertificate::Status::None);
  // No SSL TLV, a LOCAL command, a v1 header.
  Header none = v2_header(0x05, 0, "smart-fan");
  none.tls.reset();
  CHECK(client_certificate_of(none).status == ClientCertificate::Status::None);
  Header local = v2_header(0x05, 0, "smart-fan");
  local.local = true;
  CHECK(client_certificate_of(local).status == ClientCertificate::Status::None);
  Header v1 = v2_header(0x05, 0, "smart-fan");
  v1.version = 1;
  CHECK(client_certificate_of(v1).status == ClientCertificate::Status::None);
}

TEST_CASE("proxy client certificate: the CN's bounds") {
  CHECK(common_name_problem("smart-fan") == nullptr);
  CHECK(common_name_problem("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x92") == nullptr);  // é € and a 4-byte emoji
  CHECK(common_name_problem(std::string(64, 'a')) == nullptr);
  CHECK(std::string(common_name_problem(std::string(65, 'a'))) == "the certificate's CN is longer than 64 bytes");
  CHECK(common_name_problem(std::string(32, 'a') + std::string(16, '\xC3')) != nullptr);
  for (std::string bad : {std::string("a\xFF"), std::string("\xC3"), std::string("\xC0\xAF"),  // overlong '/'
                          std::string("\xE0\x80\xAF"), std::string("\xED\xA0\x80"),            // surrogate
                          std::string("\xF4\x90\x80\x80"), std::string("\x80"), std::string("\xE2\x82")}) {
    INFO(bad);
    CHECK(std::string(common_name_problem(bad)) == "the certificate's CN is not valid UTF-8");
  }
  for (std::string bad : {std::string("a\nb"), std::string("a\0b", 3), std::string("a\x7F"), std::string("a\xC2\x85"),
                          std::string("\x1B[31m")}) {
    INFO(bad);
    CHECK(std::string(common_name_problem(bad)) == "the certificate's CN has a control character");
  }
  auto refused = client_certificate_of(v2_header(0x05, 0, "evil\r\nevent=forged"));
  CHECK(refused.status == ClientCertificate::Status::Refused);
  CHECK(std::string(refused.reason) == "the certificate's CN has a control character");
  CHECK(refused.certificate.subjects.empty());
  CHECK(client_certificate_of(v2_header(0x05, 0, std::string(65, 'x'))).status == ClientCertificate::Status::Refused);
  // Not verified: not looked at, not refused.
  CHECK(client_certificate_of(v2_header(0x05, 2, std::string(65, 'x'))).status == ClientCertificate::Status::None);
}

TEST_CASE("proxy client certificate: RFC 4514 escaping") {
  CHECK(rfc4514_value("smart-fan") == "smart-fan");
  CHECK(rfc4514_value("a,OU=admins") == "a\\,OU\\=admins");
  CHECK(rfc4514_value("a+OU=admins") == "a\\+OU\\=admins");
  CHECK(rfc4514_value("back\\slash") == "back\\\\slash");
  CHECK(rfc4514_value("\"q\";<x>") == "\\\"q\\\"\\;\\<x\\>");
  CHECK(rfc4514_value("#hash") == "\\#hash");
  CHECK(rfc4514_value("a#b") == "a#b");
  CHECK(rfc4514_value(" padded ") == "\\ padded\\ ");
  CHECK(rfc4514_value("caf\xC3\xA9") == "caf\xC3\xA9");
  auto cert = client_certificate_of(v2_header(0x05, 0, "a,OU=admins"));
  REQUIRE(cert.status == ClientCertificate::Status::Accepted);
  CHECK(cert.certificate.subjects == std::vector<std::string>{"CN=a\\,OU\\=admins"});
  CHECK(cert.certificate.common_name == "a,OU=admins");
  // The DN compares as one CN, never as a CN and an OU.
  CHECK(mqttd::authn::normalize_dn(cert.certificate.subjects[0]) == "CN=a,OU=admins\n");
  CHECK(mqttd::authn::normalize_dn(cert.certificate.subjects[0]) != mqttd::authn::normalize_dn("CN=a, OU=admins"));
  CHECK(mqttd::authn::normalize_dn(cert.certificate.subjects[0]) != mqttd::authn::normalize_dn("OU=admins, CN=a"));
}

TEST_CASE("proxy client certificate: X509 authentication and its attribute entries") {
  mqttd::config::Authentication resource;
  resource.name = "lb";
  AuthenticationMethod x509;
  x509.kind = AuthenticationMethod::Kind::X509;
  x509.trusted_client_ca = "client-ca";  // not used for these certificates, and need not exist
  x509.x509_attributes = {{"fan", "CN = smart-fan", {{"building", "17"}}},
                          {"admins", "CN = a, OU = admins", {{"role", "admin"}}}};
  resource.methods = {x509};
  auto authenticator = mqttd::authn::Authenticator::create(resource, "/nonexistent-mqttd-secrets");
  CHECK(authenticator->problems().empty());

  auto fan = client_certificate_of(v2_header(0x05, 0, "smart-fan")).certificate;
  mqttd::authn::Credentials c{"fan", std::nullopt, std::nullopt, std::nullopt, std::nullopt, &fan};
  auto r = authenticator->authenticate(c);
  CHECK(r.outcome == mqttd::authn::Result::Outcome::Accepted);
  CHECK(r.principal.username == "smart-fan");
  CHECK(r.principal.attributes == std::map<std::string, std::string>{{"building", "17"}});

  for (std::string smuggler : {"a,OU=admins", "a+OU=admins", "smart-fan,OU=x", "smart-fan+CN=smart-fan"}) {
    INFO(smuggler);
    auto cert = client_certificate_of(v2_header(0x05, 0, smuggler)).certificate;
    c.certificate = &cert;
    r = authenticator->authenticate(c);
    CHECK(r.outcome == mqttd::authn::Result::Outcome::Accepted);
    CHECK(r.principal.username == smuggler);
    CHECK(r.principal.attributes.empty());
  }
}
