// The custom authentication client (API 0.5.0): its JSON on its own, the circuit breaker on a
// fake clock, and the client against a real HTTPS server on loopback.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "authn/jwt.hpp"
#include "remote_auth/circuit_breaker.hpp"
#include "remote_auth/custom_auth_client.hpp"
#include "remote_auth/custom_auth_protocol.hpp"
#include "tests/support/https_test_server.hpp"

using namespace std::chrono_literals;
using namespace mqttd::remote_auth;
using mqttd::authn::CustomConnectInfo;
using mqttd::authn::RemoteVerdict;
using mqttd::test::CannedAnswer;
using mqttd::test::HttpsTestServer;
using mqttd::test::ReceivedRequest;
using mqttd::test::TestPki;
using Kind = RemoteVerdict::Kind;

namespace {

std::chrono::system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;
  return sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s);
}

}  // namespace

TEST_CASE("custom auth: the URL and the request bodies", "[custom_auth]") {
  CHECK(custom_auth_url("https://auth.example", "0.5.0") == "https://auth.example/?api-version=0.5.0");
  CHECK(custom_auth_url("https://auth.example/", "0.5.0") == "https://auth.example/?api-version=0.5.0");
  CHECK(custom_auth_url("https://auth.example:8443/a/b", "0.5.0") ==
        "https://auth.example:8443/a/b/?api-version=0.5.0");

  CHECK(auth_request_body() == R"({"type":"auth"})");
  CHECK(connect_request_body({}) == R"({"type":"connect"})");
  CHECK(connect_request_body({std::string(""), std::string(""), ""}) == R"({"type":"connect"})");
  CustomConnectInfo full{std::string("dev\"1"), std::string("pa\0ss\xff", 6), "-----BEGIN CERTIFICATE-----\nAA==\n"};
  CHECK(
      connect_request_body(full) ==
      R"({"type":"connect","username":"dev\"1","password":"cGEAc3P/","certs":"-----BEGIN CERTIFICATE-----\nAA==\n"})");
  CHECK(connect_request_body({std::nullopt, std::string("p"), ""}) == R"({"type":"connect","password":"cA=="})");
}

TEST_CASE("custom auth: RFC 3339 times", "[custom_auth]") {
  CHECK(parse_rfc3339("2030-05-08T20:04:16+00:00") == utc(2030, 5, 8, 20, 4, 16));
  CHECK(parse_rfc3339("2030-05-08T20:04:16Z") == utc(2030, 5, 8, 20, 4, 16));
  CHECK(parse_rfc3339("2030-05-08t20:04:16z") == utc(2030, 5, 8, 20, 4, 16));
  CHECK(parse_rfc3339("2030-05-08T22:34:16+02:30") == utc(2030, 5, 8, 20, 4, 16));
  CHECK(parse_rfc3339("2030-05-08T15:04:16-05:00") == utc(2030, 5, 8, 20, 4, 16));
  CHECK(parse_rfc3339("2030-05-08T20:04:16.25Z") == utc(2030, 5, 8, 20, 4, 16) + 250ms);
  CHECK(parse_rfc3339("2030-05-08T20:04:16.123456789123Z") == utc(2030, 5, 8, 20, 4, 16) + 123456789ns);
  CHECK(parse_rfc3339("2024-02-29T00:00:00Z") == utc(2024, 2, 29, 0, 0, 0));
  // Beyond what the clock holds (nanoseconds end in 2262): the latest time it can, not an overflow
  // (9999 used to wrap to 1816) and not an error.
  const auto bound = std::chrono::system_clock::time_point(std::chrono::seconds(mqttd::authn::jwt::kMaxEpochSeconds));
  CHECK(parse_rfc3339("9999-12-31T23:59:59Z") == bound);
  CHECK(parse_rfc3339("9999-12-31T23:59:59.999999999-23:59") == bound);
  CHECK(parse_rfc3339("2263-01-01T00:00:00Z") == bound);
  CHECK(*parse_rfc3339("9999-12-31T23:59:59Z") > utc(2200, 1, 1, 0, 0, 0));
  CHECK(parse_rfc3339("2200-01-01T00:00:00Z") == utc(2200, 1, 1, 0, 0, 0));  // below the bound: as is
  CHECK(*parse_rfc3339("0001-01-01T00:00:00Z") < utc(1970, 1, 1, 0, 0, 0));  // long past, not wrapped
  auto far = interpret_custom_auth_response(200, R"({"expiry":"9999-12-31T23:59:59Z"})", true);
  CHECK(far.verdict.kind == Kind::Accepted);
  CHECK(far.verdict.expires == bound);
  for (const char* bad : {"", "2030-05-08", "2030-05-08T20:04:16", "2030-05-08 20:04:16Z", "2030-5-08T20:04:16Z",
                          "2030-05-08T20:04Z", "2030-13-08T20:04:16Z", "2030-02-30T20:04:16Z", "2023-02-29T00:00:00Z",
                          "2030-05-08T24:00:00Z", "2030-05-08T20:60:00Z", "2030-05-08T20:04:61Z",
                          "2030-05-08T20:04:16.Z", "2030-05-08T20:04:16+0000", "2030-05-08T20:04:16+24:00",
                          "2030-05-08T20:04:16Zjunk", "2030-05-08T20:04:16 Z", "+2030-05-08T20:04:16Z", "1715198656"}) {
    INFO(bad);
    CHECK_FALSE(parse_rfc3339(bad));
  }
}

