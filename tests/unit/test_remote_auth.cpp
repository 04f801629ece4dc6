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
  CHECK(ok.subject == "ns1/sa1");  // the token's Kubernetes claims

  // An account not in the file: accepted, no attributes.
  auto other = run(*validator, sat(rsa, "k1", R"(["aio-internal"])", "ns9", "sa9"), {"aio-internal"});
  CHECK(other.kind == RemoteVerdict::Kind::Accepted);
  CHECK(other.attributes.empty());
  CHECK(other.subject == "ns9/sa9");

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
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, (dir.path / "none.json").string(), std::nullopt}),
                    Catch::Contains("none.json"));
  auto bad = dir.file("bad.json", R"({"keys":[]})");
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, bad, std::nullopt}),
                    Catch::Contains("bad.json") && Catch::Contains("no usable key"));
  auto bad_accounts = dir.file("bad.yaml", "serviceAccounts: 3");
  CHECK_THROWS_WITH(make_offline_token_validator({kIssuer, jwks, bad_accounts}), Catch::Contains("bad.yaml"));
  CHECK_THROWS(make_offline_token_validator({"", jwks, std::nullopt}));
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

TEST_CASE("remote_auth: verdict cache, refusals apart") {
  VerdictCache cache(2, 2);
  auto now = std::chrono::system_clock::now();
  auto later = now + std::chrono::seconds(10);
  RemoteVerdict accepted, refused;
  accepted.kind = RemoteVerdict::Kind::Accepted;
  refused.kind = RemoteVerdict::Kind::Refused;
  cache.put("good1", accepted, later, now);
  cache.put("good2", accepted, later, now);
  // A flood of refusals evicts only refusals, the oldest first.
  for (int i = 0; i < 100; ++i) cache.put("bad" + std::to_string(i), refused, later, now);
  CHECK(cache.accepted_size() == 2);
  CHECK(cache.refused_size() == 2);
  CHECK(cache.size() == 4);
  CHECK(cache.find("good1", now));
  CHECK(cache.find("good2", now));
  CHECK(cache.find("bad99", now)->kind == RemoteVerdict::Kind::Refused);
  CHECK(cache.find("bad98", now));
  CHECK_FALSE(cache.find("bad97", now));
  // A key that changes verdict changes partition.
  cache.put("good1", refused, later, now);
  CHECK(cache.accepted_size() == 1);
  CHECK(cache.refused_size() == 2);
  CHECK(cache.find("good1", now)->kind == RemoteVerdict::Kind::Refused);
  cache.put("bad99", accepted, later, now);
  CHECK(cache.find("bad99", now)->kind == RemoteVerdict::Kind::Accepted);
  CHECK(cache.accepted_size() == 2);
  CHECK(cache.refused_size() == 1);

  // By default refusals get a tenth of the accepted bound (at least one).
  VerdictCache small(3);
  for (int i = 0; i < 5; ++i) small.put("bad" + std::to_string(i), refused, later, now);
  CHECK(small.refused_size() == 1);
  VerdictCache big(100);
  for (int i = 0; i < 50; ++i) big.put("bad" + std::to_string(i), refused, later, now);
  CHECK(big.refused_size() == 10);
  VerdictCache none(0);
  none.put("x", refused, later, now);
  none.put("y", accepted, later, now);
  CHECK(none.size() == 0);
}

namespace {

http::Response api_answer(unsigned status, std::string body) {
  http::Response r;
  r.ok = true;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

const std::string kReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews";
const std::string kApiUrl = "https://10.0.0.1:6443";

// The API's answer for a token of ns1/<sa> when it authenticates it.
http::Response review_of(const std::string& sa) {
  return api_answer(
      201, R"({"kind":"TokenReview","status":{"authenticated":true,"user":{"username":"system:serviceaccount:ns1:)" +
               sa + R"("},"audiences":["aio-internal"]}})");
}

// A fake API whose answers come when the test says: the requests wait in order.
struct DeferredApi {
  std::vector<std::pair<http::Request, std::function<void(http::Response)>>> waiting;
  std::size_t sent = 0;

