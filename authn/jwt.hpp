// Offline verification of a JSON Web Token (compact JWS) against an issuer's published keys (a
// JWKS), for Kubernetes service-account tokens. Deliberately narrow: RS256 (RSA >= 2048 bits) and
// ES256 (P-256) only, so that `none`, HMAC with a public key (algorithm confusion) and the rest
// can never be chosen by whoever wrote the token. Every input is bounded before it is parsed.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authn/service_account.hpp"

namespace mqttd::authn::jwt {

// Bounds: a Kubernetes token is about 1 KiB; a JWKS a few KiB.
inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;
inline constexpr std::size_t kMaxJwksBytes = 1024 * 1024;
inline constexpr std::size_t kMaxKeys = 100;
inline constexpr std::size_t kMaxJsonDepth = 16;  // a token's claims nest 3 deep, a JWKS 3
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 8192;  // a larger modulus only makes each check slower
// Times beyond this (year 2223) are refused as malformed: the clock's nanoseconds would overflow
// a little later (2262), and no real token lives that long.
inline constexpr std::int64_t kMaxEpochSeconds = 8'000'000'000;

// The claims that matter here. Kubernetes puts the account in `kubernetes.io` (and older tokens
// in flat `kubernetes.io/serviceaccount/...` claims); `sub` is "system:serviceaccount:<ns>:<name>".
struct Claims {
  std::string issuer;
  std::string subject;
  std::vector<std::string> audiences;
  std::optional<std::chrono::system_clock::time_point> expires;
  std::optional<std::chrono::system_clock::time_point> not_before;
  std::optional<std::chrono::system_clock::time_point> issued_at;
  std::optional<std::string> namespace_name;
  std::optional<std::string> service_account_name;
  std::optional<std::string> service_account_uid;

  // The account the token stands for: the Kubernetes claims, else `sub`. (When both are present,
  // parsing checked that they agree.)
  std::optional<ServiceAccountName> service_account() const;
};

// One usable public key of a JWKS.
struct Key {
  enum class Type { Rsa, Ec };
  Type type = Type::Rsa;
  std::string kid;                 // empty: none
  std::optional<std::string> alg;  // the JWK's `alg`, when it has one (RS256 or ES256)
  std::shared_ptr<EVP_PKEY> pkey;  // shared: a KeySet is cheap to copy; never modified
};

class KeySet {
 public:
  // Parses `{"keys":[...]}`. RSA keys (n, e; 2048..8192 bits) and EC keys (crv P-256, x and y of
  // 32 bytes, a point on the curve) are kept; keys of other types or curves, for another `use`
  // than `sig`, or for another algorithm are skipped (skipped() says which and why). Throws
  // std::runtime_error on malformed JSON, a malformed key of a supported type, more than kMaxKeys
  // keys, more than kMaxJwksBytes, or no usable key at all.
  static KeySet parse_jwks(std::string_view json);

  std::size_t size() const { return keys_.size(); }
  const std::vector<Key>& keys() const { return keys_; }
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Key> keys_;
  std::vector<std::string> skipped_;
};

struct Expectations {
  std::string issuer;                  // `iss` must equal it (an empty one accepts no token)
  std::vector<std::string> audiences;  // `aud` must name one of them (empty: no token)
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::chrono::seconds leeway{60};  // clock skew allowed for exp, nbf and iat
};

struct Verified {
  bool ok = false;
  std::string error;  // why not, for logs; never contains the token
  Claims claims;      // set when ok
  // Refused because the token names a `kid` no key has: perhaps the issuer rotated its keys since
  // they were fetched.
  bool unknown_kid = false;
};

// Verifies `token`'s structure, signature (with a key of `keys` chosen by `kid`, of the type its
// algorithm needs) and then its claims. Never throws for a bad token.
Verified verify(std::string_view token, const KeySet& keys, const Expectations& expected);

// The claims of a well-formed token WITHOUT checking its signature or anything else: only for
// when someone trusted has just vouched for the token (a TokenReview), to learn its expiry.
std::optional<Claims> read_unverified(std::string_view token);

// The `jwks_uri` of an OpenID Connect discovery document, checking that its `issuer` equals
// `expected_issuer` and that the URI is https. Throws std::runtime_error saying what is wrong.
std::string jwks_uri_from_discovery(std::string_view json, std::string_view expected_issuer);

// `s` in single quotes, safe inside a log line's detail="...": at most 64 bytes (then "..."),
// `"`, `'` and `\` escaped with a backslash, any other byte that is not printable ASCII as \xNN.
// For error texts that name what a token or a document says (a kid, an alg, an issuer).
std::string quoted(std::string_view s);

// Strict base64url without padding (RFC 7515 section 2): any other character, padding, a length of
// 4n+1 or non-zero unused bits make it nullopt, so that each value has exactly one encoding.
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);

}  // namespace mqttd::authn::jwt
