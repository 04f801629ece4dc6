// The connection engine's enhanced authentication: a CONNECT with an authentication method, the
// CONNACK and AUTH packets carrying it, and MQTT 5 re-authentication (AUTH 0x19) answered with
// AUTH 0x00, AUTH 0x18 or DISCONNECT, on a fake host that records the checks and lets the test
// answer them (tests/support/fake_host.hpp).
#include <algorithm>
#include <catch2/catch.hpp>

#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "tests/support/fake_host.hpp"

using namespace mqttd;
using namespace mqttd::codec;
using mqttd::test::FakeClient;
using mqttd::test::FakeHost;

namespace {

PacketType type_of(const std::vector<std::byte>& packet) {
  return static_cast<PacketType>(std::to_integer<std::uint8_t>(packet.at(0)) >> 4);
}

template <typename Packet, typename Decode>
Packet decode_bytes(const std::vector<std::byte>& packet, Decode decode) {
  Bytes data(packet);
  FixedHeader h;
  REQUIRE(parse_fixed_header(data, h) == FrameStatus::Complete);
  DecodeScratch scratch;
  Packet out;
  REQUIRE(decode(h, data.subspan(h.header_size, h.remaining_length), ProtocolVersion::v5, out, scratch).ok());
  return out;
}

// A port whose authentication lists `kinds` in order (no remote service: the fake host records
// the checks, and the test answers them).
std::shared_ptr<PortSecurity> security_with(std::vector<config::AuthenticationMethod::Kind> kinds) {
  config::Authentication resource;
  resource.name = "sat";
  for (auto kind : kinds) {
    config::AuthenticationMethod m;
    m.kind = kind;
    if (kind == config::AuthenticationMethod::Kind::ServiceAccountToken) m.audiences = {"aio-internal"};
    if (kind == config::AuthenticationMethod::Kind::X509) m.trusted_client_ca = "client-ca";
    resource.methods.push_back(m);
  }
  auto security = std::make_shared<PortSecurity>();
  security->authenticator = authn::Authenticator::create(resource, "/nonexistent");
  return security;
}

authn::Result accepted(std::size_t method_index, std::optional<std::chrono::system_clock::time_point> expires) {
  authn::Result r;
  r.outcome = authn::Result::Outcome::Accepted;
  r.principal.client_id = "sat-1";
  r.method = "ServiceAccountToken";
  r.method_index = method_index;
  r.expires = expires;
  return r;
}

void connect_with_token(FakeClient& c, std::string_view method = "K8S-SAT") {
  c.connect("sat-1", true, 0, [method](Connect& connect) {
    connect.properties.authentication_method = method;
    connect.properties.authentication_data = as_bytes(std::string_view("token-1"));
  });
}

Buffer auth_packet(Reason reason, std::optional<std::string_view> method, std::string_view data) {
  Auth a;
  a.reason = reason;
  a.properties.authentication_method = method;
  if (!data.empty()) a.properties.authentication_data = as_bytes(data);
  Buffer b;
  encode_auth(a, b);
  return b;
}

}  // namespace

TEST_CASE("enhanced authentication: K8S-SAT goes to the host; the CONNACK carries the method", "[engine][reauth]") {
  FakeHost host;
  host.security[0] = security_with({config::AuthenticationMethod::Kind::ServiceAccountToken});
  FakeClient c(host, ProtocolVersion::v5);
  connect_with_token(c);
  REQUIRE(host.authentications.size() == 1);
  CHECK(host.authentications[0].credentials.authentication_method == "K8S-SAT");
  CHECK(host.authentications[0].credentials.authentication_data == "token-1");
  CHECK_FALSE(host.authentications[0].reauthenticate_with);
  CHECK(c.written().empty());
  host.answer_authentication(0, accepted(0, std::nullopt));
  auto packets = c.packets();
  REQUIRE(packets.size() == 1);
  auto ack = decode_bytes<Connack>(packets[0], decode_connack);
  CHECK(ack.reason == Reason::Success);
  CHECK(ack.properties.authentication_method == "K8S-SAT");  // [MQTT-4.12.0-5]
}