TEST_CASE("custom auth: 200 answers", "[custom_auth]") {
  auto full = interpret_custom_auth_response(
      200, R"({"expiry":"2030-05-08T20:04:16+00:00","attributes":{"group":"authz-sat","floor":"3"},"extra":1})", true);
  CHECK_FALSE(full.retry_version);
  CHECK(full.verdict.kind == Kind::Accepted);
  CHECK(full.verdict.expires == utc(2030, 5, 8, 20, 4, 16));
  CHECK(full.verdict.attributes == std::map<std::string, std::string>{{"group", "authz-sat"}, {"floor", "3"}});
  CHECK_FALSE(full.verdict.username);

  auto bare = interpret_custom_auth_response(200, "{}", true);
  CHECK(bare.verdict.kind == Kind::Accepted);
  CHECK_FALSE(bare.verdict.expires);
  CHECK(bare.verdict.attributes.empty());
  CHECK(interpret_custom_auth_response(200, R"({"attributes":{"a":"b"}})", true).verdict.kind == Kind::Accepted);

  // Malformed: refused, fail closed.
  for (const char* malformed :
       {"", "not json", "[]", R"("x")", R"({"expiry":"tomorrow"})", R"({"expiry":1234})", R"({"attributes":{"a":1}})",
        R"({"attributes":["a"]})", R"({"attributes":{"a":null}})", R"({"attributes":{"a":"b"})"}) {
    INFO(malformed);
    auto answer = interpret_custom_auth_response(200, malformed, true);
    CHECK(answer.verdict.kind == Kind::Refused);
    CHECK_THAT(answer.verdict.detail, Catch::Contains("malformed 200"));
    CHECK_FALSE(answer.retry_version);
  }
}

TEST_CASE("custom auth: 403, 400, 405, 5xx and other answers", "[custom_auth]") {
  auto banned = interpret_custom_auth_response(403, R"({"reason":138,"message":"banned\nfor a while"})", true);
  CHECK(banned.verdict.kind == Kind::Refused);
  CHECK(banned.verdict.reason_code == 0x8a);
  CHECK_THAT(banned.verdict.detail, Catch::Contains("banned?for a while"));
  CHECK(interpret_custom_auth_response(403, R"({"reason":134})", true).verdict.reason_code == 0x86);
  // Not a CONNACK failure code, or not a number: Not authorized.
  for (const char* body : {R"({"reason":0})", R"({"reason":16})", R"({"reason":139})", R"({"reason":256})",
                           R"({"reason":-1})", R"({"reason":"134"})", R"({"reason":134.5})", R"({})", "", "junk"}) {
    INFO(body);
    auto answer = interpret_custom_auth_response(403, body, true);
    CHECK(answer.verdict.kind == Kind::Refused);
    CHECK(answer.verdict.reason_code == 0x87);
  }
  auto long_message =
      interpret_custom_auth_response(403, R"({"reason":135,"message":")" + std::string(1000, 'm') + "\"}", true);
  CHECK(long_message.verdict.detail.size() < 300);

  auto bad_request = interpret_custom_auth_response(400, "missing field type", true);
  CHECK(bad_request.verdict.kind == Kind::Refused);
  CHECK_FALSE(bad_request.verdict.reason_code);
  CHECK_THAT(bad_request.verdict.detail, Catch::Contains("400: missing field type"));
  auto not_allowed = interpret_custom_auth_response(405, "use POST", true);
  CHECK(not_allowed.verdict.kind == Kind::Refused);
  CHECK_THAT(not_allowed.verdict.detail, Catch::Contains("405: use POST"));
  CHECK(interpret_custom_auth_response(401, "", true).verdict.kind == Kind::Refused);

  for (unsigned status : {500u, 502u, 503u, 504u}) {
    CHECK(interpret_custom_auth_response(status, "down", true).verdict.kind == Kind::Unreachable);
  }
  for (unsigned status : {100u, 201u, 204u, 301u, 302u}) {
    INFO(status);
    CHECK(interpret_custom_auth_response(status, "{}", true).verdict.kind == Kind::Refused);
  }
}

