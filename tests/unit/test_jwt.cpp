// Offline JWT verification (authn/jwt.hpp): tokens minted here with OpenSSL keys made on the spot,
// and every way a token or a JWKS can be wrong that an attacker or a misconfiguration produces.
#include <catch2/catch.hpp>

#include "authn/jwt.hpp"
#include "jwt_minting.hpp"

using namespace mqttd::authn;
using namespace std::chrono_literals;
using jwt_test::TestKey;

namespace {

const std::string kIssuer = "https://kubernetes.default.svc.cluster.local";
const std::string kRsHeader = R"({"alg":"RS256","kid":"rsa1"})";
const std::string kEsHeader = R"({"alg":"ES256","kid":"ec1"})";

// Keys are slow to make (RSA): once for the whole file.
const TestKey& rsa_key() {
  static TestKey k = TestKey::make_rsa(2048);
  return k;
}
const TestKey& ec_key() {
  static TestKey k = TestKey::make_ec("P-256");
  return k;
}
const jwt::KeySet& key_set() {
  static jwt::KeySet set = jwt::KeySet::parse_jwks(jwt_test::jwks({rsa_key().jwk("rsa1"), ec_key().jwk("ec1")}));
  return set;
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
const long long kExp = 1'700'000'000 + 600;

jwt::Expectations expect(std::vector<std::string> audiences = {"aio-internal", "other"}) {
  return {kIssuer, std::move(audiences), kNow, 60s};
}

std::string payload(const std::string& aud = R"(["aio-internal"])", long long exp = kExp) {
  return jwt_test::k8s_payload(kIssuer, aud, exp);
}

jwt::Verified check(const std::string& token, const jwt::Expectations& e = expect()) {
  return jwt::verify(token, key_set(), e);
}

}  // namespace

TEST_CASE("jwt: strict base64url") {
  CHECK(jwt::base64url_encode("") == "");
  CHECK(jwt::base64url_encode("f") == "Zg");
  CHECK(jwt::base64url_encode("fo") == "Zm8");
  CHECK(jwt::base64url_encode("foo") == "Zm9v");
  CHECK(jwt::base64url_encode("\xfb\xff") == "-_8");
  CHECK(jwt::base64url_decode("Zm9v") == "foo");
  CHECK(jwt::base64url_decode("Zg") == "f");
  CHECK(jwt::base64url_decode("-_8") == "\xfb\xff");
  CHECK_FALSE(jwt::base64url_decode("Zg=="));    // padding
  CHECK_FALSE(jwt::base64url_decode("Zm9v+/"));  // base64, not base64url
  CHECK_FALSE(jwt::base64url_decode("Zm 9v"));
  CHECK_FALSE(jwt::base64url_decode("Z"));   // 4n+1 characters
  CHECK_FALSE(jwt::base64url_decode("Zh"));  // non-zero unused bits: a second spelling of "f"
}

TEST_CASE("jwt: valid RS256 and ES256 tokens, each audience") {
  auto rs = check(jwt_test::mint(rsa_key(), kRsHeader, payload()));
  REQUIRE(rs.ok);
  CHECK(rs.claims.issuer == kIssuer);
  CHECK(rs.claims.audiences == std::vector<std::string>{"aio-internal"});
  CHECK(rs.claims.expires == std::chrono::system_clock::time_point(std::chrono::seconds(kExp)));
  CHECK(rs.claims.subject == "system:serviceaccount:ns1:sa1");
  CHECK(rs.claims.service_account_uid == "0b0e8a42-1111-2222-3333-444455556666");
  REQUIRE(rs.claims.service_account());
  CHECK(rs.claims.service_account()->namespace_name == "ns1");
  CHECK(rs.claims.service_account()->name == "sa1");

  auto es = check(jwt_test::mint(ec_key(), kEsHeader, payload()));
  CHECK(es.ok);
  CHECK(es.error.empty());

  // `aud` as a string, and each expected audience in turn.
  CHECK(check(jwt_test::mint(rsa_key(), kRsHeader, payload(R"("other")"))).ok);
  CHECK(check(jwt_test::mint(rsa_key(), kRsHeader, payload(R"(["x","other"])"))).ok);
  CHECK(check(jwt_test::mint(ec_key(), kEsHeader, payload(R"(["aio-internal","x"])"))).ok);
  // Without kid: the keys of the alg's type are tried.
  CHECK(check(jwt_test::mint(rsa_key(), R"({"alg":"RS256","typ":"JWT"})", payload())).ok);
  CHECK(check(jwt_test::mint(ec_key(), R"({"alg":"ES256"})", payload())).ok);
}

TEST_CASE("jwt: claims refused") {
  auto mint = [](const std::string& p) { return jwt_test::mint(rsa_key(), kRsHeader, p); };
  auto wrong_aud = check(mint(payload(R"(["someone-else"])")));
  CHECK_FALSE(wrong_aud.ok);
  CHECK_THAT(wrong_aud.error, Catch::Contains("audience"));
  CHECK_FALSE(check(mint(payload(R"([])"))).ok);
  CHECK_FALSE(check(mint(payload()), expect({})).ok);  // no audience configured: nothing passes

  auto wrong_iss = check(mint(jwt_test::k8s_payload("https://evil", R"(["aio-internal"])", kExp)));
  CHECK_FALSE(wrong_iss.ok);
  CHECK_THAT(wrong_iss.error, Catch::Contains("issuer"));
  auto no_issuer_expected = expect();
  no_issuer_expected.issuer = "";
  CHECK_FALSE(check(mint(payload()), no_issuer_expected).ok);

  // exp: 60 s of leeway.
  auto t = [&](long long exp) { return check(mint(payload(R"(["aio-internal"])", exp))); };
  CHECK_THAT(t(1'700'000'000 - 61).error, Catch::Contains("expired"));
  CHECK(t(1'700'000'000 - 59).ok);
  CHECK_THAT(check(mint(R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","sub":"x"})")).error,
             Catch::Contains("no expiry"));
  CHECK_THAT(check(mint(R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","exp":"1700000600"})")).error,
             Catch::Contains("NumericDate"));

  // nbf: not valid yet, beyond the leeway only.
  auto with_nbf = [&](long long nbf) {
    return check(mint(R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","exp":)" + std::to_string(kExp) +
                      R"(,"nbf":)" + std::to_string(nbf) + "}"));
  };
  CHECK_THAT(with_nbf(1'700'000'000 + 61).error, Catch::Contains("not valid yet"));
  CHECK(with_nbf(1'700'000'000 + 59).ok);
  CHECK(with_nbf(1'700'000'000 - 1000).ok);

  // Kubernetes claims that disagree with sub, or a claim of the wrong type.
  CHECK_THAT(check(mint(jwt_test::k8s_payload(kIssuer, R"("aio-internal")", kExp, "ns1", "sa1",
                                              R"(,"sub":"system:serviceaccount:kube-system:admin")")))
                 .error,
             Catch::Contains("sub"));
  CHECK_FALSE(
      check(mint(R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","exp":1700000600,"kubernetes.io":1})")).ok);
  CHECK_FALSE(check(mint(R"({"iss":7,"aud":"aio-internal","exp":1700000600})")).ok);
  CHECK_FALSE(check(mint(R"({"iss":")" + kIssuer + R"(","aud":["aio-internal",1],"exp":1700000600})")).ok);
  CHECK_FALSE(check(mint(R"(["not an object"])")).ok);

  // Older flat claims.
  auto flat = check(mint(R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","exp":1700000600,)" +
                         R"("kubernetes.io/serviceaccount/namespace":"ns2",)" +
                         R"("kubernetes.io/serviceaccount/service-account.name":"sa2"})"));
  REQUIRE(flat.ok);
  CHECK(flat.claims.service_account()->namespace_name == "ns2");
  CHECK(flat.claims.service_account()->name == "sa2");
}

TEST_CASE("jwt: tampering") {
  auto token = jwt_test::mint(rsa_key(), kRsHeader, payload());
  auto dot = token.rfind('.');
  // Another payload with the first token's signature.
  auto other = jwt_test::signing_input(kRsHeader, payload(R"(["aio-internal"])", kExp + 100000)) + token.substr(dot);
  CHECK_THAT(check(other).error, Catch::Contains("signature"));
  // A changed signature bit.
  auto sig = *jwt::base64url_decode(token.substr(dot + 1));
  sig[10] ^= 1;
  CHECK_FALSE(check(token.substr(0, dot + 1) + jwt::base64url_encode(sig)).ok);
  // ES256: a flipped bit, a DER signature instead of r||s, a truncated one.
  auto es = jwt_test::mint(ec_key(), kEsHeader, payload());
  auto esdot = es.rfind('.');
  auto raw = *jwt::base64url_decode(es.substr(esdot + 1));
  REQUIRE(raw.size() == 64);
  raw[40] ^= 0x80;
  CHECK_FALSE(check(es.substr(0, esdot + 1) + jwt::base64url_encode(raw)).ok);
  CHECK_FALSE(check(es.substr(0, esdot + 1) + jwt::base64url_encode(raw.substr(0, 63))).ok);
  CHECK_FALSE(check(es.substr(0, esdot + 1) + jwt::base64url_encode(raw + std::string(1, '\0'))).ok);
  // A zero r and s.
  CHECK_FALSE(check(es.substr(0, esdot + 1) + jwt::base64url_encode(std::string(64, '\0'))).ok);
}

TEST_CASE("jwt: algorithms refused") {
  auto p = payload();
  // alg none, without and with a signature.
  auto none = jwt_test::signing_input(R"({"alg":"none"})", p);
  CHECK_THAT(check(none + ".").error, Catch::Contains("not accepted"));
  CHECK_FALSE(check(none + "." + jwt::base64url_encode("sig")).ok);
  CHECK_FALSE(check(jwt_test::signing_input(R"({"alg":"None"})", p) + ".").ok);
  CHECK_FALSE(check(jwt_test::signing_input(R"({"typ":"JWT"})", p) + ".").ok);  // no alg
  CHECK_FALSE(check(jwt_test::signing_input(R"({"alg":["RS256"]})", p) + ".").ok);

  // HS256 keyed with the RSA public key's bytes (PEM, and the JWK's n): algorithm confusion.
  CHECK_THAT(check(jwt_test::hs256(rsa_key().public_pem(), R"({"alg":"HS256","kid":"rsa1"})", p)).error,
             Catch::Contains("not accepted"));
  CHECK_FALSE(check(jwt_test::hs256(rsa_key().jwk("rsa1"), R"({"alg":"HS256"})", p)).ok);
  for (auto alg : {"HS384", "HS512", "RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA"})
    CHECK_FALSE(check(jwt_test::mint(rsa_key(), std::string(R"({"alg":")") + alg + R"("})", p)).ok);

  // The key's type must be the alg's: an RSA key's kid in an ES256 header and the reverse.
  CHECK_FALSE(check(jwt_test::mint(rsa_key(), R"({"alg":"ES256","kid":"rsa1"})", p)).ok);
  CHECK_FALSE(check(jwt_test::mint(ec_key(), R"({"alg":"RS256","kid":"ec1"})", p)).ok);
  CHECK_FALSE(check(jwt_test::mint(ec_key(), R"({"alg":"RS256"})", p)).ok);

  // crit extensions are not understood, so refused.
  CHECK_THAT(check(jwt_test::mint(rsa_key(), R"({"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1})", p)).error,
             Catch::Contains("crit"));
}

TEST_CASE("jwt: key selection") {
  auto p = payload();
  auto not_found = check(jwt_test::mint(rsa_key(), R"({"alg":"RS256","kid":"rotated-away"})", p));
  CHECK_THAT(not_found.error, Catch::Contains("no key with the token's kid"));
  // The right kid, but signed by another key.
  auto stranger = TestKey::make_ec();
  CHECK_FALSE(check(jwt_test::mint(stranger, kEsHeader, p)).ok);
  CHECK_FALSE(check(jwt_test::mint(stranger, R"({"alg":"ES256"})", p)).ok);

  // A JWK's alg must be the token's; a JWK without kid matches only tokens without one.
  auto set = jwt::KeySet::parse_jwks(
      jwt_test::jwks({rsa_key().jwk("", R"("alg":"RS256","use":"sig")"), ec_key().jwk("e", R"("alg":"ES256")")}));
  REQUIRE(set.size() == 2);
  CHECK(jwt::verify(jwt_test::mint(rsa_key(), R"({"alg":"RS256"})", p), set, expect()).ok);
  CHECK_FALSE(jwt::verify(jwt_test::mint(rsa_key(), R"({"alg":"RS256","kid":"x"})", p), set, expect()).ok);
  CHECK(jwt::verify(jwt_test::mint(ec_key(), R"({"alg":"ES256","kid":"e"})", p), set, expect()).ok);
}

TEST_CASE("jwt: token structure") {
  auto token = jwt_test::mint(rsa_key(), kRsHeader, payload());
  CHECK_THAT(check(token.substr(0, token.rfind('.'))).error, Catch::Contains("three parts"));  // 2 parts
  CHECK_FALSE(check(token + ".").ok);
  CHECK_FALSE(check(token + ".e30").ok);  // 4 parts
  CHECK_FALSE(check("").ok);
  CHECK_FALSE(check("..").ok);
  CHECK_FALSE(check(token + "=").ok);  // padding
  CHECK_FALSE(check(" " + token).ok);
  std::string plus = token;
  std::replace(plus.begin(), plus.end(), '-', '+');
  std::replace(plus.begin(), plus.end(), '_', '/');
  if (plus != token) CHECK_FALSE(check(plus).ok);
  // The header is checked before any key is tried.
  CHECK_FALSE(check(jwt::base64url_encode("{") + "." + jwt::base64url_encode(payload()) + ".AAAA").ok);
  CHECK_FALSE(check(jwt::base64url_encode("[1]") + "." + jwt::base64url_encode(payload()) + ".AAAA").ok);
  // Oversize: a valid token padded with a claim beyond 16 KiB.
  auto big = jwt_test::mint(rsa_key(), kRsHeader,
                            jwt_test::k8s_payload(kIssuer, R"("aio-internal")", kExp, "ns1", "sa1",
                                                  ",\"pad\":\"" + std::string(13000, 'a') + "\""));
  REQUIRE(big.size() > jwt::kMaxTokenBytes);
  CHECK_THAT(check(big).error, Catch::Contains("longer than"));
  // Deep nesting in a signed payload.
  auto deep = jwt_test::mint(rsa_key(), kRsHeader,
                             R"({"iss":")" + kIssuer + R"(","aud":"aio-internal","exp":1700000600,"x":)" +
                                 std::string(100, '[') + std::string(100, ']') + "}");
  CHECK_FALSE(check(deep).ok);
}

TEST_CASE("jwt: JWKS parsing") {
  auto rsa = rsa_key().jwk("r");
  CHECK(jwt::KeySet::parse_jwks(jwt_test::jwks({rsa})).size() == 1);
  // Skipped, not failed: other key types, curves, uses, algorithms.
  auto p384 = TestKey::make_ec("P-384");
  auto set = jwt::KeySet::parse_jwks(jwt_test::jwks(
      {rsa, p384.jwk("p384"), R"({"kty":"oct","k":"c2VjcmV0"})", R"({"kty":"OKP","crv":"Ed25519","x":"AAAA"})",
       rsa_key().jwk("enc", R"("use":"enc")"), rsa_key().jwk("rs384", R"("alg":"RS384")"),
       ec_key().jwk("ec-rs", R"("alg":"RS256")"), rsa_key().jwk("ops", R"("key_ops":["encrypt"])")}));
  CHECK(set.size() == 1);
  CHECK(set.skipped().size() == 7);
  // A token signed with the P-384 key: its kid was skipped.
  CHECK_FALSE(jwt::verify(jwt_test::mint(p384, R"({"alg":"ES256","kid":"p384"})", payload()), set, expect()).ok);

  // RSA 1024: skipped; alone, no usable key.
  auto weak = TestKey::make_rsa(1024);
  auto with_weak = jwt::KeySet::parse_jwks(jwt_test::jwks({weak.jwk("weak"), rsa}));
  CHECK(with_weak.size() == 1);
  CHECK_THAT(with_weak.skipped().at(0), Catch::Contains("1024 bits"));
  CHECK_FALSE(jwt::verify(jwt_test::mint(weak, R"({"alg":"RS256","kid":"weak"})", payload()), with_weak, expect()).ok);
  CHECK_FALSE(jwt::verify(jwt_test::mint(weak, R"({"alg":"RS256"})", payload()), with_weak, expect()).ok);
  CHECK_THROWS_WITH(jwt::KeySet::parse_jwks(jwt_test::jwks({weak.jwk("weak")})), Catch::Contains("no usable key"));

  // Malformed.
  auto bad = [](const std::string& text) { CHECK_THROWS_AS(jwt::KeySet::parse_jwks(text), std::runtime_error); };
  bad("");
  bad("{");
  bad("[]");
  bad("{}");
  bad(R"({"keys":{}})");
  bad(R"({"keys":[]})");
  bad(R"({"keys":[1]})");
  bad(R"({"keys":[{"n":"AQAB"}]})");                                      // no kty
  bad(R"({"keys":[{"kty":"RSA","e":"AQAB"}]})");                          // no n
  bad(R"({"keys":[{"kty":"RSA","n":"AQAB=","e":"AQAB"}]})");              // padding
  bad(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})");  // short coordinates
  bad(R"({"keys":[{"kty":"EC","x":"AAAA","y":"AAAA"}]})");                // no crv
  bad(R"({"keys":[{"kty":7}]})");
  bad(R"({"keys":[]} trailing)");
  bad(R"({"keys":[],})");
  // A point not on P-256: x and y of the real key with y changed.
  auto ec = ec_key().jwk("ec");
  auto ypos = ec.find("\"y\":\"") + 5;
  ec[ypos] = ec[ypos] == 'A' ? 'B' : 'A';
  bad(jwt_test::jwks({ec}));
  // Bounds: more than 100 keys, more than 1 MiB, deeper than allowed.
  std::vector<std::string> many(101, R"({"kty":"oct","k":"AA"})");
  bad(jwt_test::jwks(many));
  bad(R"({"keys":[)" + rsa + "," + R"({"kty":"oct","k":")" + std::string(jwt::kMaxJwksBytes, 'A') + "\"}]}");
  bad(R"({"keys":[)" + rsa + R"(],"x":)" + std::string(50, '[') + std::string(50, ']') + "}");
}

TEST_CASE("jwt: read_unverified") {
  auto c = jwt::read_unverified(jwt_test::mint(ec_key(), kEsHeader, payload()));
  REQUIRE(c);
  CHECK(c->expires == std::chrono::system_clock::time_point(std::chrono::seconds(kExp)));
  CHECK(jwt::read_unverified(jwt_test::signing_input(R"({"alg":"none"})", payload()) + "."));  // no check at all
  CHECK_FALSE(jwt::read_unverified("a.b"));
  CHECK_FALSE(jwt::read_unverified("e30.W10.AAAA"));  // payload []
}

TEST_CASE("jwt: OIDC discovery") {
  CHECK(jwt::jwks_uri_from_discovery(R"({"issuer":"https://iss","jwks_uri":"https://iss/openid/v1/jwks"})",
                                     "https://iss") == "https://iss/openid/v1/jwks");
  CHECK_THROWS_WITH(
      jwt::jwks_uri_from_discovery(R"({"issuer":"https://evil","jwks_uri":"https://evil/k"})", "https://iss"),
      Catch::Contains("issuer"));
  CHECK_THROWS_WITH(
      jwt::jwks_uri_from_discovery(R"({"issuer":"https://iss","jwks_uri":"http://iss/k"})", "https://iss"),
      Catch::Contains("https"));
  CHECK_THROWS(jwt::jwks_uri_from_discovery(R"({"issuer":"https://iss","jwks_uri":"https://"})", "https://iss"));
  CHECK_THROWS(jwt::jwks_uri_from_discovery(R"({"issuer":"https://iss"})", "https://iss"));
  CHECK_THROWS(jwt::jwks_uri_from_discovery(R"({"jwks_uri":"https://iss/k"})", "https://iss"));
  CHECK_THROWS(jwt::jwks_uri_from_discovery("not json", "https://iss"));
}

TEST_CASE("jwt: what a token says is quoted safely in error texts") {
  // A kid that would end a log line's detail="..." and add fields of its own.
  auto forged =
      check(jwt_test::mint(rsa_key(), R"({"alg":"RS256","kid":"x\" event=authenticated username=admin"})", payload()));
  CHECK_FALSE(forged.ok);
  CHECK(forged.error == R"(no key with the token's kid 'x\" event=authenticated username=admin')");
  // A newline (a line of its own in the log) and other control characters, as \xNN.
  auto newline = check(jwt_test::mint(rsa_key(), R"({"alg":"RS256","kid":"a\nevent=x\u0000\u001b"})", payload()));
  CHECK(newline.error == R"(no key with the token's kid 'a\x0aevent=x\x00\x1b')");
  CHECK(newline.error.find('\n') == std::string::npos);
  auto alg = check(jwt_test::signing_input(R"({"alg":"no\\ne\r"})", payload()) + ".");
  CHECK_THAT(alg.error, Catch::Contains(R"(algorithm 'no\\ne\x0d' is not accepted)"));

  CHECK(jwt::quoted("plain") == "'plain'");
  CHECK(jwt::quoted("it's \"x\" \\") == R"('it\'s \"x\" \\')");
  CHECK(jwt::quoted("caf\xc3\xa9") == R"('caf\xc3\xa9')");  // not printable ASCII: as bytes
  // Long values are cut at 64 bytes.
  CHECK(jwt::quoted(std::string(100, 'k')) == "'" + std::string(64, 'k') + "...'");
  CHECK(jwt::quoted(std::string(64, 'k')) == "'" + std::string(64, 'k') + "'");
  CHECK(jwt::quoted(std::string(200, '"')).size() == 2 * 64 + 5);
}
