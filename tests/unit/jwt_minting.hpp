// Mints JSON Web Tokens in the tests, with OpenSSL: keys made on the spot, their public halves as
// JWKs, and compact JWS signed RS256, ES256 or (to show that it is refused) HS256.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "authn/jwt.hpp"

namespace jwt_test {

using mqttd::authn::jwt::base64url_encode;

inline std::string bn_bytes(const EVP_PKEY* key, const char* param, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) throw std::runtime_error("get_bn_param");
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

struct TestKey {
  std::shared_ptr<EVP_PKEY> pkey;
  bool rsa = true;
  int coordinate_bytes = 32;  // EC
  std::string curve;          // EC, JOSE name

  static TestKey make_rsa(unsigned bits) {
    TestKey k;
    k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)), EVP_PKEY_free);
    if (!k.pkey) throw std::runtime_error("RSA keygen");
    return k;
  }
  static TestKey make_ec(const char* openssl_curve = "P-256") {
    TestKey k;
    k.rsa = false;
    k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", openssl_curve), EVP_PKEY_free);
    if (!k.pkey) throw std::runtime_error("EC keygen");
    k.curve = openssl_curve;
    k.coordinate_bytes = (EVP_PKEY_get_bits(k.pkey.get()) + 7) / 8;
    return k;
  }

  // The public key as a JWK object; `extra` is inserted as more members (e.g. "\"use\":\"sig\"").
  std::string jwk(const std::string& kid, const std::string& extra = "") const {
    std::string out = "{";
    if (!kid.empty()) out += "\"kid\":\"" + kid + "\",";
    if (!extra.empty()) out += extra + ",";
    if (rsa) {
      out += "\"kty\":\"RSA\",\"n\":\"" + base64url_encode(bn_bytes(pkey.get(), OSSL_PKEY_PARAM_RSA_N)) +
             "\",\"e\":\"" + base64url_encode(bn_bytes(pkey.get(), OSSL_PKEY_PARAM_RSA_E)) + "\"}";
    } else {
      out += "\"kty\":\"EC\",\"crv\":\"" + curve + "\",\"x\":\"" +
             base64url_encode(bn_bytes(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, coordinate_bytes)) + "\",\"y\":\"" +
             base64url_encode(bn_bytes(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, coordinate_bytes)) + "\"}";
    }
    return out;
  }

  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(len));
    BIO_free(bio);
    return out;
  }

  // The JWS signature of `input`: PKCS#1 v1.5 for RSA, r||s for EC.
  std::string sign(const std::string& input) const {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    const char* digest = (!rsa && coordinate_bytes == 48) ? "SHA384" : "SHA256";
    std::size_t len = 0;
    EVP_DigestSignInit_ex(md, nullptr, digest, nullptr, nullptr, pkey.get(), nullptr);
    EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(md);
    if (rsa) return sig;
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(2 * coordinate_bytes, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), coordinate_bytes);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + coordinate_bytes,
                 coordinate_bytes);
    ECDSA_SIG_free(s);
    return raw;
  }
};

inline std::string jwks(const std::vector<std::string>& keys) {
  std::string out = "{\"keys\":[";
  for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? "," : "") + keys[i];
  return out + "]}";
}

// header.payload, unsigned.
inline std::string signing_input(const std::string& header_json, const std::string& payload_json) {
  return base64url_encode(header_json) + "." + base64url_encode(payload_json);
}

inline std::string mint(const TestKey& key, const std::string& header_json, const std::string& payload_json) {
  auto input = signing_input(header_json, payload_json);
  return input + "." + base64url_encode(key.sign(input));
}

inline std::string hs256(const std::string& secret, const std::string& header_json, const std::string& payload_json) {
  auto input = signing_input(header_json, payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

inline long long epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The claims Kubernetes writes in a bound service-account token.
inline std::string k8s_payload(const std::string& issuer, const std::string& audiences_json, long long exp,
                               const std::string& ns = "ns1", const std::string& sa = "sa1",
                               const std::string& extra = "") {
  return "{\"aud\":" + audiences_json + ",\"exp\":" + std::to_string(exp) + ",\"iat\":" + std::to_string(exp - 3600) +
         ",\"iss\":\"" + issuer + "\",\"kubernetes.io\":{\"namespace\":\"" + ns + "\",\"serviceaccount\":{\"name\":\"" +
         sa + "\",\"uid\":\"0b0e8a42-1111-2222-3333-444455556666\"}}," + "\"nbf\":" + std::to_string(exp - 3600) +
         ",\"sub\":\"system:serviceaccount:" + ns + ":" + sa + "\"" + extra + "}";
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace jwt_test
