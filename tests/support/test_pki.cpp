#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/support/https_test_server.hpp"
#include "tls/certificate_authority.hpp"

namespace mqttd::test {

TestPki::TestPki() {
  std::string pattern = (std::filesystem::temp_directory_path() / "mqttd-pki-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  folder_ = pattern;
}

TestPki::~TestPki() {
  std::error_code ec;
  std::filesystem::remove_all(folder_, ec);
}

std::string TestPki::write(const std::string& name, const std::string& text) {
  std::string path = folder_ + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TestPki::Identity TestPki::make_ca(const std::string& name) {
  auto key = tls::generate_key(config::KeyAlgorithm::Ec256);
  auto cert = tls::issue_certificate({name, {}, {}, true, std::chrono::hours(24)}, key.get(), {nullptr, key.get()});
  Identity id{tls::to_pem(cert.get()), tls::to_pem(key.get()), {}, {}};
  id.cert_file = write(name + ".crt", id.cert_pem);
  id.key_file = write(name + ".key", id.key_pem);
  return id;
}

TestPki::Identity TestPki::make_leaf(const std::string& name, const Identity& ca, std::vector<std::string> dns_names,
                                     std::vector<std::string> ip_addresses) {
  auto ca_cert = tls::read_certificates(ca.cert_pem);
  auto ca_key = tls::read_private_key(ca.key_pem);
  auto key = tls::generate_key(config::KeyAlgorithm::Ec256);
  auto cert =
      tls::issue_certificate({name, std::move(dns_names), std::move(ip_addresses), false, std::chrono::hours(1)},
                             key.get(), {ca_cert.front().get(), ca_key.get()});
  Identity id{tls::to_pem(cert.get()), tls::to_pem(key.get()), {}, {}};
  id.cert_file = write(name + ".crt", id.cert_pem);
  id.key_file = write(name + ".key", id.key_pem);
  return id;
}

}  // namespace mqttd::test
