// K8S-SAT verified offline against the keys an OIDC issuer publishes: the discovery document and
// the JWKS served by a real HTTPS server on loopback, fetched with the broker's HTTPS client.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "http/https_client.hpp"
#include "jwt_minting.hpp"
#include "remote_auth/offline_token_validator.hpp"
#include "remote_auth/oidc_key_source.hpp"
#include "tests/support/https_test_server.hpp"

using namespace std::chrono_literals;
using namespace mqttd;
using namespace mqttd::remote_auth;
using authn::RemoteVerdict;
using jwt_test::TestKey;
using mqttd::test::CannedAnswer;
using mqttd::test::HttpsTestServer;
using mqttd::test::ReceivedRequest;
using mqttd::test::TestPki;
using Kind = RemoteVerdict::Kind;

namespace {

// What the fake issuer serves; changed by the test while the server runs.
struct Issuer {
  std::mutex mutex;
  std::string issuer;  // the discovery document's `issuer`
  std::string jwks;
  unsigned short port = 0;
  int discovery_calls = 0, jwks_calls = 0;

  CannedAnswer answer(const ReceivedRequest& r) {
    std::lock_guard lock(mutex);
    auto base = "https://127.0.0.1:" + std::to_string(port);
    if (r.target == "/.well-known/openid-configuration") {
      ++discovery_calls;
      return {200, "application/json",
              R"({"issuer":")" + issuer + R"(","jwks_uri":")" + base +
                  R"(/openid/v1/jwks","response_types_supported":["id_token"]})"};
    }
    if (r.target == "/openid/v1/jwks") {
      ++jwks_calls;
      return {200, "application/json", jwks};
    }
    return {404, "text/plain", "not found"};
  }
  int fetches() {
    std::lock_guard lock(mutex);
    return jwks_calls;
  }
};

struct Fixture {
  TestPki pki;
  TestPki::Identity ca = pki.make_ca("Issuer CA");
  TestPki::Identity server_id = pki.make_leaf("issuer", ca, {"localhost"}, {"127.0.0.1"});
  Issuer issuer;
  HttpsTestServer server{server_id.cert_pem, server_id.key_pem,
                         [this](const ReceivedRequest& r) { return issuer.answer(r); }};
  http::Client client;
  std::string url;

  Fixture() {
    issuer.port = server.port();
    url = "https://127.0.0.1:" + std::to_string(server.port());
    issuer.issuer = url;
  }
  OidcKeySourceSettings settings() const {
    OidcKeySourceSettings s;
    s.issuer_url = url;
    s.ca_file = ca.cert_file;
    s.timeout = 5s;
    return s;
  }
};

