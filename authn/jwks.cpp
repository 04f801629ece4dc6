// JSON Web Key Sets (RFC 7517) and OIDC discovery documents: the keys a service-account token's
// signature is checked with (jwt.hpp), each checked as it is read.
#include <openssl/core_names.h>
#include <openssl/err.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "authn/jwt_internal.hpp"

namespace mqttd::authn::jwt {

using namespace detail;

namespace {

// A public key from OpenSSL 3 parameters, checked (RSA: n and e sane; EC: the point is on the
// curve and not the point at infinity).
PkeyPtr public_key_from(const char* type, const OSSL_PARAM* params) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  PkeyPtr key(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  bool ok = check && EVP_PKEY_public_check(check.get()) == 1;
  ERR_clear_error();
  return ok ? std::move(key) : nullptr;
}

std::string decode_member(const json::object& jwk, std::string_view name, const std::string& where) {
  bool wrong = false;
  const auto* s = string_member(jwk, name, wrong);
  if (!s) throw std::runtime_error(where + ": no string '" + std::string(name) + "'");
  auto bytes = base64url_decode(view(*s));
  if (!bytes || bytes->empty())
    throw std::runtime_error(where + ": '" + std::string(name) + "' is not strict base64url");
  return std::move(*bytes);
}

// An RSA key, or nullopt with `skip` set when it is too weak or too large.
PkeyPtr rsa_key(const json::object& jwk, const std::string& where, std::string& skip) {
  auto n_bytes = decode_member(jwk, "n", where);
  auto e_bytes = decode_member(jwk, "e", where);
  if (n_bytes.size() > kMaxRsaBits / 8 + 1 || e_bytes.size() > 8)
    throw std::runtime_error(where + ": RSA modulus or exponent too large");
  BnPtr n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()), n_bytes.size(), nullptr));
  BnPtr e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()), e_bytes.size(), nullptr));
  if (!n || !e) throw std::runtime_error(where + ": out of memory");
  int bits = BN_num_bits(n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    skip = "an RSA key of " + std::to_string(bits) + " bits (" + std::to_string(kMinRsaBits) + " to " +
           std::to_string(kMaxRsaBits) + " accepted)";
    return nullptr;
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    throw std::runtime_error(where + ": out of memory");
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) throw std::runtime_error(where + ": out of memory");
  auto key = public_key_from("RSA", params.get());
  if (!key) throw std::runtime_error(where + ": not a valid RSA public key");
  return key;
}

PkeyPtr p256_key(const json::object& jwk, const std::string& where) {
  auto x = decode_member(jwk, "x", where);
  auto y = decode_member(jwk, "y", where);
  if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes)
    throw std::runtime_error(where + ": P-256 'x' and 'y' must be 32 bytes each");
  std::string point = "\x04" + x + y;  // uncompressed point (SEC 1)
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    throw std::runtime_error(where + ": out of memory");
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) throw std::runtime_error(where + ": out of memory");
  auto key = public_key_from("EC", params.get());
  if (!key) throw std::runtime_error(where + ": not a point on P-256");
  return key;
}

}  // namespace

