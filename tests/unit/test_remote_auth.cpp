// The K8S-SAT validators of remote_auth/: offline (tokens minted here, files in a temporary
// folder) and TokenReview (its JSON, and its flow over a fake API that answers at once).
#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "jwt_minting.hpp"
#include "remote_auth/offline_token_validator.hpp"
#include "remote_auth/service_accounts_file.hpp"
#include "remote_auth/token_review.hpp"
#include "remote_auth/token_review_validator.hpp"
#include "remote_auth/verdict_cache.hpp"

using namespace mqttd;
using namespace mqttd::remote_auth;
using authn::RemoteVerdict;
using jwt_test::TestKey;
namespace fs = std::filesystem;

namespace {

const std::string kIssuer = "https://kubernetes.default.svc.cluster.local";

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("mqttd-remote-auth-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    auto p = (path / name).string();
    jwt_test::write_file(p, text);
    return p;
  }
};

// Rewrites a file so that its modification time surely differs from the last read's.
void rewrite(const std::string& path, const std::string& text) {
  auto before = fs::last_write_time(path);
  jwt_test::write_file(path, text);
  fs::last_write_time(path, before + std::chrono::seconds(2));
}

RemoteVerdict run(authn::TokenValidator& v, const std::string& token, std::vector<std::string> audiences) {
  std::optional<RemoteVerdict> out;
  v.validate(token, std::move(audiences), [&](RemoteVerdict r) { out = std::move(r); });
  REQUIRE(out);  // both validators answer synchronously here
  return *out;
}

long long in_one_hour() { return jwt_test::epoch(std::chrono::system_clock::now()) + 3600; }

std::string sat(const TestKey& key, const std::string& kid, const std::string& aud, const std::string& ns = "ns1",
                const std::string& sa = "sa1") {
  return jwt_test::mint(key,
                        key.rsa ? R"({"alg":"RS256","kid":")" + kid + "\"}" : R"({"alg":"ES256","kid":")" + kid + "\"}",
                        jwt_test::k8s_payload(kIssuer, aud, in_one_hour(), ns, sa));
}

}  // namespace

TEST_CASE("remote_auth: service accounts file") {
  auto table = parse_service_accounts(R"(
serviceAccounts:
  - namespace: ns1
    name: sa1
    annotations:
      aio-broker-auth/group: authz-sat
      aio-mq-broker-auth/floor: "3"
      unrelated/annotation: x
  - {namespace: ns2, name: sa2}
)");
  REQUIRE(table.size() == 2);
  CHECK(table.at({"ns1", "sa1"}) == std::map<std::string, std::string>{{"group", "authz-sat"}, {"floor", "3"}});
  CHECK(table.at({"ns2", "sa2"}).empty());
  CHECK(parse_service_accounts("").empty());
  CHECK_THROWS_WITH(parse_service_accounts("serviceAccounts: [{namespace: a}]"), Catch::Contains("'name'"));
  CHECK_THROWS_WITH(parse_service_accounts("serviceAccounts: [{namespace: a, name: b}, {namespace: a, name: b}]"),
                    Catch::Contains("twice"));
  CHECK_THROWS(parse_service_accounts("serviceAccounts: {a: b}"));
  CHECK_THROWS(parse_service_accounts("[unclosed"));
}