TEST_CASE("custom auth: 422 and the API version", "[custom_auth]") {
  auto retry = interpret_custom_auth_response(422, R"({"supportedVersions":["1.0.0","0.5.0"]})", true);
  REQUIRE(retry.retry_version);
  CHECK(*retry.retry_version == "0.5.0");
  auto again = interpret_custom_auth_response(422, R"({"supportedVersions":["1.0.0","0.5.0"]})", false);
  CHECK_FALSE(again.retry_version);
  CHECK(again.verdict.kind == Kind::Refused);
  auto other = interpret_custom_auth_response(422, R"({"supportedVersions":["1.0.0","2.0.0"]})", true);
  CHECK_FALSE(other.retry_version);
  CHECK(other.verdict.kind == Kind::Refused);
  CHECK_THAT(other.verdict.detail, Catch::Contains("[1.0.0, 2.0.0]") && Catch::Contains("only 0.5.0"));
  for (const char* malformed : {"", "{}", R"({"supportedVersions":"0.5.0"})", "[1]"}) {
    INFO(malformed);
    auto answer = interpret_custom_auth_response(422, malformed, true);
    CHECK_FALSE(answer.retry_version);
    CHECK(answer.verdict.kind == Kind::Refused);
  }
}

TEST_CASE("custom auth: the circuit breaker", "[custom_auth]") {
  using Admission = CircuitBreaker::Admission;
  CircuitBreaker breaker(3, 10s);
  auto t = CircuitBreaker::Clock::time_point{} + 1h;
  for (int i = 0; i < 2; ++i) breaker.record(breaker.admit(t), false, t);
  breaker.record(breaker.admit(t), true, t);  // a success resets the count
  for (int i = 0; i < 2; ++i) breaker.record(breaker.admit(t), false, t);
  CHECK_FALSE(breaker.is_open());
  CHECK(breaker.admit(t) == Admission::Normal);
  breaker.record(Admission::Normal, false, t);
  CHECK(breaker.is_open());
  CHECK(breaker.admit(t + 9s) == Admission::Rejected);
  // After the cooldown: one probe at a time.
  CHECK(breaker.admit(t + 10s) == Admission::Probe);
  CHECK(breaker.admit(t + 10s) == Admission::Rejected);
  breaker.record(Admission::Probe, false, t + 11s);  // the probe failed: another cooldown
  CHECK(breaker.admit(t + 20s) == Admission::Rejected);
  CHECK(breaker.admit(t + 21s) == Admission::Probe);
  breaker.record(Admission::Probe, true, t + 21s);
  CHECK_FALSE(breaker.is_open());
  CHECK(breaker.admit(t + 21s) == Admission::Normal);

  // A request that never went out (the broker's own overload) counts neither way; a probe's turn is
  // given back.
  for (int i = 0; i < 10; ++i) breaker.release(breaker.admit(t + 22s));
  CHECK_FALSE(breaker.is_open());
  for (int i = 0; i < 3; ++i) breaker.record(breaker.admit(t + 22s), false, t + 22s);
  CHECK(breaker.is_open());
  CHECK(breaker.admit(t + 32s) == Admission::Probe);
  breaker.release(Admission::Probe);
  CHECK(breaker.is_open());
  CHECK(breaker.admit(t + 32s) == Admission::Probe);  // not stuck waiting for the released probe
}

namespace {

// A secrets folder as the daemon sees it, with the server's CA and the broker's client
// certificate, and an HTTPS server for the tests.
struct CustomAuthFixture {
  TestPki pki;
  TestPki::Identity ca = pki.make_ca("Auth CA");
  TestPki::Identity server_id = pki.make_leaf("auth-server", ca, {"localhost"}, {"127.0.0.1"});
  std::string secrets = pki.folder() + "/secrets";
  mqttd::http::Client http;