  RequestSender sender() {
    return [this](http::Request r, std::function<void(http::Response)> done) {
      ++sent;
      waiting.emplace_back(std::move(r), std::move(done));
    };
  }
  // Answers the oldest waiting request as the API would for ns1/<sa>: reviewed, then the account.
  void answer_next(const std::string& sa = "sa1") {
    REQUIRE_FALSE(waiting.empty());
    auto [request, done] = std::move(waiting.front());
    waiting.erase(waiting.begin());
    if (request.url == kApiUrl + kReviewPath)
      done(review_of(sa));
    else
      done(api_answer(200, R"({"kind":"ServiceAccount","metadata":{}})"));
  }
  // Answers until nothing waits.
  void drain(const std::string& sa = "sa1") {
    while (!waiting.empty()) answer_next(sa);
  }
};

}  // namespace

TEST_CASE("remote_auth: TokenReview validator asks nothing about what cannot be a token for the method") {
  TempDir dir;
  KubernetesApiSettings settings{kApiUrl, dir.file("token", "broker-token"), (dir.path / "ca.crt").string()};
  std::size_t calls = 0;
  auto validator = make_token_review_validator_with(
      [&](http::Request r, std::function<void(http::Response)> done) {
        ++calls;
        done(r.url == kApiUrl + kReviewPath ? review_of("sa1") : api_answer(200, R"({"kind":"ServiceAccount"})"));
      },
      settings);
  auto key = TestKey::make_ec();
  auto now = jwt_test::epoch(std::chrono::system_clock::now());
  auto token = [&](const std::string& aud, long long exp) {
    return jwt_test::mint(key, R"({"alg":"ES256","kid":"k"})", jwt_test::k8s_payload(kIssuer, aud, exp));
  };
  struct Case {
    std::string token;
    std::string why;
  };
  for (const auto& c : std::vector<Case>{
           {"garbage", "not a JWT"},
           {"a.b.c", "not a JWT"},
           {jwt_test::base64url_encode("{}") + "." + jwt_test::base64url_encode("not json") + ".c2ln", "not a JWT"},
           {jwt_test::base64url_encode("{}") + "." + jwt_test::base64url_encode("[1]") + ".c2ln", "not a JWT"},
           {jwt_test::base64url_encode("{}") + "." + jwt_test::base64url_encode("{}") + ".c2ln", "audiences"},
           {token(R"(["another-audience"])", now + 3600), "audiences"},
           {token(R"("another-audience")", now + 3600), "audiences"},
           {token(R"(["aio-internal"])", now - 3600), "expired"},
       }) {
    INFO(c.token);
    auto v = run(*validator, c.token, {"aio-internal", "other"});
    CHECK(v.kind == RemoteVerdict::Kind::Refused);
    CHECK_THAT(v.detail, Catch::Contains("without a TokenReview") && Catch::Contains(c.why));
    CHECK(v.detail.find(c.token) == std::string::npos);
    // Cached as the API's refusals are.
    CHECK(run(*validator, c.token, {"aio-internal", "other"}).kind == RemoteVerdict::Kind::Refused);
  }
  CHECK(calls == 0);
  // Within the clock skew allowed (60 s), and without exp at all: the API server decides.
  CHECK(run(*validator, token(R"(["aio-internal"])", now - 10), {"aio-internal"}).kind ==
        RemoteVerdict::Kind::Accepted);
  CHECK(calls == 2);
  auto no_exp =
      jwt_test::mint(key, R"({"alg":"ES256"})", R"({"aud":"aio-internal","sub":"system:serviceaccount:ns1:sa1"})");
  auto v = run(*validator, no_exp, {"aio-internal"});
  CHECK(v.kind == RemoteVerdict::Kind::Accepted);
  CHECK(v.subject == "ns1/sa1");
  CHECK(calls == 4);
}