TEST_CASE("remote_auth: offline validator") {
  auto rsa = TestKey::make_rsa(2048);
  auto ec = TestKey::make_ec();
  TempDir dir;
  auto jwks = dir.file("jwks.json", jwt_test::jwks({rsa.jwk("k1")}));
  auto accounts = dir.file("accounts.yaml", R"(serviceAccounts:
  - namespace: ns1
    name: sa1
    annotations: {aio-broker-auth/group: authz-sat}
)");
  OfflineTokenSettings settings{kIssuer, jwks, accounts};
  settings.file_check_interval = std::chrono::milliseconds(0);
  auto validator = make_offline_token_validator(settings);

  auto ok = run(*validator, sat(rsa, "k1", R"(["aio-internal"])"), {"aio-internal"});
  CHECK(ok.kind == RemoteVerdict::Kind::Accepted);
  CHECK(ok.attributes == std::map<std::string, std::string>{{"group", "authz-sat"}});
  REQUIRE(ok.expires);
  CHECK(jwt_test::epoch(*ok.expires) == in_one_hour());
  CHECK_FALSE(ok.username);

  // An account not in the file: accepted, no attributes.
  auto other = run(*validator, sat(rsa, "k1", R"(["aio-internal"])", "ns9", "sa9"), {"aio-internal"});
  CHECK(other.kind == RemoteVerdict::Kind::Accepted);
  CHECK(other.attributes.empty());

  auto token = sat(rsa, "k1", R"(["aio-internal"])");
  auto wrong_aud = run(*validator, token, {"another-audience"});
  CHECK(wrong_aud.kind == RemoteVerdict::Kind::Refused);
  CHECK_THAT(wrong_aud.detail, Catch::Contains("audience"));
  CHECK(wrong_aud.detail.find(token) == std::string::npos);  // never the token
  CHECK(run(*validator, "garbage", {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);

  // Key rotation: the file now holds the EC key only.
  auto ec_token = sat(ec, "k2", R"(["aio-internal"])");
  CHECK(run(*validator, ec_token, {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);
  rewrite(jwks, jwt_test::jwks({ec.jwk("k2")}));
  CHECK(run(*validator, ec_token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(run(*validator, token, {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);

  // A broken new version keeps the keys in use.
  rewrite(jwks, "{\"keys\":[");
  CHECK(run(*validator, ec_token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  // So does a missing file; and a good one after it is used again.
  fs::remove(jwks);
  CHECK(run(*validator, ec_token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  jwt_test::write_file(jwks, jwt_test::jwks({rsa.jwk("k1")}));
  CHECK(run(*validator, token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);

  // The accounts file is re-read too.
  rewrite(accounts, "serviceAccounts: [{namespace: ns1, name: sa1, annotations: {aio-broker-auth/group: other}}]");
  CHECK(run(*validator, token, {"aio-internal"}).attributes.at("group") == "other");

  // The checks between rereads: with the default interval, a change is not seen at once.
  settings.file_check_interval = std::chrono::milliseconds(1000);
  auto slow = make_offline_token_validator(settings);
  rewrite(jwks, jwt_test::jwks({ec.jwk("k2")}));
  CHECK(run(*slow, token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);

  // Creation fails with the file and the problem named.
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, (dir.path / "none.json").string()}),
                    Catch::Contains("none.json"));
  auto bad = dir.file("bad.json", R"({"keys":[]})");
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, bad}),
                    Catch::Contains("bad.json") && Catch::Contains("no usable key"));
  auto bad_accounts = dir.file("bad.yaml", "serviceAccounts: 3");
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, jwks, bad_accounts}), Catch::Contains("bad.yaml"));
  CHECK_THROWS(make_offline_token_validator({"", jwks}));
}

TEST_CASE("remote_auth: TokenReview JSON") {
  CHECK(
      token_review::request_body("tok\"en", {"aio-internal", "b"}) ==
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"tok\"en","audiences":["aio-internal","b"]}})");

  auto ok = token_review::parse_review(R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{
      "authenticated":true,"user":{"username":"system:serviceaccount:ns1:sa1","uid":"u","groups":["system:serviceaccounts"]},
      "audiences":["aio-internal"]}})",
                                       {"aio-internal", "x"});
  CHECK(ok.authenticated);
  CHECK(ok.account.namespace_name == "ns1");
  CHECK(ok.account.name == "sa1");

  auto no = token_review::parse_review(
      R"({"status":{"authenticated":false,"error":"[invalid bearer token, token has expired]"}})", {"aio-internal"});
  CHECK_FALSE(no.authenticated);
  CHECK_THAT(no.detail, Catch::Contains("token has expired"));
  CHECK_FALSE(token_review::parse_review(R"({"status":{}})", {"a"}).authenticated);
  auto user = token_review::parse_review(
      R"({"status":{"authenticated":true,"user":{"username":"alice"},"audiences":["a"]}})", {"a"});
  CHECK_FALSE(user.authenticated);
  CHECK_THAT(user.detail, Catch::Contains("not a service account"));
  auto aud = token_review::parse_review(
      R"({"status":{"authenticated":true,"user":{"username":"system:serviceaccount:a:b"},"audiences":["other"]}})",
      {"a"});
  CHECK_FALSE(aud.authenticated);
  CHECK_THAT(aud.detail, Catch::Contains("audiences"));
  CHECK_FALSE(token_review::parse_review(
                  R"({"status":{"authenticated":true,"user":{"username":"system:serviceaccount:a:b"}}})", {"a"})
                  .authenticated);
  CHECK_THROWS(token_review::parse_review("<html>", {"a"}));
  CHECK_THROWS(token_review::parse_review(R"({"kind":"Status"})", {"a"}));

  CHECK(token_review::service_account_path({"ns1", "sa1"}) == "/api/v1/namespaces/ns1/serviceaccounts/sa1");
  CHECK_FALSE(token_review::service_account_path({"ns1", "../secrets"}));
  CHECK_FALSE(token_review::service_account_path({"ns1", "a?b"}));

  auto annotations = token_review::parse_service_account_annotations(R"({"apiVersion":"v1","kind":"ServiceAccount",
      "metadata":{"name":"sa1","namespace":"ns1","annotations":{"aio-broker-auth/group":"authz-sat",
      "aio-mq-broker-auth/group":"older","aio-mq-broker-auth/floor":"3","kubectl.kubernetes.io/last-applied-configuration":"{}"}}})");
  CHECK(authn::attributes_from_annotations(annotations) ==
        std::map<std::string, std::string>{{"group", "authz-sat"}, {"floor", "3"}});
  CHECK(
      token_review::parse_service_account_annotations(R"({"kind":"ServiceAccount","metadata":{"name":"x"}})").empty());
  CHECK_THROWS(token_review::parse_service_account_annotations(R"({"kind":"Status","code":404})"));
}