  CustomAuthFixture() {
    std::filesystem::create_directories(secrets + "/server-ca");
    std::filesystem::copy_file(ca.cert_file, secrets + "/server-ca/ca.crt");
  }

  mqttd::config::CustomAuthSettings settings(unsigned short port, std::string path = "/auth") {
    mqttd::config::CustomAuthSettings s;
    s.endpoint = "https://localhost:" + std::to_string(port) + path;
    s.ca_folder = "server-ca";
    return s;
  }
};

using AuthClient = std::shared_ptr<mqttd::authn::CustomAuthClient>;

RemoteVerdict connect_and_wait(const AuthClient& client, CustomConnectInfo info) {
  std::promise<RemoteVerdict> verdict;
  client->check_connect(std::move(info), [&](RemoteVerdict v) { verdict.set_value(std::move(v)); });
  auto future = verdict.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

CustomConnectInfo user(std::string name, std::string password = "secret") {
  return {std::move(name), std::move(password), ""};
}

bool body_names(const ReceivedRequest& r, const std::string& username) {
  return r.body.find("\"username\":\"" + username + "\"") != std::string::npos;
}

}  // namespace

TEST_CASE("custom auth client: 200 with attributes and expiry; the request as the server sees it", "[custom_auth]") {
  CustomAuthFixture f;
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{200, "application/json",
                        R"({"expiry":"2030-05-08T20:04:16Z","attributes":{"group":"sensors"}})"};
  });
  auto settings = f.settings(server.port());
  settings.headers = {{"X-Tenant", "contoso"}, {"Authorization", "Bearer abc"}};
  auto client = make_custom_auth_client(f.http, settings, f.secrets);
  auto verdict = connect_and_wait(client, user("dev1", "pw"));
  CHECK(verdict.kind == Kind::Accepted);
  CHECK(verdict.attributes == std::map<std::string, std::string>{{"group", "sensors"}});
  CHECK(verdict.expires == utc(2030, 5, 8, 20, 4, 16));
  auto received = server.requests();
  REQUIRE(received.size() == 1);
  CHECK(received[0].method == "POST");
  CHECK(received[0].target == "/auth/?api-version=0.5.0");
  CHECK(received[0].headers["content-type"] == "application/json");
  CHECK(received[0].headers["x-tenant"] == "contoso");
  CHECK(received[0].headers["authorization"] == "Bearer abc");
  CHECK(received[0].body == R"({"type":"connect","username":"dev1","password":"cHc="})");

  std::promise<RemoteVerdict> reauth;
  client->check_auth([&](RemoteVerdict v) { reauth.set_value(std::move(v)); });
  CHECK(reauth.get_future().get().kind == Kind::Accepted);
  received = server.requests();
  REQUIRE(received.size() == 2);
  CHECK(received[1].body == R"({"type":"auth"})");
}

TEST_CASE("custom auth client: 403 with a reason; 400", "[custom_auth]") {
  CustomAuthFixture f;
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [](const ReceivedRequest& r) {
    if (body_names(r, "banned")) return CannedAnswer{403, "application/json", R"({"reason":138,"message":"go away"})"};
    return CannedAnswer{400, "text/plain", "no"};
  });
  auto client = make_custom_auth_client(f.http, f.settings(server.port(), "/"), f.secrets);
  auto banned = connect_and_wait(client, user("banned"));
  CHECK(banned.kind == Kind::Refused);
  CHECK(banned.reason_code == 0x8a);
  CHECK_THAT(banned.detail, Catch::Contains("go away"));
  auto bad = connect_and_wait(client, user("other"));
  CHECK(bad.kind == Kind::Refused);
  CHECK_FALSE(bad.reason_code);
  CHECK(server.requests().at(0).target == "/?api-version=0.5.0");  // the endpoint's slash, not two
}

TEST_CASE("custom auth client: 422, then the same request again with a version both speak", "[custom_auth]") {
  CustomAuthFixture f;
  std::atomic<int> asked{0};
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [&](const ReceivedRequest& r) {
    if (body_names(r, "never")) return CannedAnswer{422, "application/json", R"({"supportedVersions":["9.0.0"]})"};
    if (asked++ == 0) return CannedAnswer{422, "application/json", R"({"supportedVersions":["1.0.0","0.5.0"]})"};
    return CannedAnswer{200, "application/json", R"({"attributes":{"v":"ok"}})"};
  });
  auto client = make_custom_auth_client(f.http, f.settings(server.port()), f.secrets);
  auto verdict = connect_and_wait(client, user("dev"));
  CHECK(verdict.kind == Kind::Accepted);
  CHECK(verdict.attributes.at("v") == "ok");
  auto received = server.requests();
  REQUIRE(received.size() == 2);
  CHECK(received[1].target == "/auth/?api-version=0.5.0");
  CHECK(received[1].body == received[0].body);

  auto refused = connect_and_wait(client, user("never"));
  CHECK(refused.kind == Kind::Refused);
  CHECK_THAT(refused.detail, Catch::Contains("9.0.0"));
  CHECK(server.requests().size() == 3);  // no retry
}