TEST_CASE("enhanced authentication: an unknown method gets 0x8C; an unavailable check 0x88; a custom code",
          "[engine][reauth]") {
  FakeHost host;
  host.security[0] = security_with({config::AuthenticationMethod::Kind::ServiceAccountToken});
  SECTION("a method no authentication method takes") {
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c, "SCRAM-SHA-1");
    CHECK(host.authentications.empty());
    CHECK(decode_bytes<Connack>(c.packets().at(0), decode_connack).reason == Reason::BadAuthenticationMethod);
  }
  SECTION("a port without authentication") {
    host.security.clear();
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c);
    CHECK(decode_bytes<Connack>(c.packets().at(0), decode_connack).reason == Reason::BadAuthenticationMethod);
  }
  SECTION("the token review is unavailable") {
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c);
    authn::Result r;
    r.outcome = authn::Result::Outcome::Unavailable;
    host.answer_authentication(0, r);
    CHECK(decode_bytes<Connack>(c.packets().at(0), decode_connack).reason == Reason::ServerUnavailable);
  }
  SECTION("a custom server's reason code") {
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c);
    authn::Result r;
    r.outcome = authn::Result::Outcome::NotAuthorized;
    r.reason_code = 0x8A;  // Banned
    host.answer_authentication(0, r);
    CHECK(decode_bytes<Connack>(c.packets().at(0), decode_connack).reason == Reason::Banned);
  }
}

TEST_CASE(
    "re-authentication: AUTH 0x19 is checked; 0x00 moves the expiry, 0x18 on a transient failure, "
    "DISCONNECT on a refusal",
    "[engine][reauth]") {
  FakeHost host;
  host.security[0] = security_with({config::AuthenticationMethod::Kind::ServiceAccountToken});
  FakeClient c(host, ProtocolVersion::v5);
  connect_with_token(c);
  host.answer_authentication(0, accepted(0, host.wall_now() + std::chrono::seconds(10)));
  REQUIRE(type_of(c.packets().at(0)) == PacketType::Connack);

  c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "token-2"));
  REQUIRE(host.authentications.size() == 2);
  CHECK(host.authentications[1].reauthenticate_with == std::optional<std::size_t>(0));
  CHECK(host.authentications[1].credentials.authentication_data == "token-2");

  SECTION("accepted: AUTH 0x00 with the method, and the new expiry holds") {
    host.answer_authentication(1, accepted(0, host.wall_now() + std::chrono::seconds(60)));
    auto packets = c.packets();  // the decoded strings point into these bytes
    auto answer = decode_bytes<Auth>(packets.at(0), decode_auth);
    CHECK(answer.reason == Reason::Success);
    CHECK(answer.properties.authentication_method == "K8S-SAT");
    host.advance(std::chrono::seconds(30));
    host.run_due_checks();
    CHECK_FALSE(c.close_requested());  // the first token's 10 s are gone; the second's 60 s hold
    host.advance(std::chrono::seconds(31));
    host.run_due_checks();
    CHECK(c.close_requested());
    CHECK(c.written().empty());  // closed with no DISCONNECT, as the source broker does
  }
  SECTION("unavailable: AUTH 0x18, the connection stays, and the client may try again") {
    authn::Result r;
    r.outcome = authn::Result::Outcome::Unavailable;
    host.answer_authentication(1, r);
    auto packets = c.packets();  // the decoded strings point into these bytes
    auto answer = decode_bytes<Auth>(packets.at(0), decode_auth);
    CHECK(answer.reason == Reason::ContinueAuthentication);
    CHECK(answer.properties.authentication_method == "K8S-SAT");
    CHECK_FALSE(c.close_requested());
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "token-3"));
    CHECK(host.authentications.size() == 3);
  }
  SECTION("refused: DISCONNECT 0x87 and close") {
    host.answer_authentication(1, authn::Result{});
    auto packets = c.packets();
    REQUIRE(packets.size() == 1);
    CHECK(decode_bytes<Disconnect>(packets[0], decode_disconnect).reason == Reason::NotAuthorized);
    CHECK(c.close_requested());
  }
  SECTION("a second AUTH while the first waits is a protocol error") {
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "token-3"));
    CHECK(decode_bytes<Disconnect>(c.packets().at(0), decode_disconnect).reason == Reason::ProtocolError);
    CHECK(c.close_requested());
  }
}