TEST_CASE("remote_auth: TokenReview validator, a flood of refusals does not evict an accepted review") {
  TempDir dir;
  KubernetesApiSettings settings{kApiUrl, dir.file("token", "broker-token"), (dir.path / "ca.crt").string()};
  settings.max_cache_entries = 10;  // and 1 refusal
  std::size_t calls = 0;
  bool authenticate = true;
  auto validator = make_token_review_validator_with(
      [&](http::Request r, std::function<void(http::Response)> done) {
        ++calls;
        if (r.url != kApiUrl + kReviewPath) return done(api_answer(200, R"({"kind":"ServiceAccount"})"));
        done(authenticate ? review_of("sa1")
                          : api_answer(201, R"({"status":{"authenticated":false,"error":"invalid signature"}})"));
      },
      settings);
  auto key = TestKey::make_ec();
  auto good = sat(key, "k", R"(["aio-internal"])");
  CHECK(run(*validator, good, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(calls == 2);
  authenticate = false;
  for (int i = 0; i < 50; ++i) {
    // Refused by the API (well-formed, forged), and garbage refused without a call.
    CHECK(run(*validator, sat(key, "k", R"(["aio-internal"])", "ns1", "forged" + std::to_string(i)), {"aio-internal"})
              .kind == RemoteVerdict::Kind::Refused);
    CHECK(run(*validator, "garbage" + std::to_string(i), {"aio-internal"}).kind == RemoteVerdict::Kind::Refused);
  }
  CHECK(calls == 52);
  auto again = run(*validator, good, {"aio-internal"});
  CHECK(again.kind == RemoteVerdict::Kind::Accepted);  // from the cache: the API would refuse it now
  CHECK(again.subject == "ns1/sa1");
  CHECK(calls == 52);
}

TEST_CASE("remote_auth: TokenReview validator, its own budget of reviews in flight, and identical reviews shared") {
  TempDir dir;
  KubernetesApiSettings settings{kApiUrl, dir.file("token", "broker-token"), (dir.path / "ca.crt").string()};
  settings.max_in_flight = 2;
  DeferredApi api;
  auto validator = make_token_review_validator_with(api.sender(), settings);
  auto key = TestKey::make_ec();
  std::vector<std::optional<RemoteVerdict>> verdicts(6);
  auto start = [&](std::size_t i, const std::string& token) {
    validator->validate(token, {"aio-internal"}, [&verdicts, i](RemoteVerdict v) { verdicts[i] = std::move(v); });
  };
  auto t1 = sat(key, "k", R"(["aio-internal"])", "ns1", "sa1");
  auto t2 = sat(key, "k", R"(["aio-internal"])", "ns1", "sa2");
  auto t3 = sat(key, "k", R"(["aio-internal"])", "ns1", "sa3");
  start(0, t1);
  start(1, t1);  // the same review: one call for both
  start(2, t2);
  CHECK(api.sent == 2);
  // The budget is spent: Unavailable at once (0x88), nothing sent.
  start(3, t3);
  REQUIRE(verdicts[3]);
  CHECK(verdicts[3]->kind == RemoteVerdict::Kind::Unavailable);
  CHECK_THAT(verdicts[3]->detail, Catch::Contains("too many TokenReviews in flight (2)"));
  CHECK(api.sent == 2);
  // Still one call for t1 while it waits, though the budget is spent.
  start(4, t1);
  CHECK(api.sent == 2);
  CHECK_FALSE(verdicts[0]);

  api.drain();
  CHECK(api.sent == 4);  // two reviews, two accounts
  for (std::size_t i : {0u, 1u, 2u, 4u}) {
    INFO(i);
    REQUIRE(verdicts[i]);
    CHECK(verdicts[i]->kind == RemoteVerdict::Kind::Accepted);
    CHECK(verdicts[i]->subject == "ns1/sa1");
  }
  // The budget is back.
  start(5, t3);
  CHECK(api.sent == 5);
  api.drain("sa3");
  REQUIRE(verdicts[5]);
  CHECK(verdicts[5]->kind == RemoteVerdict::Kind::Accepted);
  CHECK(verdicts[5]->subject == "ns1/sa3");

  // A failure ends the review for every waiter, and frees its slot.
  auto t4 = sat(key, "k", R"(["aio-internal"])", "ns1", "sa4");
  std::vector<RemoteVerdict> failed;
  for (int i = 0; i < 3; ++i)
    validator->validate(t4, {"aio-internal"}, [&](RemoteVerdict v) { failed.push_back(std::move(v)); });
  REQUIRE(api.waiting.size() == 1);
  auto [request, done] = std::move(api.waiting.front());
  api.waiting.clear();
  done(http::Response{false, "too many requests in flight (256)", 0, "", "", http::Response::Failure::Local});
  REQUIRE(failed.size() == 3);
  for (const auto& v : failed) CHECK(v.kind == RemoteVerdict::Kind::Unavailable);
  std::optional<RemoteVerdict> after;
  validator->validate(t4, {"aio-internal"}, [&](RemoteVerdict v) { after = std::move(v); });
  api.drain("sa4");
  REQUIRE(after);
  CHECK(after->kind == RemoteVerdict::Kind::Accepted);
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
  CHECK(v.subject == "ns1/sa1");  // the reviewed username's service account
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

  // Cached, subject included: no call for the same token and audiences (in another order), for
  // settings.accepted_cache_time (below), not until the token's exp.
  auto cached = run(*validator, token, {"aio-internal", "aio-internal"});
  CHECK(cached.kind == RemoteVerdict::Kind::Accepted);
  CHECK(cached.subject == "ns1/sa1");
  CHECK(requests.size() == 2);

  // The pod token is re-read when the kubelet rotates it.
  rewrite(pod_token, "broker-token-2");
  auto token2 = sat(key, "k", R"(["aio-internal","x"])");
  CHECK(run(*validator, token2, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(requests.at(2).headers.at(0).second == "Bearer broker-token-2");

  // Refused: not authenticated; cached briefly.
  answers[review_path] = answer(201, R"({"status":{"authenticated":false,"error":"token expired"}})");
  auto bad = sat(key, "k", R"(["aio-internal"])", "ns1", "revoked");
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
  answers[review_path] =
      http::Response{false, "connect: connection refused", 0, "", "", http::Response::Failure::Network};
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

TEST_CASE("remote_auth: TokenReview validator, an accepted review is asked again after the cache time") {
  TempDir dir;
  auto pod_token = dir.file("token", "broker-token-1\n");
  KubernetesApiSettings settings{"https://10.0.0.1:6443", pod_token, (dir.path / "ca.crt").string()};
  settings.file_check_interval = std::chrono::milliseconds(0);
  settings.accepted_cache_time = std::chrono::milliseconds(300);
  std::size_t calls = 0;
  bool authenticated = true;
  auto validator = make_token_review_validator_with(
      [&](http::Request r, std::function<void(http::Response)> done) {
        ++calls;
        http::Response a;
        a.ok = true;
        a.content_type = "application/json";
        if (r.method == "POST") {
          a.status = 201;
          a.body = authenticated ? R"({"status":{"authenticated":true,
              "user":{"username":"system:serviceaccount:ns1:sa1"},"audiences":["aio-internal"]}})"
                                 : R"({"status":{"authenticated":false,"error":"token has been invalidated"}})";
        } else {
          a.status = 200;
          a.body = R"({"kind":"ServiceAccount","metadata":{}})";
        }
        done(a);
      },
      settings);
  auto key = TestKey::make_ec();
  auto token = sat(key, "k", R"(["aio-internal"])");  // valid for an hour
  CHECK(run(*validator, token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(calls == 2);
  CHECK(run(*validator, token, {"aio-internal"}).kind == RemoteVerdict::Kind::Accepted);
  CHECK(calls == 2);  // from the cache
  // The pod is deleted: the API server now refuses the token. Past the cache time, so does mqttd.
  authenticated = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto revoked = run(*validator, token, {"aio-internal"});
  CHECK(revoked.kind == RemoteVerdict::Kind::Refused);
  CHECK_THAT(revoked.detail, Catch::Contains("invalidated"));
  CHECK(calls == 3);
}
