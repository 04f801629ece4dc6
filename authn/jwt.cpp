// Compact JWS tokens (RFC 7515, 7519): split, signature (RS256, ES256) and claims, and the strict
// JSON reading they share with jwks.cpp, where the keys are read.
#include "authn/jwt.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "authn/jwt_internal.hpp"

namespace mqttd::authn::jwt {

namespace detail {

std::optional<json::value> parse_json(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return std::nullopt;
  return v;
}

const json::string* string_member(const json::object& o, std::string_view name, bool& wrong_type) {
  auto it = o.find(json::string_view(name.data(), name.size()));
  if (it == o.end()) return nullptr;
  if (!it->value().is_string()) {
    wrong_type = true;
    return nullptr;
  }
  return &it->value().get_string();
}

}  // namespace detail

using namespace detail;

namespace {

using Clock = std::chrono::system_clock;

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

}  // namespace mqttd::authn::jwt
