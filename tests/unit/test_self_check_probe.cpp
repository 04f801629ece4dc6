// The self-check's probe (ops/self_check_probe.*): the packets it sends, in order, against a
// broker played with the codec's server-side encoders; and each way a run fails, with the detail
// an operator reads in /readyz.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "ops/self_check_probe.hpp"

using namespace mqttd;
using codec::PacketType;
using codec::Reason;
using ops::SelfCheckProbe;
using Verdict = SelfCheckProbe::Verdict;

namespace {

constexpr auto kV5 = codec::ProtocolVersion::v5;
const std::string kTopic = "azedge/dmqtt/selftest";

std::vector<std::byte> nonce() {
  std::vector<std::byte> n;
  for (int i = 0; i < 16; ++i) n.push_back(static_cast<std::byte>(0xA0 + i));
  return n;
}

SelfCheckProbe make_probe() { return SelfCheckProbe("mqttd-selfcheck-0123", kTopic, nonce()); }

// The packet types in `bytes`, which must be whole packets.
std::vector<PacketType> types(const std::vector<std::byte>& bytes) {
  std::vector<PacketType> out;
  std::span<const std::byte> rest(bytes);
  while (!rest.empty()) {
    codec::FixedHeader h;
    REQUIRE(codec::parse_fixed_header(rest, h) == codec::FrameStatus::Complete);
    out.push_back(h.type);
    rest = rest.subspan(h.header_size + h.remaining_length);
  }
  return out;
}

std::vector<std::byte> connack(Reason r) {
  codec::Buffer out;
  codec::Connack c;
  c.reason = r;
  codec::encode_connack(c, kV5, out);
  return out;
}

std::vector<std::byte> suback(Reason r, std::uint16_t id = 1) {
  codec::Buffer out;
  codec::Suback s;
  s.packet_id = id;
  s.reasons = std::span<const Reason>(&r, 1);
  codec::encode_suback(s, kV5, out);
  return out;
}

std::vector<std::byte> pingresp() {
  codec::Buffer out;
  codec::encode_pingresp(out);
  return out;
}

std::vector<std::byte> puback(Reason r = Reason::Success, std::uint16_t id = 2) {
  codec::Buffer out;
  codec::Ack a;
  a.type = PacketType::Puback;
  a.packet_id = id;
  a.reason = r;
  codec::encode_ack(a, kV5, out);
  return out;
}

std::vector<std::byte> publish(std::span<const std::byte> payload, std::uint8_t qos = 1, std::uint16_t id = 7) {
  codec::Buffer out;
  codec::Publish p;
  p.qos = qos;
  p.topic = kTopic;
  p.packet_id = id;
  p.payload = payload;
  codec::encode_publish(p, kV5, out);
  return out;
}

std::vector<std::byte> unsuback(Reason r = Reason::Success) {
  codec::Buffer out;
  codec::Unsuback u;
  u.packet_id = 3;
  u.reasons = std::span<const Reason>(&r, 1);
  codec::encode_unsuback(u, kV5, out);
  return out;
}

std::vector<std::byte> disconnect(Reason r) {
  codec::Buffer out;
  codec::Disconnect d;
  d.reason = r;
  codec::encode_disconnect(d, kV5, out);
  return out;
}

// Plays the broker up to the point where the probe has sent its PUBLISH.
void up_to_publish(SelfCheckProbe& p) {
  p.start();
  REQUIRE(types(p.feed(connack(Reason::Success))) == std::vector{PacketType::Subscribe});
  REQUIRE(types(p.feed(suback(Reason::GrantedQos1))) == std::vector{PacketType::Pingreq});
  REQUIRE(types(p.feed(pingresp())) == std::vector{PacketType::Publish});
  REQUIRE(p.publish_sent());
}

}  // namespace

TEST_CASE("self-check probe: the whole sequence passes and ends with DISCONNECT") {
  auto p = make_probe();
  auto connect_bytes = p.start();
  codec::FixedHeader h;
  REQUIRE(codec::parse_fixed_header(connect_bytes, h) == codec::FrameStatus::Complete);
  codec::Connect c;
  codec::DecodeScratch scratch;
  REQUIRE(codec::decode_connect(h, std::span<const std::byte>(connect_bytes).subspan(h.header_size), c, scratch).ok());
  CHECK(c.version == kV5);
  CHECK(c.clean_start);
  CHECK(c.client_id == "mqttd-selfcheck-0123");
  CHECK(c.properties.session_expiry_interval.value_or(0) == 0);

  auto subscribe = p.feed(connack(Reason::Success));
  REQUIRE(codec::parse_fixed_header(subscribe, h) == codec::FrameStatus::Complete);
  codec::Subscribe s;
  REQUIRE(
      codec::decode_subscribe(h, std::span<const std::byte>(subscribe).subspan(h.header_size), kV5, s, scratch).ok());
  REQUIRE(s.topics.size() == 1);
  CHECK(s.topics[0].filter == kTopic);
  CHECK(s.topics[0].qos == 1);

  CHECK(types(p.feed(suback(Reason::GrantedQos1))) == std::vector{PacketType::Pingreq});
  CHECK_FALSE(p.publish_sent());
  auto sent = p.feed(pingresp());
  CHECK(p.publish_sent());
  REQUIRE(codec::parse_fixed_header(sent, h) == codec::FrameStatus::Complete);
  codec::Publish pub;
  REQUIRE(codec::decode_publish(h, std::span<const std::byte>(sent).subspan(h.header_size), kV5, pub, scratch).ok());
  CHECK(pub.qos == 1);
  CHECK(pub.topic == kTopic);
  CHECK(std::ranges::equal(pub.payload, nonce()));

  CHECK(p.feed(puback()).empty());
  CHECK(p.waiting_for() == "PUBLISH back");
  // The message back is acknowledged, and the probe unsubscribes at once.
  CHECK(types(p.feed(publish(nonce()))) == std::vector{PacketType::Puback, PacketType::Unsubscribe});
  CHECK(p.echo_received());
  CHECK(p.verdict() == Verdict::Running);
  CHECK(types(p.feed(unsuback())) == std::vector{PacketType::Disconnect});
  CHECK(p.verdict() == Verdict::Passed);
  CHECK(p.failure().empty());
}

