// The HTTPS client against a real TLS server on loopback (tests/support/https_test_server.hpp):
// requests and answers, certificate and host checks, the bounds, stop(); and the URL parser.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "http/https_client.hpp"
#include "http/url.hpp"
#include "tests/support/https_test_server.hpp"

using namespace std::chrono_literals;
using mqttd::http::Client;
using mqttd::http::Request;
using mqttd::http::Response;
using mqttd::http::TlsSettings;
using mqttd::test::CannedAnswer;
using mqttd::test::HttpsTestServer;
using mqttd::test::ReceivedRequest;
using mqttd::test::TestPki;

namespace {

struct Fixture {
  TestPki pki;
  TestPki::Identity ca = pki.make_ca("Test CA");
  TestPki::Identity server = pki.make_leaf("server", ca, {"localhost"}, {"127.0.0.1"});
  std::shared_ptr<const TlsSettings> trust = std::make_shared<TlsSettings>(TlsSettings{{ca.cert_file}, {}, {}});

  Request request(unsigned short port, std::string path = "/check", std::string host = "localhost") {
    Request r;
    r.url = "https://" + host + ":" + std::to_string(port) + path;
    r.tls = trust;
    r.timeout = 3000ms;
    return r;
  }
};

// Sends and waits for the answer; checks that `done` ran on another thread than the caller's.
Response send_and_wait(Client& client, Request request) {
  std::promise<Response> answer;
  auto caller = std::this_thread::get_id();
  client.send(std::move(request), [&, caller](Response r) {
    CHECK(std::this_thread::get_id() != caller);
    answer.set_value(std::move(r));
  });
  auto future = answer.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  return future.get();
}

CannedAnswer echo(const ReceivedRequest& r) { return {200, "text/plain", r.method + " " + r.target + " " + r.body}; }

}  // namespace

TEST_CASE("https client: a POST with headers and a body, and its answer", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{201, "application/json", R"({"ok":true})"};
  });
  Client client;
  auto request = f.request(server.port(), "/auth?api-version=0.5.0");
  request.headers = {{"Content-Type", "application/json"}, {"X-Extra", "value 1"}};
  request.body = R"({"type":"connect"})";
  auto response = send_and_wait(client, request);
  REQUIRE(response.ok);
  CHECK(response.error.empty());
  CHECK(response.status == 201);
  CHECK(response.content_type == "application/json");
  CHECK(response.body == R"({"ok":true})");
  auto received = server.requests();
  REQUIRE(received.size() == 1);
  CHECK(received[0].method == "POST");
  CHECK(received[0].target == "/auth?api-version=0.5.0");
  CHECK(received[0].body == R"({"type":"connect"})");
  CHECK(received[0].headers["content-type"] == "application/json");
  CHECK(received[0].headers["x-extra"] == "value 1");
  CHECK(received[0].headers["content-length"] == "18");
  CHECK(received[0].headers["user-agent"] == "mqttd");
  CHECK(received[0].headers["host"] == "localhost:" + std::to_string(server.port()));
}

TEST_CASE("https client: a GET; the root target when the URL has no path", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, echo);
  Client client;
  auto request = f.request(server.port(), "");
  request.method = "GET";
  auto response = send_and_wait(client, request);
  REQUIRE(response.ok);
  CHECK(response.status == 200);
  CHECK(response.body == "GET / ");
}

TEST_CASE("https client: the server's certificate from another CA is refused", "[http]") {
  Fixture f;
  auto other_ca = f.pki.make_ca("Other CA");
  auto impostor = f.pki.make_leaf("impostor", other_ca, {"localhost"}, {"127.0.0.1"});
  HttpsTestServer server(impostor.cert_pem, impostor.key_pem, echo);
  Client client;
  auto response = send_and_wait(client, f.request(server.port()));
  CHECK_FALSE(response.ok);
  CHECK(response.status == 0);
  CHECK_THAT(response.error, Catch::Contains("TLS handshake"));
  CHECK(response.failure == Response::Failure::Network);
  CHECK(server.requests().empty());
}

TEST_CASE("https client: a certificate for another host name is refused", "[http]") {
  Fixture f;
  auto elsewhere = f.pki.make_leaf("elsewhere", f.ca, {"elsewhere.example"}, {"10.1.2.3"});
  HttpsTestServer server(elsewhere.cert_pem, elsewhere.key_pem, echo);
  Client client;
  auto by_name = send_and_wait(client, f.request(server.port()));
  CHECK_FALSE(by_name.ok);
  CHECK_THAT(by_name.error, Catch::Contains("TLS handshake"));
  auto by_address = send_and_wait(client, f.request(server.port(), "/", "127.0.0.1"));
  CHECK_FALSE(by_address.ok);
  CHECK(server.requests().empty());
}