TEST_CASE("re-authentication: another method, a client without enhanced authentication, an X.509 client",
          "[engine][reauth]") {
  FakeHost host;
  SECTION("another method than the CONNECT's is a protocol error [MQTT-4.12.1-1]") {
    host.security[0] = security_with({config::AuthenticationMethod::Kind::ServiceAccountToken});
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c);
    host.answer_authentication(0, accepted(0, std::nullopt));
    c.packets();
    c.send(auth_packet(Reason::ReAuthenticate, "OTHER", "x"));
    CHECK(decode_bytes<Disconnect>(c.packets().at(0), decode_disconnect).reason == Reason::ProtocolError);
    CHECK(host.authentications.size() == 1);
  }
  SECTION("AUTH from a client that connected without a method is a protocol error") {
    host.security[0] = security_with({config::AuthenticationMethod::Kind::Anonymous});
    FakeClient c(host, ProtocolVersion::v5);
    c.connect("anon");
    c.packets();
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "x"));
    CHECK(decode_bytes<Disconnect>(c.packets().at(0), decode_disconnect).reason == Reason::ProtocolError);
  }
  SECTION("a client admitted by a method that cannot re-authenticate gets 0x8C") {
    host.security[0] = security_with(
        {config::AuthenticationMethod::Kind::X509, config::AuthenticationMethod::Kind::ServiceAccountToken});
    FakeClient c(host, ProtocolVersion::v5);
    connect_with_token(c);
    REQUIRE(host.authentications.size() == 1);
    host.answer_authentication(0, accepted(0, std::nullopt));  // as if X509 (index 0) had admitted it
    c.packets();
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "x"));
    CHECK(decode_bytes<Disconnect>(c.packets().at(0), decode_disconnect).reason == Reason::BadAuthenticationMethod);
    CHECK(host.authentications.size() == 1);
  }
}

TEST_CASE("re-authentication: a client looping on AUTH is bounded per window, and the window moves",
          "[engine][reauth]") {
  FakeHost host;
  host.security[0] = security_with({config::AuthenticationMethod::Kind::ServiceAccountToken});
  FakeClient c(host, ProtocolVersion::v5);
  connect_with_token(c);
  host.answer_authentication(0, accepted(0, std::nullopt));
  REQUIRE(type_of(c.packets().at(0)) == PacketType::Connack);
  authn::Result unavailable;
  unavailable.outcome = authn::Result::Outcome::Unavailable;
  // The remote service is down: each AUTH 0x19 gets 0x18, and the client tries again at once.
  auto round = [&](std::size_t check) {
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "token"));
    REQUIRE(host.authentications.size() == check + 1);
    host.answer_authentication(check, unavailable);
    auto packets = c.packets();
    REQUIRE(packets.size() == 1);
    CHECK(decode_bytes<Auth>(packets[0], decode_auth).reason == Reason::ContinueAuthentication);
  };
  const auto max = ClientConnection::kMaxReauthentications;
  for (std::size_t i = 1; i <= max; ++i) round(i);

  SECTION("one more in the window: DISCONNECT 0x96, no question asked, the limit counted") {
    c.send(auth_packet(Reason::ReAuthenticate, "K8S-SAT", "token"));
    CHECK(host.authentications.size() == max + 1);
    auto packets = c.packets();
    REQUIRE(packets.size() == 1);
    CHECK(decode_bytes<Disconnect>(packets[0], decode_disconnect).reason == Reason::MessageRateTooHigh);
    CHECK(c.close_requested());
    CHECK(std::count(host.limits.begin(), host.limits.end(), Limit::ReauthenticationRate) == 1);
  }
  SECTION("after the window, as many again") {
    host.advance(ClientConnection::kReauthenticationWindow);
    for (std::size_t i = max + 1; i <= 2 * max; ++i) round(i);
    CHECK_FALSE(c.close_requested());
    CHECK(host.limits.empty());
  }
}
