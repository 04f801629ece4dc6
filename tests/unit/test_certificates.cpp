// Issuing with OpenSSL's APIs: chains that verify, each key algorithm, and the checks that
// guard a port's certificate files.
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tls/certificate_authority.hpp"
#include "tls/tls_credentials.hpp"

using namespace mqttd::tls;
using mqttd::config::KeyAlgorithm;

namespace {

bool verifies(X509* leaf, X509* root, const std::vector<X509*>& intermediates, const char* host) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root);
  STACK_OF(X509)* chain = sk_X509_new_null();
  for (auto* c : intermediates) sk_X509_push(chain, c);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, chain);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);
  return ok;
}

std::string temp_folder() {
  auto path = std::filesystem::temp_directory_path() / ("mqttd-unit-certs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(path);
  return path.string();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("a root, an intermediate and a server certificate that verify") {
  auto root_key = generate_key(KeyAlgorithm::Ec256);
  auto root = issue_certificate({"Root", {}, {}, true, std::chrono::hours(24)}, root_key.get(),
                                Signer{nullptr, root_key.get()});
  auto mid_key = generate_key(KeyAlgorithm::Ec256);
  auto mid = issue_certificate({"Intermediate", {}, {}, true, std::chrono::hours(24)}, mid_key.get(),
                               Signer{root.get(), root_key.get()});
  auto leaf_key = generate_key(KeyAlgorithm::Ec256);
  auto leaf = issue_certificate({"", {"mqtts-endpoint", "localhost"}, {"127.0.0.1"}, false, std::chrono::hours(1)},
                                leaf_key.get(), Signer{mid.get(), mid_key.get()});
  CHECK(subject_text(leaf.get()) == "CN=mqtts-endpoint");
  CHECK(verifies(leaf.get(), root.get(), {mid.get()}, "localhost"));
  CHECK_FALSE(verifies(leaf.get(), root.get(), {mid.get()}, "elsewhere.example"));
  auto other_key = generate_key(KeyAlgorithm::Ec256);
  auto other_root = issue_certificate({"Other", {}, {}, true, std::chrono::hours(24)}, other_key.get(),
                                      Signer{nullptr, other_key.get()});
  CHECK_FALSE(verifies(leaf.get(), other_root.get(), {mid.get()}, "localhost"));
  auto expiry = not_after(leaf.get()) - std::chrono::system_clock::now();
  CHECK(expiry > std::chrono::minutes(59));
  CHECK(expiry <= std::chrono::hours(1));
}

TEST_CASE("every key algorithm issues a self-signed certificate") {
  for (auto alg :
       {KeyAlgorithm::Ec256, KeyAlgorithm::Ec384, KeyAlgorithm::Ec521, KeyAlgorithm::Ed25519, KeyAlgorithm::Rsa2048}) {
    INFO(mqttd::config::to_string(alg));
    auto key = generate_key(alg);
    auto cert = issue_certificate({"self", {"localhost"}, {}, false, std::chrono::hours(1)}, key.get(),
                                  Signer{nullptr, key.get()});
    CHECK(verifies(cert.get(), cert.get(), {}, "localhost"));
    auto round_trip = read_certificates(to_pem(cert.get()));
    REQUIRE(round_trip.size() == 1);
    CHECK(X509_cmp(round_trip[0].get(), cert.get()) == 0);
    auto key_back = read_private_key(to_pem(key.get()));
    REQUIRE(key_back);
    CHECK(EVP_PKEY_eq(key_back.get(), key.get()) == 1);
  }
}

TEST_CASE("server credentials are checked before they are served") {
  auto folder = temp_folder();
  auto ec_key = generate_key(KeyAlgorithm::Ec256);
  auto rsa_key = generate_key(KeyAlgorithm::Rsa2048);
  auto rsa_root = issue_certificate({"RSA root", {}, {}, true, std::chrono::hours(1)}, rsa_key.get(),
                                    Signer{nullptr, rsa_key.get()});
  auto ec_leaf = issue_certificate({"leaf", {"localhost"}, {}, false, std::chrono::hours(1)}, ec_key.get(),
                                   Signer{rsa_root.get(), rsa_key.get()});

  CHECK(secret_stamp(folder).empty());
  CHECK_THROWS_WITH(load_server_credentials(folder), Catch::Contains("tls.crt: cannot be read"));

  write(folder + "/tls.crt", to_pem(ec_leaf.get()) + to_pem(rsa_root.get()));
  write(folder + "/tls.key", to_pem(ec_key.get()));
  CHECK_FALSE(secret_stamp(folder).empty());
  CHECK_THROWS_WITH(load_server_credentials(folder),
                    Catch::Contains("has a RSA key but the server certificate has a EC key"));

  write(folder + "/tls.crt", to_pem(ec_leaf.get()));
  write(folder + "/tls.key", to_pem(rsa_key.get()));
  CHECK_THROWS_WITH(load_server_credentials(folder), Catch::Contains("does not match the first certificate"));

  write(folder + "/tls.key", "not a key");
  CHECK_THROWS_WITH(load_server_credentials(folder), Catch::Contains("no readable unencrypted PEM private key"));

  write(folder + "/tls.key", to_pem(ec_key.get()));
  auto credentials = load_server_credentials(folder);
  CHECK(credentials.context != nullptr);
  CHECK(credentials.key_kind == "EC");
  CHECK(credentials.chain_length == 1);
  CHECK(SSL_CTX_get_min_proto_version(credentials.context.get()) == TLS1_2_VERSION);
  std::filesystem::remove_all(folder);
}
