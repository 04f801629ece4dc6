// fuzz_jwt: offline JWT verification (authn/jwt.*): JWKS parsing, token structure, header and
// claims parsing, OIDC discovery documents, and base64url.
//
// Input: a first byte that chooses what the rest is:
//   0: a token, verified against a fixed JWKS (one RSA-2048 key "rsa1", one P-256 key "ec1");
//   1: a JWKS (or a discovery document), a NUL, a token verified against that JWKS;
//   2: a header's JSON, a NUL, a payload's JSON, a NUL, signature bytes: the harness encodes
//      them into a token, so that the JSON parsers are reached without the fuzzer having to find
//      base64url of JSON;
//   anything else: as 0.
// Besides a crash, UB, a leak or a read past the input (ASan), a bug is:
//   - a verified token whose issuer, audiences or expiry the expectations do not allow;
//   - a base64url text that decodes but does not encode back to itself (two spellings of a value),
//     or bytes that do not survive encoding and decoding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "authn/jwt.hpp"

using namespace mqttd::authn;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_jwt: %s\n", what);
  std::abort();
}

// Made once with openssl genpkey and PyJWT's to_jwk; the private keys signed the seed tokens.
constexpr std::string_view kFixedJwks =
    R"json({"keys":[{"kty":"RSA","key_ops":["verify"],"n":"mS-ytgn9EctQxqdovXEGFbZ-jesMthGaTgrqtRzZnQFnd4FeBppNecjHuFtAKtYCH-yWFwi7F9SvAarw46lX1-WNvb34oip-7-6FTizOpj4Yn2vP4L_vEhzXM-j1v5s-1sU7h32YbWfBDgwj2yeSkZJhS7fOijz4jDn4Z-v_gpODShc9_L_2UFLf7KMTB9_jcdP503v2ikL9f-qAI_E_yLVs3IZJ0CLxZAW3WmGZphXvIeGmlypl5d7EuK98TrzLQ1NTDQCLTvUuZ2g_TVUuyprEHmtXmgLTScvbrkQbf986IWo_SBXNZrNF_HUip_eF5ljiC3Q6wFAom2Dl0m_pkw","e":"AQAB","kid":"rsa1"},{"kty":"EC","crv":"P-256","x":"_E7Sv8oOCw0HaHz4d_8wTMugjfxNu_aoUVWjWVD-sGA","y":"XnFnvw9XG6MkWgR6giKFPw5mdhvX_CsQpbUjuNXSi2U","kid":"ec1"}]})json";
constexpr std::string_view kIssuer = "https://kubernetes.default.svc.cluster.local";

const jwt::KeySet& fixed_keys() {
  static const jwt::KeySet keys = jwt::KeySet::parse_jwks(kFixedJwks);
  return keys;
}

jwt::Expectations expectations() {
  jwt::Expectations e;
  e.issuer = std::string(kIssuer);
  e.audiences = {"aio-internal", "other"};
  e.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  return e;
}

void check_token(std::string_view token, const jwt::KeySet& keys) {
  auto e = expectations();
  auto v = jwt::verify(token, keys, e);
  if (v.ok) {
    if (v.claims.issuer != e.issuer) fail("verified with another issuer");
    if (!v.claims.expires || e.now > *v.claims.expires + e.leeway) fail("verified without a valid exp");
    bool audience = false;
    for (const auto& a : v.claims.audiences)
      for (const auto& x : e.audiences) audience |= a == x;
    if (!audience) fail("verified without an accepted audience");
  } else if (v.error.empty()) {
    fail("refused without a reason");
  }
  (void)jwt::read_unverified(token);
}

void check_base64url(std::string_view text) {
  if (auto bytes = jwt::base64url_decode(text)) {
    if (jwt::base64url_encode(*bytes) != text) fail("a base64url text decodes but is not canonical");
  }
  auto again = jwt::base64url_decode(jwt::base64url_encode(text));
  if (!again || *again != text) fail("bytes did not survive base64url");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_base64url(input.substr(0, 4096));
  switch (data[0]) {
    case 1: {
      auto nul = input.find('\0');
      auto first = input.substr(0, nul);
      try {
        (void)jwt::jwks_uri_from_discovery(first, kIssuer);
      } catch (const std::runtime_error&) {
      }
      try {
        auto keys = jwt::KeySet::parse_jwks(first);
        if (keys.size() == 0 || keys.size() > jwt::kMaxKeys) fail("a key set of a wrong size");
        if (nul != std::string_view::npos) check_token(input.substr(nul + 1), keys);
      } catch (const std::runtime_error& e) {
        if (!*e.what()) fail("an exception without a message");
      }
      break;
    }
    case 2: {
      auto a = input.find('\0');
      auto b = a == std::string_view::npos ? a : input.find('\0', a + 1);
      if (b == std::string_view::npos) return 0;
      std::string token = jwt::base64url_encode(input.substr(0, a)) + "." +
                          jwt::base64url_encode(input.substr(a + 1, b - a - 1)) + "." +
                          jwt::base64url_encode(input.substr(b + 1));
      check_token(token, fixed_keys());
      break;
    }
    default:
      check_token(input, fixed_keys());
  }
  return 0;
}