TEST_CASE("custom auth client: a closed port is Unreachable", "[custom_auth]") {
  CustomAuthFixture f;
  unsigned short port;
  {
    HttpsTestServer gone(f.server_id.cert_pem, f.server_id.key_pem,
                         [](const ReceivedRequest&) { return CannedAnswer{}; });
    port = gone.port();
  }
  auto client = make_custom_auth_client(f.http, f.settings(port), f.secrets);
  auto verdict = connect_and_wait(client, user("dev"));
  CHECK(verdict.kind == Kind::Unreachable);
  CHECK_THAT(verdict.detail, Catch::Contains("connect"));
}

TEST_CASE("custom auth client: the circuit breaker opens after failures in a row, and closes after a probe",
          "[custom_auth]") {
  CustomAuthFixture f;
  std::atomic<bool> healthy{false};
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [&](const ReceivedRequest&) {
    return healthy ? CannedAnswer{200, "application/json", "{}"} : CannedAnswer{503, "text/plain", "down"};
  });
  CustomAuthLimits limits;
  limits.failures_to_open = 3;
  limits.cooldown = 400ms;
  auto client = make_custom_auth_client(f.http, f.settings(server.port()), f.secrets, limits);
  for (int i = 0; i < 3; ++i) CHECK(connect_and_wait(client, user("dev")).kind == Kind::Unreachable);
  CHECK(server.requests().size() == 3);
  // Open: answered at once, on the calling thread, without asking the server.
  bool answered_inline = false;
  client->check_connect(user("dev"), [&](RemoteVerdict v) {
    answered_inline = true;
    CHECK(v.kind == Kind::Unreachable);
    CHECK_THAT(v.detail, Catch::Contains("circuit breaker open"));
  });
  CHECK(answered_inline);
  CHECK(server.requests().size() == 3);
  healthy = true;
  std::this_thread::sleep_for(450ms);
  CHECK(connect_and_wait(client, user("dev")).kind == Kind::Accepted);  // the probe
  CHECK(connect_and_wait(client, user("dev")).kind == Kind::Accepted);  // closed again
  CHECK(server.requests().size() == 5);
}

TEST_CASE("custom auth client: beyond its requests in flight, Unavailable at once; the breaker stays closed",
          "[custom_auth]") {
  CustomAuthFixture f;
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{200, "application/json", "{}", 300ms};
  });
  CustomAuthLimits limits;
  limits.max_in_flight = 1;
  limits.failures_to_open = 2;
  auto client = make_custom_auth_client(f.http, f.settings(server.port()), f.secrets, limits);
  std::promise<RemoteVerdict> slow;
  client->check_connect(user("a"), [&](RemoteVerdict v) { slow.set_value(std::move(v)); });
  // The broker's own overload, not the server's failure: 0x88, not the next method, and many of
  // them do not open the circuit breaker.
  for (int i = 0; i < 10; ++i) {
    bool answered_inline = false;
    client->check_connect(user("b"), [&](RemoteVerdict v) {
      answered_inline = true;
      CHECK(v.kind == Kind::Unavailable);
      CHECK_THAT(v.detail, Catch::Contains("too many requests in flight"));
    });
    CHECK(answered_inline);
  }
  CHECK(slow.get_future().get().kind == Kind::Accepted);
  // A real request still goes to the server.
  CHECK(connect_and_wait(client, user("c")).kind == Kind::Accepted);
  CHECK(server.requests().size() == 2);
}