TEST_CASE("remote_auth: verdict cache") {
  VerdictCache cache(3);
  auto now = std::chrono::system_clock::now();
  RemoteVerdict v;
  v.kind = RemoteVerdict::Kind::Accepted;
  CHECK(VerdictCache::key("t", {"a", "b"}) != VerdictCache::key("t", {"ab"}));
  CHECK(VerdictCache::key("t", {"a"}).size() == 32);
  cache.put("a", v, now + std::chrono::seconds(10), now);
  cache.put("b", v, now + std::chrono::seconds(1), now);
  cache.put("c", v, now + std::chrono::seconds(10), now);
  CHECK(cache.find("a", now));
  CHECK_FALSE(cache.find("b", now + std::chrono::seconds(2)));  // expired
  cache.put("b", v, now + std::chrono::seconds(1), now);
  // Full: the expired "b" goes first, then the oldest.
  cache.put("d", v, now + std::chrono::seconds(10), now + std::chrono::seconds(5));
  CHECK(cache.size() == 3);
  CHECK(cache.find("a", now + std::chrono::seconds(5)));
  cache.put("e", v, now + std::chrono::seconds(10), now + std::chrono::seconds(5));
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.find("a", now + std::chrono::seconds(5)));
  CHECK(cache.find("e", now + std::chrono::seconds(5)));
}

