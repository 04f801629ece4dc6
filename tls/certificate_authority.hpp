// Keys and X.509 certificates made with OpenSSL's APIs: what cert-manager does for the
// documents' issuers, done in-process. No sockets and no files beyond PEM reading and writing.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/configuration.hpp"
#include "tls/openssl_ptr.hpp"

namespace mqttd::tls {

struct IssueRequest {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool is_ca = false;
  std::chrono::seconds lifetime{90 * 24 * 3600};
};

// The signer of a certificate: its certificate (null for self-signed) and key.
struct Signer {
  X509* certificate = nullptr;
  EVP_PKEY* key = nullptr;
};

KeyPtr generate_key(config::KeyAlgorithm algorithm);
// Issues a certificate for `subject_key`; self-signed when `signer.certificate` is null (then
// `signer.key` must be `subject_key`). Throws std::runtime_error.
X509Ptr issue_certificate(const IssueRequest& request, EVP_PKEY* subject_key, const Signer& signer);

std::string to_pem(X509* certificate);
std::string to_pem(EVP_PKEY* key);
// Every certificate in a PEM text, in order; empty if none can be read.
std::vector<X509Ptr> read_certificates(const std::string& pem);
KeyPtr read_private_key(const std::string& pem);

// "EC", "RSA", "ED25519"...: the kind of key a certificate carries.
std::string key_kind(X509* certificate);
std::string key_kind(EVP_PKEY* key);
std::string subject_text(X509* certificate);
std::chrono::system_clock::time_point not_after(X509* certificate);

}  // namespace mqttd::tls