TEST_CASE("https client: an IP-literal URL checks the certificate's IP addresses", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, echo);
  Client client;
  auto response = send_and_wait(client, f.request(server.port(), "/ip", "127.0.0.1"));
  REQUIRE(response.ok);
  CHECK(response.body == "POST /ip ");
  // A name-only certificate does not vouch for the address.
  auto named = f.pki.make_leaf("named", f.ca, {"localhost"});
  HttpsTestServer named_server(named.cert_pem, named.key_pem, echo);
  CHECK_FALSE(send_and_wait(client, f.request(named_server.port(), "/ip", "127.0.0.1")).ok);
}

TEST_CASE("https client: a server that never answers ends in a timeout", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, [](const ReceivedRequest&) {
    CannedAnswer never;
    never.never = true;
    return never;
  });
  Client client;
  auto request = f.request(server.port());
  request.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto response = send_and_wait(client, request);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(response.ok);
  CHECK_THAT(response.error, Catch::Contains("timed out"));
  CHECK(response.failure == Response::Failure::Network);  // the server's doing
  CHECK(took >= 250ms);
  CHECK(took < 2s);
}

TEST_CASE("https client: an answer over max_response_bytes is an error", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{200, "text/plain", std::string(5000, 'x')};
  });
  Client client;
  auto request = f.request(server.port());
  request.max_response_bytes = 4096;
  auto response = send_and_wait(client, request);
  CHECK_FALSE(response.ok);
  CHECK_THAT(response.error, Catch::Contains("larger than the bound"));
  request.max_response_bytes = 5200;  // the body and the headers fit
  CHECK(send_and_wait(client, request).ok);
  request.max_response_bytes = 5010;  // the body fits, not with the headers
  CHECK_FALSE(send_and_wait(client, request).ok);
  request.max_response_bytes = 20;  // not even the headers
  CHECK_FALSE(send_and_wait(client, request).ok);
}

TEST_CASE("https client: beyond max_in_flight, done runs at once with an error", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, [](const ReceivedRequest&) {
    return CannedAnswer{200, "text/plain", "late", 500ms};
  });
  Client client(2);
  std::promise<void> first_two;
  std::atomic<int> answered{0};
  for (int i = 0; i < 2; ++i)
    client.send(f.request(server.port()), [&](Response r) {
      CHECK(r.ok);
      CHECK(r.failure == Response::Failure::None);
      if (++answered == 2) first_two.set_value();
    });
  bool inline_answer = false;
  auto caller = std::this_thread::get_id();
  client.send(f.request(server.port()), [&](Response r) {
    inline_answer = std::this_thread::get_id() == caller;
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.error, Catch::Contains("too many requests in flight"));
    // Refused before any network activity: the broker's own overload, not the server's failure.
    CHECK(r.failure == Response::Failure::Local);
  });
  CHECK(inline_answer);
  REQUIRE(first_two.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(send_and_wait(client, f.request(server.port())).ok);  // room again
}

TEST_CASE("https client: a client certificate the server requires", "[http]") {
  Fixture f;
  auto client_ca = f.pki.make_ca("Client CA");
  auto client_id = f.pki.make_leaf("broker-client", client_ca, {});
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, echo, client_ca.cert_pem);
  Client client;
  CHECK_FALSE(send_and_wait(client, f.request(server.port())).ok);  // none presented
  auto request = f.request(server.port());
  request.tls = std::make_shared<TlsSettings>(TlsSettings{{f.ca.cert_file}, client_id.cert_file, client_id.key_file});
  auto response = send_and_wait(client, request);
  REQUIRE(response.ok);
  auto received = server.requests();
  REQUIRE(received.size() == 1);
  CHECK_THAT(received[0].client_certificate_subject, Catch::Contains("broker-client"));
}

TEST_CASE("https client: TLS files that cannot be read give an error, not an exception", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, echo);
  Client client;
  auto request = f.request(server.port());
  request.tls = std::make_shared<TlsSettings>(TlsSettings{{f.pki.folder() + "/missing.crt"}, {}, {}});
  auto response = send_and_wait(client, request);
  CHECK_FALSE(response.ok);
  CHECK_THAT(response.error, Catch::Contains("missing.crt"));
  CHECK(response.failure == Response::Failure::Local);
  // A folder of PEM files works as a CA path.
  request.tls = std::make_shared<TlsSettings>(TlsSettings{{f.pki.folder()}, {}, {}});
  CHECK(send_and_wait(client, request).ok);
  request.tls =
      std::make_shared<TlsSettings>(TlsSettings{{f.ca.cert_file}, f.pki.folder() + "/nope.crt", f.server.key_file});
  response = send_and_wait(client, request);
  CHECK_FALSE(response.ok);
  CHECK_THAT(response.error, Catch::Contains("nope.crt"));
}