TEST_CASE("remote_auth: TokenReview validator over a fake API") {
  TempDir dir;
  auto pod_token = dir.file("token", "broker-token-1\n");
  KubernetesApiSettings settings{"https://10.0.0.1:6443", pod_token, (dir.path / "ca.crt").string()};
  settings.file_check_interval = std::chrono::milliseconds(0);

  std::vector<http::Request> requests;
  // Answers: by path, what the fake API says.
  std::map<std::string, http::Response> answers;
  auto answer = [](unsigned status, std::string body) {
    http::Response r;
    r.ok = true;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    return r;
  };
  const std::string review_path = "/apis/authentication.k8s.io/v1/tokenreviews";
  const std::string account_path = "/api/v1/namespaces/ns1/serviceaccounts/sa1";
  answers[review_path] = answer(201, R"({"kind":"TokenReview","status":{"authenticated":true,
      "user":{"username":"system:serviceaccount:ns1:sa1"},"audiences":["aio-internal"]}})");
  answers[account_path] =
      answer(200, R"({"kind":"ServiceAccount","metadata":{"annotations":{"aio-broker-auth/group":"authz-sat"}}})");
  auto validator = make_token_review_validator_with(
      [&](http::Request r, std::function<void(http::Response)> done) {
        requests.push_back(r);
        auto path = r.url.substr(std::string("https://10.0.0.1:6443").size());
        done(answers.count(path) ? answers[path] : answer(404, "{}"));
      },
      settings);

  auto key = TestKey::make_ec();
  auto token = sat(key, "k", R"(["aio-internal"])");
  auto v = run(*validator, token, {"aio-internal"});
  CHECK(v.kind == RemoteVerdict::Kind::Accepted);
  CHECK(v.attributes == std::map<std::string, std::string>{{"group", "authz-sat"}});
  REQUIRE(v.expires);
  CHECK(jwt_test::epoch(*v.expires) == in_one_hour());
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].url == "https://10.0.0.1:6443" + review_path);
  CHECK(requests[0].body == token_review::request_body(token, {"aio-internal"}));
  CHECK(std::find(requests[0].headers.begin(), requests[0].headers.end(),
                  std::pair<std::string, std::string>{"Authorization", "Bearer broker-token-1"}) !=
        requests[0].headers.end());
  REQUIRE(requests[0].tls);
  CHECK(requests[0].tls->ca_paths == std::vector<std::string>{settings.ca_file});
  CHECK(requests[1].method == "GET");
  CHECK(requests[1].url == "https://10.0.0.1:6443" + account_path);

  // Cached: no call for the same token and audiences (in another order).
  CHECK(run(*validator, token, {"aio-internal", "aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(requests.size() == 2);

  // The pod token is re-read when the kubelet rotates it.
  rewrite(pod_token, "broker-token-2");
  auto token2 = sat(key, "k", R"(["aio-internal","x"])");
  CHECK(run(*validator, token2, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(requests.at(2).headers.at(0).second == "Bearer broker-token-2");

  // Refused: not authenticated; cached briefly.
  answers[review_path] = answer(201, R"({"status":{"authenticated":false,"error":"token expired"}})");
  auto bad = sat(key, "k", R"(["nope"])");
  auto refused = run(*validator, bad, {"aio-internal"});
  CHECK(refused.kind == RemoteVerdict::Kind::Refused);
  CHECK_THAT(refused.detail, Catch::Contains("token expired"));
  auto calls = requests.size();
  CHECK(run(*validator, bad, {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);
  CHECK(requests.size() == calls);

  // Transient failures: Unavailable, not cached.
  for (unsigned status : {500u, 503u, 429u, 401u, 403u}) {
    answers[review_path] = answer(status, "{}");
    auto t = sat(key, "k", R"(["aio-internal"])", "ns1", "sa-" + std::to_string(status));
    CHECK(run(*validator, t, {"aio-internal"}).kind == RemoteVerdict::Kind::Unavailable);
    CHECK(run(*validator, t, {"aio-internal"}).kind == RemoteVerdict::Kind::Unavailable);
  }
  answers[review_path] = http::Response{false, "connect: connection refused", 0, "", ""};
  auto down = run(*validator, sat(key, "k", R"(["aio-internal"])", "ns1", "down"), {"aio-internal"});
  CHECK(down.kind == RemoteVerdict::Kind::Unavailable);
  CHECK_THAT(down.detail, Catch::Contains("connection refused"));
  answers[review_path] = answer(201, "not json");
  CHECK(run(*validator, sat(key, "k", R"(["aio-internal"])", "ns1", "junk"), {"aio-internal"}).kind ==
        RemoteVerdict::Kind::Unavailable);

  // The account is gone (404): refused. The account call fails (500): unavailable.
  answers[review_path] = answer(201, R"({"status":{"authenticated":true,
      "user":{"username":"system:serviceaccount:ns1:gone"},"audiences":["aio-internal"]}})");
  CHECK(run(*validator, sat(key, "k", R"(["aio-internal"])", "ns1", "gone"), {"aio-internal"}).kind ==
        RemoteVerdict::Kind::Refused);
  answers["/api/v1/namespaces/ns1/serviceaccounts/gone"] = answer(500, "{}");
  CHECK(run(*validator, sat(key, "k", R"(["aio-internal"])", "ns1", "gone2"), {"aio-internal"}).kind ==
        RemoteVerdict::Kind::Unavailable);

  // An oversize token is refused without a call.
  calls = requests.size();
  CHECK(run(*validator, std::string(20000, 'a'), {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);
  CHECK(requests.size() == calls);

  CHECK_THROWS_WITH(
      make_token_review_validator_with([](auto, auto) {}, {"https://x", (dir.path / "missing").string(), "ca"}),
      Catch::Contains("missing"));
}
