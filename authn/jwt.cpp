#include "authn/jwt.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "authn/openssl_deleter.hpp"

namespace mqttd::authn::jwt {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

template <auto Free>
using Deleter = OpensslDeleter<Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

constexpr std::string_view kRs256 = "RS256";
constexpr std::string_view kEs256 = "ES256";
constexpr std::size_t kP256CoordinateBytes = 32;

// Parses bounded, strict JSON (no comments, no trailing commas, valid UTF-8 only: Boost.JSON's
// defaults) with a bounded nesting depth, so that deep input cannot exhaust the stack.
std::optional<json::value> parse_json(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return std::nullopt;
  return v;
}

std::string_view view(const json::string& s) { return std::string_view(s.data(), s.size()); }

// Member `name` of `o` when it is a string; `present` tells a missing member from a wrong type.
const json::string* string_member(const json::object& o, std::string_view name, bool& wrong_type) {
  auto it = o.find(json::string_view(name.data(), name.size()));
  if (it == o.end()) return nullptr;
  if (!it->value().is_string()) {
    wrong_type = true;
    return nullptr;
  }
  return &it->value().get_string();
}

// NumericDate (RFC 7519): integer or fractional seconds since the epoch, truncated.
std::optional<Clock::time_point> numeric_date(const json::value& v) {
  std::int64_t seconds = 0;
  if (v.is_int64()) {
    seconds = v.get_int64();
  } else if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(kMaxEpochSeconds)) return std::nullopt;
    seconds = static_cast<std::int64_t>(v.get_uint64());
  } else if (v.is_double()) {
    double d = v.get_double();
    if (!std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxEpochSeconds)) return std::nullopt;
    seconds = static_cast<std::int64_t>(d);
  } else {
    return std::nullopt;
  }
  if (seconds < 0 || seconds > kMaxEpochSeconds) return std::nullopt;
  return Clock::time_point(std::chrono::seconds(seconds));
}

// The claims of a payload, checking only their types and the consistency of the account claims.
std::optional<Claims> parse_claims(const json::object& payload, std::string& error) {
  Claims c;
  bool wrong = false;
  auto take = [&](std::string_view name, std::string& out) {
    if (const auto* s = string_member(payload, name, wrong)) out = std::string(view(*s));
    if (wrong) error = "claim '" + std::string(name) + "' is not a string";
    return !wrong;
  };
  if (!take("iss", c.issuer) || !take("sub", c.subject)) return std::nullopt;

  if (auto it = payload.find("aud"); it != payload.end()) {
    if (it->value().is_string()) {
      c.audiences.emplace_back(view(it->value().get_string()));
    } else if (it->value().is_array()) {
      for (const auto& a : it->value().get_array()) {
        if (!a.is_string()) {
          error = "claim 'aud' holds a non-string";
          return std::nullopt;
        }
        c.audiences.emplace_back(view(a.get_string()));
      }
    } else {
      error = "claim 'aud' is neither a string nor an array";
      return std::nullopt;
    }
  }

  struct DateClaim {
    const char* name;
    std::optional<Clock::time_point>* out;
  };
  for (auto [name, out] :
       {DateClaim{"exp", &c.expires}, DateClaim{"nbf", &c.not_before}, DateClaim{"iat", &c.issued_at}}) {
    auto it = payload.find(name);
    if (it == payload.end()) continue;
    *out = numeric_date(it->value());
    if (!*out) {
      error = std::string("claim '") + name + "' is not a valid NumericDate";
      return std::nullopt;
    }
  }

  // Kubernetes' claims: {"kubernetes.io": {"namespace": ..., "serviceaccount": {"name", "uid"}}}.
  auto k8s_string = [&](const json::object& o, std::string_view name, std::optional<std::string>& out) {
    if (const auto* s = string_member(o, name, wrong)) out = std::string(view(*s));
    if (wrong) error = "claim 'kubernetes.io' has a non-string '" + std::string(name) + "'";
    return !wrong;
  };
  if (auto it = payload.find("kubernetes.io"); it != payload.end()) {
    if (!it->value().is_object()) {
      error = "claim 'kubernetes.io' is not an object";
      return std::nullopt;
    }
    const auto& k8s = it->value().get_object();
    if (!k8s_string(k8s, "namespace", c.namespace_name)) return std::nullopt;
    if (auto sa = k8s.find("serviceaccount"); sa != k8s.end()) {
      if (!sa->value().is_object()) {
        error = "claim 'kubernetes.io' has a non-object 'serviceaccount'";
        return std::nullopt;
      }
      if (!k8s_string(sa->value().get_object(), "name", c.service_account_name) ||
          !k8s_string(sa->value().get_object(), "uid", c.service_account_uid))
        return std::nullopt;
    }
  } else {
    // Tokens of the older, unbound kind (secrets of type service-account-token).
    if (!k8s_string(payload, "kubernetes.io/serviceaccount/namespace", c.namespace_name) ||
        !k8s_string(payload, "kubernetes.io/serviceaccount/service-account.name", c.service_account_name) ||
        !k8s_string(payload, "kubernetes.io/serviceaccount/service-account.uid", c.service_account_uid))
      return std::nullopt;
  }
  if (c.namespace_name.has_value() != c.service_account_name.has_value()) {
    error = "the Kubernetes claims name a namespace or a service account but not both";
    return std::nullopt;
  }
  // Kubernetes writes both; a token whose `sub` names another account than its Kubernetes claims
  // was not minted by Kubernetes, and which of the two a reader believes must not matter.
  if (c.namespace_name) {
    if (auto from_sub = service_account_of(c.subject);
        from_sub && (from_sub->namespace_name != *c.namespace_name || from_sub->name != *c.service_account_name)) {
      error = "claim 'sub' names another service account than the Kubernetes claims";
      return std::nullopt;
    }
  }
  return c;
}