KeySet KeySet::parse_jwks(std::string_view text) {
  if (text.size() > kMaxJwksBytes)
    throw std::runtime_error("JWKS larger than " + std::to_string(kMaxJwksBytes) + " bytes");
  auto doc = parse_json(text);
  if (!doc)
    throw std::runtime_error("JWKS is not valid JSON (or nests deeper than " + std::to_string(kMaxJsonDepth) + ")");
  if (!doc->is_object()) throw std::runtime_error("JWKS is not a JSON object");
  auto it = doc->get_object().find("keys");
  if (it == doc->get_object().end() || !it->value().is_array()) throw std::runtime_error("JWKS has no array 'keys'");
  const auto& array = it->value().get_array();
  if (array.size() > kMaxKeys)
    throw std::runtime_error("JWKS has " + std::to_string(array.size()) + " keys (at most " + std::to_string(kMaxKeys) +
                             ")");
  KeySet set;
  for (std::size_t i = 0; i < array.size(); ++i) {
    std::string where = "JWKS key " + std::to_string(i);
    if (!array[i].is_object()) throw std::runtime_error(where + " is not an object");
    const auto& jwk = array[i].get_object();
    bool wrong = false;
    Key key;
    if (const auto* kid = string_member(jwk, "kid", wrong)) key.kid = std::string(view(*kid));
    if (!key.kid.empty()) where += " (kid " + quoted(key.kid) + ")";
    const auto* kty = string_member(jwk, "kty", wrong);
    const auto* use = string_member(jwk, "use", wrong);
    const auto* alg = string_member(jwk, "alg", wrong);
    if (wrong) throw std::runtime_error(where + ": 'kid', 'kty', 'use' or 'alg' is not a string");
    if (!kty) throw std::runtime_error(where + ": no 'kty'");
    auto skip = [&](const std::string& why) { set.skipped_.push_back(where + ": " + why); };
    if (use && view(*use) != "sig") {
      skip("for use " + quoted(view(*use)));
      continue;
    }
    if (auto ops = jwk.find("key_ops"); ops != jwk.end()) {
      if (!ops->value().is_array()) throw std::runtime_error(where + ": 'key_ops' is not an array");
      const auto& list = ops->value().get_array();
      if (std::none_of(list.begin(), list.end(),
                       [](const json::value& v) { return v.is_string() && view(v.get_string()) == "verify"; })) {
        skip("its key_ops do not include verify");
        continue;
      }
    }
    if (alg) key.alg = std::string(view(*alg));
    if (view(*kty) == "RSA") {
      if (key.alg && *key.alg != kRs256) {
        skip("an RSA key for " + quoted(*key.alg) + " (only RS256 is accepted)");
        continue;
      }
      std::string why;
      PkeyPtr pkey = rsa_key(jwk, where, why);
      if (!pkey) {
        skip(why);
        continue;
      }
      key.type = Key::Type::Rsa;
      key.pkey = std::shared_ptr<EVP_PKEY>(pkey.release(), EVP_PKEY_free);
    } else if (view(*kty) == "EC") {
      const auto* crv = string_member(jwk, "crv", wrong);
      if (!crv || wrong) throw std::runtime_error(where + ": an EC key without a string 'crv'");
      if (view(*crv) != "P-256") {
        skip("an EC key on curve " + quoted(view(*crv)) + " (only P-256 is accepted)");
        continue;
      }
      if (key.alg && *key.alg != kEs256) {
        skip("a P-256 key for " + quoted(*key.alg) + " (only ES256 is accepted)");
        continue;
      }
      key.type = Key::Type::Ec;
      key.pkey = std::shared_ptr<EVP_PKEY>(p256_key(jwk, where).release(), EVP_PKEY_free);
    } else {
      skip("key type " + quoted(view(*kty)) + " is not supported");
      continue;
    }
    set.keys_.push_back(std::move(key));
  }
  if (set.keys_.empty()) {
    std::string why = "JWKS has no usable key (RSA >= 2048 bits or EC P-256, for signatures)";
    for (const auto& s : set.skipped_) why += "; " + s;
    throw std::runtime_error(why);
  }
  return set;
}

std::string jwks_uri_from_discovery(std::string_view text, std::string_view expected_issuer) {
  if (text.size() > kMaxJwksBytes) throw std::runtime_error("discovery document too large");
  auto doc = parse_json(text);
  if (!doc || !doc->is_object()) throw std::runtime_error("discovery document is not a JSON object");
  bool wrong = false;
  const auto* issuer = string_member(doc->get_object(), "issuer", wrong);
  const auto* uri = string_member(doc->get_object(), "jwks_uri", wrong);
  if (!issuer || view(*issuer) != expected_issuer)
    throw std::runtime_error("discovery document's issuer " + (issuer ? quoted(view(*issuer)) : "(none)") +
                             " is not the expected " + quoted(expected_issuer));
  if (!uri) throw std::runtime_error("discovery document has no string 'jwks_uri'");
  std::string_view u = view(*uri);
  constexpr std::string_view https = "https://";
  bool printable = std::all_of(u.begin(), u.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (!u.starts_with(https) || u.size() == https.size() || u[https.size()] == '/' || !printable)
    throw std::runtime_error("discovery document's jwks_uri " + quoted(u) + " is not an https URL");
  return std::string(u);
}

}  // namespace mqttd::authn::jwt