RemoteVerdict run(authn::TokenValidator& v, const std::string& token) {
  auto promise = std::make_shared<std::promise<RemoteVerdict>>();
  auto future = promise->get_future();
  v.validate(token, {"aio-internal"}, [promise](RemoteVerdict r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

std::string token(const TestKey& key, const std::string& kid, const std::string& issuer) {
  auto exp = jwt_test::epoch(std::chrono::system_clock::now()) + 3600;
  return jwt_test::mint(key, R"({"alg":"RS256","kid":")" + kid + "\"}",
                        jwt_test::k8s_payload(issuer, R"(["aio-internal"])", exp));
}

// Waits until the source has keys (the first fetch runs on the client's thread).
bool wait_for_keys(KeySource& source) {
  for (int i = 0; i < 500; ++i) {
    if (source.current()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

TEST_CASE("oidc keys: discovery document and JWKS over HTTPS", "[oidc]") {
  Fixture f;
  auto key = TestKey::make_rsa(2048);
  f.issuer.jwks = jwt_test::jwks({key.jwk("k1")});
  auto source = make_oidc_key_source(f.client, f.settings());
  REQUIRE(wait_for_keys(*source));
  auto validator = make_offline_token_validator({f.url, ""}, source);

  auto ok = run(*validator, token(key, "k1", f.url));
  CHECK(ok.kind == Kind::Accepted);
  CHECK(ok.subject == "ns1/sa1");
  CHECK(run(*validator, token(key, "k1", "https://another.issuer")).kind == Kind::Refused);
  CHECK(f.issuer.fetches() == 1);
  auto requests = f.server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].target == "/.well-known/openid-configuration");
  CHECK(requests[1].target == "/openid/v1/jwks");

  // A URL with a trailing slash finds the same document.
  auto settings = f.settings();
  settings.issuer_url = f.url + "/";
  settings.expected_issuer = f.url;
  auto slash = make_oidc_key_source(f.client, settings);
  CHECK(wait_for_keys(*slash));

  CHECK_THROWS(make_oidc_key_source(f.client, {"http://127.0.0.1:1", ""}));
}

TEST_CASE("oidc keys: until keys arrive, tokens are Unavailable; an issuer mismatch brings none", "[oidc]") {
  Fixture f;
  auto key = TestKey::make_rsa(2048);
  f.issuer.jwks = jwt_test::jwks({key.jwk("k1")});
  f.issuer.issuer = "https://somebody.else";  // the document's issuer is not the expected one
  auto source = make_oidc_key_source(f.client, f.settings());
  auto validator = make_offline_token_validator({f.url, ""}, source);
  // The discovery fetch is answered, but no JWKS is ever asked for.
  for (int i = 0; i < 500 && f.server.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(source->current());
  CHECK(f.issuer.fetches() == 0);
  auto v = run(*validator, token(key, "k1", f.url));
  CHECK(v.kind == Kind::Unavailable);  // never accepted

  // An issuer that cannot be reached (no such port): no keys either.
  auto settings = f.settings();
  settings.issuer_url = "https://127.0.0.1:1";
  auto unreachable = make_oidc_key_source(f.client, settings);
  auto v2 = run(*make_offline_token_validator({settings.issuer_url, ""}, unreachable), token(key, "k1", f.url));
  CHECK(v2.kind == Kind::Unavailable);
}

TEST_CASE("oidc keys: a token with a new kid refetches the keys; a broken JWKS keeps the old ones", "[oidc]") {
  Fixture f;
  auto old_key = TestKey::make_rsa(2048);
  auto new_key = TestKey::make_rsa(2048);
  f.issuer.jwks = jwt_test::jwks({old_key.jwk("old")});
  auto settings = f.settings();
  settings.min_refetch_interval = 0ms;
  auto source = make_oidc_key_source(f.client, settings);
  REQUIRE(wait_for_keys(*source));
  auto validator = make_offline_token_validator({f.url, ""}, source);
  CHECK(run(*validator, token(old_key, "old", f.url)).kind == Kind::Accepted);
  CHECK(f.issuer.fetches() == 1);

  // Rotation: the issuer publishes a new key; the first token signed with it waits for the refetch.
  {
    std::lock_guard lock(f.issuer.mutex);
    f.issuer.jwks = jwt_test::jwks({old_key.jwk("old"), new_key.jwk("new")});
  }
  CHECK(run(*validator, token(new_key, "new", f.url)).kind == Kind::Accepted);
  CHECK(f.issuer.fetches() == 2);
  CHECK(run(*validator, token(new_key, "new", f.url)).kind == Kind::Accepted);
  CHECK(f.issuer.fetches() == 2);  // known now: no fetch

  // A kid the issuer does not have either: refused after the refetch.
  auto unknown = run(*validator, token(new_key, "nobody", f.url));
  CHECK(unknown.kind == Kind::Refused);
  CHECK_THAT(unknown.detail, Catch::Contains("kid"));
  CHECK(f.issuer.fetches() == 3);

  // A broken JWKS on refresh: the keys in use stay.
  {
    std::lock_guard lock(f.issuer.mutex);
    f.issuer.jwks = R"({"keys":[)";
  }
  CHECK(run(*validator, token(new_key, "another", f.url)).kind == Kind::Refused);
  CHECK(f.issuer.fetches() == 4);
  CHECK(run(*validator, token(old_key, "old", f.url)).kind == Kind::Accepted);
  CHECK(run(*validator, token(new_key, "new", f.url)).kind == Kind::Accepted);
  REQUIRE(source->current());
  CHECK(source->current()->size() == 2);
}

TEST_CASE("oidc keys: refetches for unknown kids are rate-limited; stale keys are refreshed", "[oidc]") {
  Fixture f;
  auto key = TestKey::make_rsa(2048);
  auto later = TestKey::make_rsa(2048);
  f.issuer.jwks = jwt_test::jwks({key.jwk("k1")});
  auto settings = f.settings();  // min_refetch_interval: the default 30 s
  settings.refresh_interval = 200ms;
  auto source = make_oidc_key_source(f.client, settings);
  REQUIRE(wait_for_keys(*source));
  auto validator = make_offline_token_validator({f.url, ""}, source);
  // Too soon after the first fetch: no refetch, refused at once with the keys at hand.
  CHECK(run(*validator, token(key, "k9", f.url)).kind == Kind::Refused);
  CHECK(f.issuer.fetches() == 1);

  // Older than refresh_interval (but the 30 s since the last attempt not over): no fetch either.
  {
    std::lock_guard lock(f.issuer.mutex);
    f.issuer.jwks = jwt_test::jwks({key.jwk("k1"), later.jwk("k2")});
  }
  std::this_thread::sleep_for(300ms);
  CHECK(run(*validator, token(key, "k1", f.url)).kind == Kind::Accepted);

  // With a short min_refetch_interval, a stale set is refreshed in the background when asked for.
  settings.min_refetch_interval = 100ms;
  auto quick = make_oidc_key_source(f.client, settings);
  REQUIRE(wait_for_keys(*quick));
  auto before = f.issuer.fetches();
  std::this_thread::sleep_for(300ms);
  CHECK(quick->current());  // the current keys at once; a refresh starts
  for (int i = 0; i < 500 && f.issuer.fetches() == before; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.issuer.fetches() == before + 1);
}