TEST_CASE("self-check probe: packets split anywhere, the echo before the PUBACK, in one read") {
  auto p = make_probe();
  up_to_publish(p);
  auto n = nonce();
  auto both = publish(n);
  auto ack = puback();
  both.insert(both.end(), ack.begin(), ack.end());
  std::vector<std::byte> out;
  for (auto b : both) {  // one byte at a time
    auto o = p.feed(std::span<const std::byte>(&b, 1));
    out.insert(out.end(), o.begin(), o.end());
  }
  CHECK(types(out) == std::vector{PacketType::Puback, PacketType::Unsubscribe});
  CHECK(types(p.feed(unsuback())) == std::vector{PacketType::Disconnect});
  CHECK(p.verdict() == Verdict::Passed);
}

TEST_CASE("self-check probe: another message on the topic is acknowledged and ignored") {
  auto p = make_probe();
  up_to_publish(p);
  std::vector<std::byte> other(16, std::byte{0x42});
  CHECK(types(p.feed(publish(other))) == std::vector{PacketType::Puback});
  CHECK(types(p.feed(publish(other, 0))).empty());
  CHECK_FALSE(p.echo_received());
  CHECK(p.feed(puback()).empty());
  p.timed_out(15);
  CHECK(p.verdict() == Verdict::Failed);
  CHECK(p.failure() == "no PUBLISH back within 15 s");
}

TEST_CASE("self-check probe: each failure says what went wrong") {
  auto p = make_probe();
  p.start();

  SECTION("refused connection") {
    p.feed(connack(Reason::NotAuthorized));
    CHECK(p.failure() == "CONNACK 0x87");
  }
  SECTION("subscription granted at QoS 0") {
    p.feed(connack(Reason::Success));
    p.feed(suback(Reason::Success));
    CHECK(p.failure() == "SUBACK 0x00 (0x01 expected)");
  }
  SECTION("subscription refused") {
    p.feed(connack(Reason::Success));
    p.feed(suback(Reason::NotAuthorized));
    CHECK(p.failure() == "SUBACK 0x87");
  }
  SECTION("a PUBACK that says nobody subscribed") {
    p = make_probe();
    up_to_publish(p);
    p.feed(puback(Reason::NoMatchingSubscribers));
    CHECK(p.failure() == "PUBACK 0x10");
  }
  SECTION("the message back at QoS 0") {
    p = make_probe();
    up_to_publish(p);
    p.feed(publish(nonce(), 0));
    CHECK(p.failure() == "PUBLISH back at QoS 0 (1 expected)");
  }
  SECTION("the broker disconnects") {
    p.feed(connack(Reason::Success));
    p.feed(suback(Reason::GrantedQos1));
    p.feed(disconnect(Reason::ServerShuttingDown));
    CHECK(p.failure() == "DISCONNECT 0x8B from the broker while waiting for PINGRESP");
  }
  SECTION("the connection is closed before the CONNACK") {
    p.connection_closed();
    CHECK(p.failure() == "connection closed by the broker while waiting for CONNACK");
  }
  SECTION("nothing comes back") {
    p.timed_out(15);
    CHECK(p.failure() == "no CONNACK within 15 s");
  }
  SECTION("a packet out of order") {
    p.feed(pingresp());
    CHECK(p.failure() == "unexpected PINGRESP while waiting for CONNACK");
  }
  SECTION("an acknowledgement of another packet id") {
    p.feed(connack(Reason::Success));
    p.feed(suback(Reason::GrantedQos1, 9));
    CHECK(p.failure() == "unexpected SUBACK while waiting for SUBACK");
  }
  SECTION("a packet larger than the bound, refused from its header alone") {
    p.feed(connack(Reason::Success));
    p.feed(suback(Reason::GrantedQos1));
    // A PUBLISH announcing 100,000 bytes: only its fixed header arrives.
    std::vector<std::byte> header{std::byte{0x30}, std::byte{0xA0}, std::byte{0x8D}, std::byte{0x06}};
    CHECK(p.feed(header).empty());
    CHECK(p.failure() == "PUBLISH of 100004 bytes from the broker (at most 4096 expected)");
  }
  SECTION("UNSUBACK refused") {
    p = make_probe();
    up_to_publish(p);
    p.feed(puback());
    p.feed(publish(nonce()));
    p.feed(unsuback(Reason::NotAuthorized));
    CHECK(p.failure() == "UNSUBACK 0x87");
  }
  CHECK(p.verdict() == Verdict::Failed);
  // A failed probe sends nothing more.
  CHECK(p.feed(pingresp()).empty());
}