// The three parts of a compact JWS, decoded; nullopt and `error` when malformed.
struct Parts {
  std::string_view signing_input;  // header.payload, as signed
  std::string header;
  std::string payload;
  std::string signature;
};
std::optional<Parts> split(std::string_view token, std::string& error) {
  if (token.size() > kMaxTokenBytes) {
    error = "token longer than " + std::to_string(kMaxTokenBytes) + " bytes";
    return std::nullopt;
  }
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    error = "not a compact JWS (three parts separated by dots)";
    return std::nullopt;
  }
  auto header = base64url_decode(token.substr(0, first));
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = base64url_decode(token.substr(second + 1));
  if (!header || !payload || !signature) {
    error = "a part of the token is not strict base64url";
    return std::nullopt;
  }
  return Parts{token.substr(0, second), std::move(*header), std::move(*payload), std::move(*signature)};
}

// A JWS ES256 signature is r||s, 32 bytes each; OpenSSL verifies DER (RFC 7518 section 3.4).
std::optional<std::string> es256_signature_to_der(std::string_view raw) {
  if (raw.size() != 2 * kP256CoordinateBytes) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BnPtr r(BN_bin2bn(p, kP256CoordinateBytes, nullptr));
  BnPtr s(BN_bin2bn(p + kP256CoordinateBytes, kP256CoordinateBytes, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return std::nullopt;
  r.release();  // owned by sig now
  s.release();
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(const Key& key, std::string_view signing_input, std::string_view signature) {
  std::string der;
  if (key.type == Key::Type::Ec) {
    auto converted = es256_signature_to_der(signature);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  }
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  bool ok = md && EVP_DigestVerifyInit_ex(md.get(), &pctx, "SHA256", nullptr, nullptr, key.pkey.get(), nullptr) == 1 &&
            (key.type != Key::Type::Rsa || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
            EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
  ERR_clear_error();  // a failed check leaves errors behind; they belong to no one
  return ok;
}

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

bool intersects(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::any_of(a.begin(), a.end(), [&](const auto& x) { return std::find(b.begin(), b.end(), x) != b.end(); });
}

}  // namespace

std::string quoted(std::string_view s) {
  // For error texts, which go to log lines as detail="...": what a token says (a kid, an alg,
  // before any signature is checked) must not end the value and add fields of its own, nor a line.
  // So at most kMaxQuoted bytes, quotes and backslashes escaped, any other byte that is not
  // printable ASCII as \xNN.
  constexpr std::size_t kMaxQuoted = 64;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (char c : s.substr(0, kMaxQuoted)) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '\'') {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out + (s.size() > kMaxQuoted ? "...'" : "'");
}

namespace {

Verified refuse(std::string why) {
  Verified v;
  v.error = std::move(why);
  return v;
}

}  // namespace

std::optional<ServiceAccountName> Claims::service_account() const {
  if (namespace_name && service_account_name && !namespace_name->empty() && !service_account_name->empty())
    return ServiceAccountName{*namespace_name, *service_account_name};
  return service_account_of(subject);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return std::nullopt;
    buffer = ((buffer << 6) | static_cast<std::uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // The bits left over must be zero: otherwise two texts would decode to the same bytes.
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = ((buffer << 8) | c) & 0xffffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

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

Verified verify(std::string_view token, const KeySet& keys, const Expectations& expected) {
  std::string error;
  auto parts = split(token, error);
  if (!parts) return refuse(error);

  auto header = parse_json(parts->header);
  if (!header || !header->is_object()) return refuse("the token's header is not a JSON object");
  const auto& h = header->get_object();
  bool wrong = false;
  const auto* alg = string_member(h, "alg", wrong);
  const auto* kid = string_member(h, "kid", wrong);
  string_member(h, "typ", wrong);
  if (wrong) return refuse("the token's header has a non-string 'alg', 'kid' or 'typ'");
  if (!alg) return refuse("the token's header has no 'alg'");
  // Extensions we would have to understand (RFC 7515 section 4.1.11): we understand none. Keys
  // carried by the token itself (jwk, jku, x5u, x5c) are ignored: only the configured ones count.
  if (h.contains("crit")) return refuse("the token's header has 'crit' extensions, none are supported");
  Key::Type type;
  if (view(*alg) == kRs256) {
    type = Key::Type::Rsa;
  } else if (view(*alg) == kEs256) {
    type = Key::Type::Ec;
  } else {
    return refuse("algorithm " + quoted(view(*alg)) + " is not accepted (RS256 and ES256 are)");
  }

  // Candidates: the keys with the token's kid (when it has one) of the type its alg needs.
  bool kid_found = false, verified = false;
  for (const auto& key : keys.keys()) {
    if (kid && key.kid != view(*kid)) continue;
    kid_found = true;
    if (key.type != type || (key.alg && *key.alg != view(*alg))) continue;
    if (verify_signature(key, parts->signing_input, parts->signature)) {
      verified = true;
      break;
    }
  }
  if (kid && !kid_found) {
    auto v = refuse("no key with the token's kid " + quoted(view(*kid)));
    v.unknown_kid = true;
    return v;
  }
  if (!verified) return refuse("the signature does not verify with any " + std::string(view(*alg)) + " key");

  // Only a signed payload is parsed further.
  auto payload = parse_json(parts->payload);
  if (!payload || !payload->is_object()) return refuse("the token's payload is not a JSON object");
  auto claims = parse_claims(payload->get_object(), error);
  if (!claims) return refuse(error);
  if (expected.issuer.empty() || claims->issuer != expected.issuer)
    return refuse("issuer " + quoted(claims->issuer) + " is not the expected " + quoted(expected.issuer));
  if (!intersects(claims->audiences, expected.audiences)) return refuse("no audience of the token is accepted");
  if (!claims->expires) return refuse("the token has no expiry ('exp')");
  if (expected.now > *claims->expires + expected.leeway) return refuse("the token has expired");
  if (claims->not_before && expected.now + expected.leeway < *claims->not_before)
    return refuse("the token is not valid yet ('nbf')");
  if (claims->issued_at && expected.now + expected.leeway < *claims->issued_at)
    return refuse("the token was issued in the future ('iat')");
  Verified v;
  v.ok = true;
  v.claims = std::move(*claims);
  return v;
}

std::optional<Claims> read_unverified(std::string_view token) {
  std::string error;
  auto parts = split(token, error);
  if (!parts) return std::nullopt;
  auto payload = parse_json(parts->payload);
  if (!payload || !payload->is_object()) return std::nullopt;
  return parse_claims(payload->get_object(), error);
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
