#include "tls/certificate_authority.hpp"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <stdexcept>

namespace mqttd::tls {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(last_error(what)); }

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (!ext) fail("X509V3_EXT_conf_nid " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

std::string subject_alt_names(const IssueRequest& r) {
  std::string out;
  for (const auto& d : r.dns_names) out += (out.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& i : r.ip_addresses) out += (out.empty() ? "IP:" : ",IP:") + i;
  return out;
}

}  // namespace

KeyPtr generate_key(config::KeyAlgorithm algorithm) {
  using config::KeyAlgorithm;
  EVP_PKEY* key = nullptr;
  switch (algorithm) {
    case KeyAlgorithm::Ec256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyAlgorithm::Ec384:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyAlgorithm::Ec521:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
      break;
    case KeyAlgorithm::Ed25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case KeyAlgorithm::Rsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
      break;
    case KeyAlgorithm::Rsa4096:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{4096});
      break;
    case KeyAlgorithm::Rsa8192:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{8192});
      break;
  }
  if (!key) fail(std::string("generating a ") + config::to_string(algorithm) + " key");
  return KeyPtr(key);
}

X509Ptr issue_certificate(const IssueRequest& request, EVP_PKEY* subject_key, const Signer& signer) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  X509_set_version(cert.get(), 2);  // v3

  // A random positive 127-bit serial, as RFC 5280 recommends (at most 20 octets, unpredictable).
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) fail("RAND_bytes");
  serial_bytes[0] &= 0x7f;
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);

  // Valid from a minute ago, so that a client whose clock is slightly behind accepts it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(request.lifetime.count()));
  X509_set_pubkey(cert.get(), subject_key);

  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = request.common_name.empty()
                       ? (request.dns_names.empty() ? request.ip_addresses.at(0) : request.dns_names[0])
                       : request.common_name;
  // A CN longer than 64 characters does not fit X.520's upper bound; the SAN carries the names.
  if (cn.size() > 64) cn.resize(64);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = signer.certificate ? signer.certificate : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  bool rsa = key_kind(subject_key) == "RSA";
  if (request.is_ca) {
    add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), &ctx, NID_key_usage,
                  rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
    add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (signer.certificate) add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  if (auto san = subject_alt_names(request); !san.empty()) add_extension(cert.get(), &ctx, NID_subject_alt_name, san);

  // Ed25519 signs the message itself and takes no digest.
  const EVP_MD* digest = key_kind(signer.key) == "ED25519" ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), signer.key, digest) <= 0) fail("signing the certificate");
  return cert;
}

std::string to_pem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), certificate);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::vector<X509Ptr> read_certificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

KeyPtr read_private_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // An empty passphrase callback: an encrypted key fails instead of prompting on the terminal.
  KeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  ERR_clear_error();
  return key;
}

std::string key_kind(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      return "EC";
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_RSA_PSS:
      return "RSA";
    case EVP_PKEY_ED25519:
      return "ED25519";
    case EVP_PKEY_ED448:
      return "ED448";
    default:
      return "unknown";
  }
}

std::string key_kind(X509* certificate) { return key_kind(X509_get0_pubkey(certificate)); }

std::string subject_text(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::chrono::system_clock::time_point not_after(X509* certificate) {
  std::tm tm{};
  ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace mqttd::tls