TEST_CASE(
    "custom auth client: a request the HTTP client refuses on the spot is Unavailable, not a failure of the "
    "server",
    "[custom_auth]") {
  CustomAuthFixture f;
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{200, "application/json", "{}", 300ms};
  });
  mqttd::http::Client small(1);  // shared, and full: someone else's request holds its only slot
  CustomAuthLimits limits;
  limits.failures_to_open = 2;
  auto client = make_custom_auth_client(small, f.settings(server.port()), f.secrets, limits);
  std::promise<RemoteVerdict> slow;
  client->check_connect(user("a"), [&](RemoteVerdict v) { slow.set_value(std::move(v)); });
  for (int i = 0; i < 10; ++i) {
    auto v = connect_and_wait(client, user("b"));
    CHECK(v.kind == Kind::Unavailable);
    CHECK_THAT(v.detail, Catch::Contains("not asked") && Catch::Contains("too many requests in flight"));
  }
  CHECK(slow.get_future().get().kind == Kind::Accepted);
  // The breaker did not open: the server is asked again.
  CHECK(connect_and_wait(client, user("c")).kind == Kind::Accepted);
  CHECK(server.requests().size() == 2);

  // A stopped client: Unavailable too (the broker is shutting down, the server did nothing).
  small.stop();
  auto stopped = connect_and_wait(client, user("d"));
  CHECK(stopped.kind == Kind::Unavailable);
  CHECK_THAT(stopped.detail, Catch::Contains("stopped"));
}

TEST_CASE("custom auth client: a 200 to an AUTH without expiry leaves the verdict without one", "[custom_auth]") {
  // {"type":"auth"} names no client: its answer cannot say anything about a client's expiry.
  CustomAuthFixture f;
  HttpsTestServer server(f.server_id.cert_pem, f.server_id.key_pem, [](const ReceivedRequest& r) {
    if (r.body == R"({"type":"auth"})") return CannedAnswer{200, "application/json", R"({"attributes":{"g":"x"}})"};
    return CannedAnswer{200, "application/json", R"({"expiry":"2030-05-08T20:04:16Z"})"};
  });
  auto client = make_custom_auth_client(f.http, f.settings(server.port()), f.secrets);
  CHECK(connect_and_wait(client, user("dev")).expires == utc(2030, 5, 8, 20, 4, 16));
  std::promise<RemoteVerdict> reauth;
  client->check_auth([&](RemoteVerdict v) { reauth.set_value(std::move(v)); });
  auto future = reauth.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  auto v = future.get();
  CHECK(v.kind == Kind::Accepted);
  CHECK(v.expires == std::nullopt);
  CHECK(v.attributes.at("g") == "x");
  REQUIRE(server.requests().size() == 2);
  CHECK(server.requests()[1].body == R"({"type":"auth"})");
}

TEST_CASE("custom auth client: the broker's client certificate, and missing files", "[custom_auth]") {
  CustomAuthFixture f;
  auto client_ca = f.pki.make_ca("Broker client CA");
  auto broker = f.pki.make_leaf("mqttd-broker", client_ca, {});
  std::filesystem::create_directories(f.secrets + "/broker-cert");
  std::filesystem::copy_file(broker.cert_file, f.secrets + "/broker-cert/tls.crt");
  std::filesystem::copy_file(broker.key_file, f.secrets + "/broker-cert/tls.key");
  HttpsTestServer server(
      f.server_id.cert_pem, f.server_id.key_pem,
      [](const ReceivedRequest&) {
        return CannedAnswer{200, "application/json", "{}"};
      },
      client_ca.cert_pem);
  auto settings = f.settings(server.port());
  settings.client_cert_secret = "broker-cert";
  auto client = make_custom_auth_client(f.http, settings, f.secrets);
  CHECK(connect_and_wait(client, user("dev")).kind == Kind::Accepted);
  REQUIRE(server.requests().size() == 1);
  CHECK_THAT(server.requests()[0].client_certificate_subject, Catch::Contains("mqttd-broker"));

  auto without = f.settings(server.port());
  CHECK(connect_and_wait(make_custom_auth_client(f.http, without, f.secrets), user("dev")).kind == Kind::Unreachable);

  settings.client_cert_secret = "no-such-secret";
  CHECK_THROWS_WITH(make_custom_auth_client(f.http, settings, f.secrets),
                    Catch::Contains(f.secrets + "/no-such-secret/tls.crt"));
  settings = f.settings(server.port());
  settings.ca_folder = "no-such-ca";
  CHECK_THROWS_WITH(make_custom_auth_client(f.http, settings, f.secrets), Catch::Contains(f.secrets + "/no-such-ca"));
  settings = f.settings(server.port());
  settings.endpoint = "http://localhost/";
  CHECK_THROWS_WITH(make_custom_auth_client(f.http, settings, f.secrets), Catch::Contains("not an https"));
}