TEST_CASE("https client: bad URLs, methods and header fields are errors", "[http]") {
  Client client;
  Request request;
  request.url = "http://localhost/";
  CHECK_THAT(send_and_wait(client, request).error, Catch::Contains("bad URL"));
  CHECK(send_and_wait(client, request).failure == Response::Failure::Local);
  request.url = "https://localhost:1/";
  request.method = "DELETE";
  CHECK_THAT(send_and_wait(client, request).error, Catch::Contains("unsupported method"));
  request.method = "POST";
  request.headers = {{"X-Evil", "a\r\nHost: other"}};
  CHECK_THAT(send_and_wait(client, request).error, Catch::Contains("not valid HTTP"));
}

TEST_CASE("https client: stop() ends a request in flight with an error, and later sends too", "[http]") {
  Fixture f;
  HttpsTestServer server(f.server.cert_pem, f.server.key_pem, [](const ReceivedRequest&) {
    CannedAnswer never;
    never.never = true;
    return never;
  });
  Client client;
  std::promise<Response> answer;
  client.send(f.request(server.port()), [&](Response r) { answer.set_value(std::move(r)); });
  for (int i = 0; i < 200 && server.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.requests().size() == 1);
  auto start = std::chrono::steady_clock::now();
  client.stop();
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  auto future = answer.get_future();
  REQUIRE(future.wait_for(0s) == std::future_status::ready);
  auto response = future.get();
  CHECK_FALSE(response.ok);
  CHECK(response.error == "stopped");
  CHECK(response.failure == Response::Failure::Local);
  client.stop();  // idempotent
  bool ran = false;
  client.send(f.request(server.port()), [&](Response r) {
    ran = true;
    CHECK(r.error == "stopped");
    CHECK(r.failure == Response::Failure::Local);
  });
  CHECK(ran);
}

TEST_CASE("https URLs: what parse_https_url accepts", "[http][url]") {
  using mqttd::http::parse_https_url;
  struct Case {
    const char* url;
    const char* host;
    unsigned port;
    const char* target;
    bool ip;
  };
  for (auto c : {Case{"https://auth.example.com", "auth.example.com", 443, "/", false},
                 Case{"https://Auth.Example.COM:8443/x/y?a=1&b=%20", "auth.example.com", 8443, "/x/y?a=1&b=%20", false},
                 Case{"HTTPS://h/", "h", 443, "/", false}, Case{"https://h?q", "h", 443, "/?q", false},
                 Case{"https://127.0.0.1:1/", "127.0.0.1", 1, "/", true},
                 Case{"https://[::1]:65535/p", "::1", 65535, "/p", true},
                 Case{"https://[fe80::1%25]/", "", 0, "", false},  // refused below: not accepted
                 Case{"https://my_service.ns.svc/", "my_service.ns.svc", 443, "/", false}}) {
    INFO(c.url);
    auto url = parse_https_url(c.url);
    if (std::string(c.host).empty()) {
      CHECK_FALSE(url);
      continue;
    }
    REQUIRE(url);
    CHECK(url->host == c.host);
    CHECK(url->port == c.port);
    CHECK(url->target == c.target);
    CHECK(url->host_is_ip == c.ip);
  }
  CHECK(parse_https_url("https://[::1]:8443/")->host_header() == "[::1]:8443");
  CHECK(parse_https_url("https://a.b/")->host_header() == "a.b");
}

TEST_CASE("https URLs: what parse_https_url refuses", "[http][url]") {
  using mqttd::http::parse_https_url;
  for (const char* bad : {"http://h/",
                          "ftp://h/",
                          "https:/h/",
                          "h/",
                          "",
                          "https://",
                          "https:///path",
                          "https://:443/",
                          "https://user@h/",
                          "https://user:pw@h/",
                          "https://h/#frag",
                          "https://h/p#",
                          "https://h:0/",
                          "https://h:65536/",
                          "https://h:99999999/",
                          "https://h:/",
                          "https://h:12a/",
                          "https://h:-1/",
                          "https://h: 1/",
                          "https://h /",
                          "https://h/a b",
                          "https://h/\x01",
                          "https://h/\x7f",
                          "https://h/\xc3\xa9",
                          "https://h\r\n/",
                          "https://[::1/",
                          "https://[not-ip]/",
                          "https://[127.0.0.1]/",
                          "https://[::1]x/",
                          "https://::1/",
                          "https://1.2.3/",
                          "https://256.1.1.1/",
                          "https://h..x/",
                          "https://.h/",
                          "https://-h/",
                          "https://h%2e/",
                          "https://a:1:2/"}) {
    INFO(bad);
    std::string why;
    CHECK_FALSE(parse_https_url(bad, &why));
    CHECK_FALSE(why.empty());
  }
}
