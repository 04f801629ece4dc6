// The protocol engine driven by byte vectors: real Broker, Worker and ClientConnection, with a
// transport that keeps the bytes in memory instead of a socket (tests/support/memory_transport.hpp).
// The worker's event loop is polled by hand.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/transport.hpp"
#include "broker/worker.hpp"
#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "codec/wire.hpp"
#include "tests/support/memory_transport.hpp"

using namespace mqttd;
using namespace mqttd::codec;

namespace {

struct Received {
  FixedHeader header;
  std::vector<std::byte> body;
  PacketType type() const { return header.type; }
};

class MemoryClient : public test::MemoryTransport {
 public:
  MemoryClient(Broker& broker, ProtocolVersion v, std::size_t worker = 0)
      : MemoryTransport(broker, worker), version_(v) {
    REQUIRE(admitted());
  }

  void send_bytes(const std::vector<std::byte>& bytes) { MemoryTransport::send_bytes(bytes); }

  // Packets the broker wrote, in order.
  std::deque<Received> packets() {
    std::deque<Received> out;
    Bytes data(wire());
    while (!data.empty()) {
      FixedHeader h;
      REQUIRE(parse_fixed_header(data, h) == FrameStatus::Complete);
      REQUIRE(data.size() >= h.header_size + h.remaining_length);
      auto body = data.subspan(h.header_size, h.remaining_length);
      out.push_back(Received{h, {body.begin(), body.end()}});
      data = data.subspan(h.header_size + h.remaining_length);
    }
    wire().clear();
    return out;
  }
  Received next() {
    if (pending_.empty()) pending_ = packets();
    REQUIRE_FALSE(pending_.empty());
    Received r = pending_.front();
    pending_.pop_front();
    return r;
  }
  bool nothing_more() {
    if (pending_.empty()) pending_ = packets();
    return pending_.empty();
  }

  // Helpers that encode one client packet and send it.
  void connect(const std::string& id, bool clean = true, std::optional<std::uint32_t> expiry = {}) {
    Connect c;
    c.version = version_;
    c.client_id = id;
    c.clean_start = clean;
    c.keep_alive = 60;
    c.properties.session_expiry_interval = expiry;
    Buffer b;
    encode_connect(c, b);
    send_bytes(b);
  }
  void subscribe(std::string_view filter, std::uint8_t qos, std::uint16_t id = 1, bool no_local = false,
                 std::uint8_t retain_handling = 0) {
    SubscribeTopic t{filter, qos, no_local, false, retain_handling};
    Subscribe s;
    s.packet_id = id;
    s.topics = {&t, 1};
    Buffer b;
    encode_subscribe(s, version_, b);
    send_bytes(b);
  }
  void publish(std::string_view topic, std::string_view payload, std::uint8_t qos = 0, std::uint16_t id = 0,
               bool retain = false, std::optional<std::uint16_t> alias = {}) {
    Publish p;
    p.topic = topic;
    p.payload = as_bytes(payload);
    p.qos = qos;
    p.packet_id = id;
    p.retain = retain;
    p.properties.topic_alias = alias;
    Buffer b;
    encode_publish(p, version_, b);
    send_bytes(b);
  }
  void ack(PacketType type, std::uint16_t id) {
    Ack a;
    a.type = type;
    a.packet_id = id;
    Buffer b;
    encode_ack(a, version_, b);
    send_bytes(b);
  }

  // Decoded packets are views: keep their bytes for the rest of the test.
  const Received& kept(const Received& r) {
    if (kept_.empty() || &kept_.back() != &r) kept_.push_back(r);
    return kept_.back();
  }
  Publish decode_publish_packet(const Received& r) {
    Publish p;
    REQUIRE(decode_publish(kept(r).header, kept(r).body, version_, p, scratch_).ok());
    return p;
  }
  Connack decode_connack_packet(const Received& r) {
    Connack c;
    REQUIRE(decode_connack(kept(r).header, kept(r).body, version_, c, scratch_).ok());
    return c;
  }
  Ack decode_ack_packet(const Received& r) {
    Ack a;
    REQUIRE(decode_ack(kept(r).header, kept(r).body, version_, a, scratch_).ok());
    return a;
  }
  Disconnect decode_disconnect_packet(const Received& r) {
    Disconnect d;
    REQUIRE(decode_disconnect(kept(r).header, kept(r).body, version_, d, scratch_).ok());
    return d;
  }

 private:
  ProtocolVersion version_;
  std::deque<Received> pending_;
  std::deque<Received> kept_;
  DecodeScratch scratch_;
};

BrokerSettings one_worker() {
  BrokerSettings s;
  s.workers = 1;
  return s;
}

std::vector<std::byte> raw(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(std::byte(x));
  return out;
}

}  // namespace

TEST_CASE("v5 CONNECT gets a CONNACK that states the broker's limits", "[engine]") {
  BrokerSettings settings = one_worker();
  settings.max_session_expiry_seconds = 100;
  Broker broker(settings);
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("", true, 1000);
  auto ack = c.decode_connack_packet(c.next());
  CHECK(ack.reason == Reason::Success);
  CHECK_FALSE(ack.session_present);
  REQUIRE(ack.properties.assigned_client_identifier);
  CHECK(ack.properties.assigned_client_identifier->starts_with("mqttd-"));
  CHECK(ack.properties.session_expiry_interval == 100u);  // capped, and said so
  CHECK(ack.properties.receive_maximum == settings.receive_maximum);
  CHECK(ack.properties.topic_alias_maximum == settings.topic_alias_maximum);
  CHECK(ack.properties.maximum_packet_size == settings.max_packet_size_bytes);
  CHECK_FALSE(ack.properties.maximum_qos);  // QoS 2 is supported
}

TEST_CASE("3.1.1 empty client id with cleanSession=0 is rejected with 0x02", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v311);
  c.connect("", false);
  auto r = c.next();
  REQUIRE(r.type() == PacketType::Connack);
  CHECK(std::to_integer<int>(r.body[1]) == 0x02);
  CHECK(c.closed());
}

TEST_CASE("a PUBLISH before CONNECT closes the connection without an answer", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v311);
  c.send_bytes(raw({0x30, 0x03, 0x00, 0x01, 'a'}));
  CHECK(c.closed());
  CHECK(c.nothing_more());
}

// [MQTT-3.1.2-1], [MQTT-3.1.4-1], [MQTT-2.2.2-2]: a CONNECT that is not MQTT, or a 3.1.1 CONNECT
// with a reserved flag set, is closed without a CONNACK (a 3.1.1 client never receives a v5 one).
TEST_CASE("a CONNECT with another protocol name or a reserved flag is closed without CONNACK", "[engine]") {
  Broker broker(one_worker());
  // Protocol name "MQTX", level 4, clean session, keep alive 60, client id "c".
  MemoryClient wrong_name(broker, ProtocolVersion::v311);
  wrong_name.send_bytes(raw({0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'}));
  CHECK(wrong_name.closed());
  CHECK(wrong_name.nothing_more());
  // 3.1.1 CONNECT with the reserved flag (bit 0) set.
  MemoryClient reserved(broker, ProtocolVersion::v311);
  reserved.send_bytes(raw({0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3c, 0x00, 0x01, 'c'}));
  CHECK(reserved.closed());
  CHECK(reserved.nothing_more());
  // 3.1.1 CONNECT with reserved fixed-header flags.
  MemoryClient header_flags(broker, ProtocolVersion::v311);
  header_flags.send_bytes(raw({0x11, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'}));
  CHECK(header_flags.closed());
  CHECK(header_flags.nothing_more());
}

// [MQTT-4.7.3-1], [MQTT-4.8.0-1]: a 3.1.1 SUBSCRIBE or UNSUBSCRIBE with an empty topic filter
// closes the connection; a v5 SUBSCRIBE gets 0x8F for that filter.
TEST_CASE("an empty topic filter: 3.1.1 closes, v5 gets 0x8F", "[engine]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v311);
  sub.connect("empty-sub");
  sub.next();
  sub.subscribe("", 0);
  CHECK(sub.closed());
  CHECK(sub.nothing_more());
  MemoryClient unsub(broker, ProtocolVersion::v311);
  unsub.connect("empty-unsub");
  unsub.next();
  unsub.send_bytes(raw({0xA2, 0x04, 0x00, 0x01, 0x00, 0x00}));  // UNSUBSCRIBE id 1, filter ""
  CHECK(unsub.closed());
  CHECK(unsub.nothing_more());
  MemoryClient v5(broker, ProtocolVersion::v5);
  v5.connect("empty-v5");
  v5.next();
  v5.subscribe("", 0);
  auto suback = v5.next();
  REQUIRE(suback.type() == PacketType::Suback);
  CHECK(std::to_integer<int>(suback.body.back()) == 0x8F);
  CHECK_FALSE(v5.closed());
}

TEST_CASE("a second CONNECT is a protocol error (DISCONNECT 0x82)", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("twice");
  c.next();
  c.connect("twice");
  auto d = c.decode_disconnect_packet(c.next());
  CHECK(d.reason == Reason::ProtocolError);
  CHECK(c.closed());
}

TEST_CASE("a packet above the maximum size is refused before it is buffered", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("big");
  c.next();
  // PUBLISH announcing 256 MB (the largest remaining length), then nothing more.
  c.send_bytes(raw({0x30, 0xFF, 0xFF, 0xFF, 0x7F}));
  auto d = c.decode_disconnect_packet(c.next());
  CHECK(d.reason == Reason::PacketTooLarge);
  CHECK(c.closed());
}

TEST_CASE("a remaining length of 300 MB needs five bytes and is malformed (0x81)", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("huge");
  c.next();
  c.send_bytes(raw({0x30, 0x80, 0x80, 0x80, 0x96, 0x01}));
  auto d = c.decode_disconnect_packet(c.next());
  CHECK(d.reason == Reason::MalformedPacket);
  CHECK(c.closed());
}

TEST_CASE("publish and subscribe at QoS 0, 1 and 2 with acknowledgements", "[engine]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v5);
  MemoryClient pub(broker, ProtocolVersion::v5);
  sub.connect("sub");
  sub.next();
  pub.connect("pub");
  pub.next();
  sub.subscribe("t/#", 2);
  auto suback = sub.next();
  REQUIRE(suback.type() == PacketType::Suback);
  CHECK(std::to_integer<int>(suback.body.back()) == 2);

  pub.publish("t/0", "zero", 0);
  CHECK(pub.nothing_more());
  auto m0 = sub.decode_publish_packet(sub.next());
  CHECK(m0.topic == "t/0");
  CHECK(m0.qos == 0);

  pub.publish("t/1", "one", 1, 10);
  auto puback = pub.decode_ack_packet(pub.next());
  CHECK(puback.type == PacketType::Puback);
  CHECK(puback.packet_id == 10);
  CHECK(puback.reason == Reason::Success);
  auto m1 = sub.decode_publish_packet(sub.next());
  CHECK(m1.qos == 1);
  sub.ack(PacketType::Puback, m1.packet_id);

  pub.publish("t/2", "two", 2, 11);
  auto pubrec = pub.decode_ack_packet(pub.next());
  CHECK(pubrec.type == PacketType::Pubrec);
  // The same packet again before PUBREL: acknowledged, not delivered twice.
  pub.publish("t/2", "two", 2, 11);
  CHECK(pub.decode_ack_packet(pub.next()).type == PacketType::Pubrec);
  pub.ack(PacketType::Pubrel, 11);
  CHECK(pub.decode_ack_packet(pub.next()).type == PacketType::Pubcomp);
  auto m2 = sub.decode_publish_packet(sub.next());
  CHECK(m2.qos == 2);
  CHECK(sub.nothing_more());
  sub.ack(PacketType::Pubrec, m2.packet_id);
  auto rel = sub.decode_ack_packet(sub.next());
  CHECK(rel.type == PacketType::Pubrel);
  sub.ack(PacketType::Pubcomp, m2.packet_id);
  CHECK(sub.nothing_more());

  pub.publish("nobody/listens", "x", 1, 12);
  CHECK(pub.decode_ack_packet(pub.next()).reason == Reason::NoMatchingSubscribers);
}

TEST_CASE("taking over a client id disconnects the old connection with 0x8E and keeps the session", "[engine]") {
  Broker broker(one_worker());
  MemoryClient first(broker, ProtocolVersion::v5);
  first.connect("same", false, 300);
  first.next();
  first.subscribe("keep/#", 1);
  first.next();
  MemoryClient second(broker, ProtocolVersion::v5);
  second.connect("same", false, 300);
  auto d = first.decode_disconnect_packet(first.next());
  CHECK(d.reason == Reason::SessionTakenOver);
  CHECK(first.closed());
  auto ack = second.decode_connack_packet(second.next());
  CHECK(ack.session_present);
  MemoryClient pub(broker, ProtocolVersion::v311);
  pub.connect("p");
  pub.next();
  pub.publish("keep/x", "still subscribed", 1, 5);
  CHECK(second.decode_publish_packet(second.next()).topic == "keep/x");
}

TEST_CASE("QoS 1 messages wait for an offline session and are redelivered with DUP", "[engine]") {
  Broker broker(one_worker());
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  {
    MemoryClient sub(broker, ProtocolVersion::v5);
    sub.connect("persist", true, 600);
    sub.next();
    sub.subscribe("q", 1);
    sub.next();
    pub.publish("q", "in flight", 1, 1);
    auto m = sub.decode_publish_packet(sub.next());
    CHECK_FALSE(m.dup);
    // No PUBACK: the client goes away.
  }
  pub.next();
  pub.publish("q", "queued", 1, 2);
  pub.publish("q", "dropped: QoS 0 while offline", 0);
  MemoryClient back(broker, ProtocolVersion::v5);
  back.connect("persist", false, 600);
  auto ack = back.decode_connack_packet(back.next());
  CHECK(ack.session_present);
  auto again = back.decode_publish_packet(back.next());
  CHECK(again.dup);
  CHECK(codec::as_string(again.payload) == "in flight");
  auto queued = back.decode_publish_packet(back.next());
  CHECK(codec::as_string(queued.payload) == "queued");
  CHECK(back.nothing_more());
}

TEST_CASE("topic aliases: a topic once, then the alias alone", "[engine]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v311);
  sub.connect("s");
  sub.next();
  sub.subscribe("alias/+", 0);
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  pub.publish("alias/x", "1", 0, 0, false, 3);
  pub.publish("", "2", 0, 0, false, 3);
  CHECK(sub.decode_publish_packet(sub.next()).topic == "alias/x");
  CHECK(sub.decode_publish_packet(sub.next()).topic == "alias/x");
  pub.publish("", "unknown", 0, 0, false, 4);
  CHECK(pub.decode_disconnect_packet(pub.next()).reason == Reason::ProtocolError);
}

TEST_CASE("an alias above the advertised maximum is 0x94", "[engine]") {
  Broker broker(one_worker());
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  pub.publish("a", "x", 0, 0, false, 1000);
  CHECK(pub.decode_disconnect_packet(pub.next()).reason == Reason::TopicAliasInvalid);
}

TEST_CASE("No Local and Retain Handling", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("self");
  c.next();
  c.subscribe("loop", 0, 1, true);
  c.next();
  c.publish("loop", "mine", 0);
  CHECK(c.nothing_more());

  c.publish("kept", "retained", 0, 0, true);
  c.subscribe("kept", 0, 2, false, 2);  // 2: never send retained messages
  CHECK(c.next().type() == PacketType::Suback);
  CHECK(c.nothing_more());
  c.subscribe("kept", 0, 3, false, 1);  // 1: only for a new subscription (it exists)
  CHECK(c.next().type() == PacketType::Suback);
  CHECK(c.nothing_more());
  c.subscribe("kept", 0, 4, false, 0);
  CHECK(c.next().type() == PacketType::Suback);
  auto m = c.decode_publish_packet(c.next());
  CHECK(m.retain);
  CHECK(codec::as_string(m.payload) == "retained");
}

TEST_CASE("half a packet then more bytes is reassembled", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v311);
  Connect conn;
  conn.version = ProtocolVersion::v311;
  conn.client_id = "split";
  Buffer b;
  encode_connect(conn, b);
  std::vector<std::byte> first(b.begin(), b.begin() + 3), rest(b.begin() + 3, b.end());
  c.send_bytes(first);
  CHECK(c.nothing_more());
  c.send_bytes(rest);
  CHECK(c.next().type() == PacketType::Connack);
}

TEST_CASE("broker statistics count received, sent and dropped messages", "[engine]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v5);
  sub.connect("stats-sub");
  sub.next();
  sub.subscribe("s/#", 0);
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("stats-pub");
  pub.next();
  pub.publish("s/1", "a");
  pub.publish("s/2", "b");
  pub.publish("nobody", "c");
  auto stats = broker.stats();
  CHECK(stats.messages_received == 3);
  CHECK(stats.messages_sent == 2);
  CHECK(stats.sessions == 2);
  CHECK(stats.connections == 2);
}

// ---------------------------------------------------------------- bounds (docs/security.md "Limits")

namespace {

std::vector<std::byte> encoded(auto&& encode) {
  Buffer b;
  encode(b);
  return {b.begin(), b.end()};
}

std::vector<Reason> suback_reasons(const Received& r, ProtocolVersion v) {
  REQUIRE(r.type() == PacketType::Suback);
  Suback s;
  DecodeScratch scratch;
  REQUIRE(decode_suback(r.header, r.body, v, s, scratch).ok());
  return {s.reasons.begin(), s.reasons.end()};
}

std::vector<Reason> unsuback_reasons(const Received& r, ProtocolVersion v) {
  REQUIRE(r.type() == PacketType::Unsuback);
  Unsuback u;
  DecodeScratch scratch;
  REQUIRE(decode_unsuback(r.header, r.body, v, u, scratch).ok());
  return {u.reasons.begin(), u.reasons.end()};
}

std::string levels(std::size_t n, std::string_view level = "l") {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += level;
  }
  return s;
}

}  // namespace

TEST_CASE("Topic levels: names and filters beyond maxTopicLevels are invalid", "[engine][limits]") {
  BrokerSettings settings = one_worker();
  settings.max_topic_levels = 8;
  Broker broker(settings);

  MemoryClient sub(broker, ProtocolVersion::v5);
  sub.connect("levels-sub");
  sub.next();
  // One SUBSCRIBE: a filter at the bound, one beyond it (plain and shared), one wildcard beyond.
  std::string ok = levels(8), deep = levels(9), shared = "$share/g/" + levels(9), deep_plus = levels(9, "+");
  SubscribeTopic topics[] = {{ok, 0}, {deep, 0}, {shared, 0}, {deep_plus, 0}};
  Subscribe s;
  s.packet_id = 1;
  s.topics = topics;
  sub.send_bytes(encoded([&](Buffer& b) { encode_subscribe(s, ProtocolVersion::v5, b); }));
  CHECK(suback_reasons(sub.next(), ProtocolVersion::v5) ==
        std::vector<Reason>{Reason::Success, Reason::TopicFilterInvalid, Reason::TopicFilterInvalid,
                            Reason::TopicFilterInvalid});
  std::string_view filters[] = {ok, deep};
  Unsubscribe u;
  u.packet_id = 2;
  u.filters = filters;
  sub.send_bytes(encoded([&](Buffer& b) { encode_unsubscribe(u, ProtocolVersion::v5, b); }));
  CHECK(unsuback_reasons(sub.next(), ProtocolVersion::v5) ==
        std::vector<Reason>{Reason::Success, Reason::TopicFilterInvalid});
  CHECK(broker.stats().limit(Limit::TopicLevels) == 4);

  // 3.1.1: SUBACK 0x80 for that filter.
  MemoryClient sub311(broker, ProtocolVersion::v311);
  sub311.connect("levels-sub311");
  sub311.next();
  sub311.subscribe(deep, 1);
  CHECK(suback_reasons(sub311.next(), ProtocolVersion::v311) == std::vector<Reason>{Reason::UnspecifiedError});

  // A PUBLISH: DISCONNECT 0x90, as any invalid topic name.
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("levels-pub");
  pub.next();
  pub.publish(ok, "fine", 1, 1);
  CHECK(pub.decode_ack_packet(pub.next()).reason == Reason::NoMatchingSubscribers);
  pub.publish(deep, "too deep", 1, 2);
  CHECK(pub.decode_disconnect_packet(pub.next()).reason == Reason::TopicNameInvalid);
  CHECK(pub.closed());

  // Through a topic alias: the topic is checked whichever way it came.
  MemoryClient alias(broker, ProtocolVersion::v5);
  alias.connect("levels-alias");
  alias.next();
  alias.publish(deep, "x", 0, 0, false, 1);
  CHECK(alias.decode_disconnect_packet(alias.next()).reason == Reason::TopicNameInvalid);

  // A will topic: CONNACK 0x90 (MQTT 5 section 3.2.2.2: "The Will Topic Name is not malformed,
  // but is not accepted by this Server").
  MemoryClient will(broker, ProtocolVersion::v5);
  Connect c;
  c.client_id = "levels-will";
  c.will = true;
  c.will_topic = deep;
  will.send_bytes(encoded([&](Buffer& b) { encode_connect(c, b); }));
  CHECK(will.decode_connack_packet(will.next()).reason == Reason::TopicNameInvalid);
  CHECK(will.closed());
  CHECK(broker.stats().limit(Limit::TopicLevels) == 8);
}

TEST_CASE("User properties: more than maxUserProperties in one packet is 0x97", "[engine][limits]") {
  BrokerSettings settings = one_worker();
  settings.max_user_properties = 4;
  Broker broker(settings);
  std::vector<UserProperty> four(4, UserProperty{"k", "v"}), five(5, UserProperty{"k", "v"});
  auto refused_after_connect = [&](std::string id, auto&& encode) {
    MemoryClient c(broker, ProtocolVersion::v5);
    c.connect(id);
    c.next();
    c.send_bytes(encoded(encode));
    CHECK(c.decode_disconnect_packet(c.next()).reason == Reason::QuotaExceeded);
    CHECK(c.closed());
  };

  // PUBLISH: at the bound it goes through (and its properties with it); beyond, DISCONNECT 0x97.
  MemoryClient sub(broker, ProtocolVersion::v5);
  sub.connect("props-sub");
  sub.next();
  sub.subscribe("props/#", 0);
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("props-pub");
  pub.next();
  Publish p;
  p.topic = "props/t";
  p.payload = as_bytes(std::string_view("x"));
  p.properties.user_properties = four;
  pub.send_bytes(encoded([&](Buffer& b) { encode_publish(p, ProtocolVersion::v5, b); }));
  CHECK(sub.decode_publish_packet(sub.next()).properties.user_properties.size() == 4);
  p.properties.user_properties = five;
  pub.send_bytes(encoded([&](Buffer& b) { encode_publish(p, ProtocolVersion::v5, b); }));
  CHECK(pub.decode_disconnect_packet(pub.next()).reason == Reason::QuotaExceeded);
  CHECK(sub.nothing_more());

  // Every other packet that carries them.
  refused_after_connect("props-subscribe", [&](Buffer& b) {
    SubscribeTopic t{"a", 0};
    Subscribe s;
    s.packet_id = 1;
    s.topics = {&t, 1};
    s.properties.user_properties = five;
    encode_subscribe(s, ProtocolVersion::v5, b);
  });
  refused_after_connect("props-unsubscribe", [&](Buffer& b) {
    std::string_view f = "a";
    Unsubscribe u;
    u.packet_id = 1;
    u.filters = {&f, 1};
    u.properties.user_properties = five;
    encode_unsubscribe(u, ProtocolVersion::v5, b);
  });
  refused_after_connect("props-ack", [&](Buffer& b) {
    Ack a;
    a.type = PacketType::Puback;
    a.packet_id = 1;
    a.properties.user_properties = five;
    encode_ack(a, ProtocolVersion::v5, b);
  });
  refused_after_connect("props-disconnect", [&](Buffer& b) {
    Disconnect d;
    d.properties.user_properties = five;
    encode_disconnect(d, ProtocolVersion::v5, b);
  });
  refused_after_connect("props-auth", [&](Buffer& b) {
    Auth a;
    a.reason = Reason::ContinueAuthentication;
    a.properties.user_properties = five;
    encode_auth(a, b);
  });

  // CONNECT: CONNACK 0x97, for its own properties and for its will's, which count together.
  auto connack_reason = [&](std::span<const UserProperty> props, std::span<const UserProperty> will_props) {
    MemoryClient c(broker, ProtocolVersion::v5);
    Connect conn;
    conn.client_id = "props-connect";
    conn.properties.user_properties = props;
    conn.will = !will_props.empty();
    conn.will_topic = "w";
    conn.will_properties.user_properties = will_props;
    c.send_bytes(encoded([&](Buffer& b) { encode_connect(conn, b); }));
    return c.decode_connack_packet(c.next()).reason;
  };
  CHECK(connack_reason(five, {}) == Reason::QuotaExceeded);
  CHECK(connack_reason({}, five) == Reason::QuotaExceeded);
  CHECK(connack_reason(std::span(four).first(2), std::span(four).first(3)) == Reason::QuotaExceeded);
  CHECK(connack_reason(std::span(four).first(2), std::span(four).first(2)) == Reason::Success);
  CHECK(broker.stats().limit(Limit::UserProperties) == 9);
}

TEST_CASE("Topic filters per SUBSCRIBE: more than maxTopicFiltersPerSubscribe is DISCONNECT 0x97", "[engine][limits]") {
  BrokerSettings settings = one_worker();
  settings.max_filters_per_subscribe = 3;
  Broker broker(settings);
  std::vector<std::string> names = {"f/1", "f/2", "f/3", "f/4"};
  auto subscribe = [&](MemoryClient& c, ProtocolVersion v, std::size_t n) {
    std::vector<SubscribeTopic> topics;
    for (std::size_t i = 0; i < n; ++i) topics.push_back({names[i], 1});
    Subscribe s;
    s.packet_id = 1;
    s.topics = topics;
    c.send_bytes(encoded([&](Buffer& b) { encode_subscribe(s, v, b); }));
  };
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("filters");
  c.next();
  subscribe(c, ProtocolVersion::v5, 3);
  CHECK(suback_reasons(c.next(), ProtocolVersion::v5).size() == 3);
  subscribe(c, ProtocolVersion::v5, 4);
  CHECK(c.decode_disconnect_packet(c.next()).reason == Reason::QuotaExceeded);
  CHECK(c.closed());
  // The decoder stopped at the bound rather than collecting every filter first.
  CHECK(broker.worker(0).scratch().topics.size() <= 3);

  // UNSUBSCRIBE is bounded the same way.
  MemoryClient u(broker, ProtocolVersion::v5);
  u.connect("filters-unsubscribe");
  u.next();
  std::vector<std::string_view> filters(names.begin(), names.end());
  Unsubscribe un;
  un.packet_id = 1;
  un.filters = filters;
  u.send_bytes(encoded([&](Buffer& b) { encode_unsubscribe(un, ProtocolVersion::v5, b); }));
  CHECK(u.decode_disconnect_packet(u.next()).reason == Reason::QuotaExceeded);

  // 3.1.1 has no DISCONNECT to send: closed.
  MemoryClient c311(broker, ProtocolVersion::v311);
  c311.connect("filters311");
  c311.next();
  subscribe(c311, ProtocolVersion::v311, 4);
  CHECK(c311.closed());
  CHECK(c311.nothing_more());
  CHECK(broker.stats().limit(Limit::FiltersPerSubscribe) == 3);
}

TEST_CASE("Subscriptions per session: a new filter beyond maxSubscriptionsPerSession gets 0x97", "[engine][limits]") {
  BrokerSettings settings = one_worker();
  settings.max_subscriptions_per_session = 3;
  Broker broker(settings);
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("subs");
  c.next();
  for (auto f : {"s/1", "s/2", "s/3"}) {
    c.subscribe(f, 1);
    CHECK(suback_reasons(c.next(), ProtocolVersion::v5) == std::vector<Reason>{Reason::GrantedQos1});
  }
  // Replacing an existing subscription is fine; a fourth is refused, and only it.
  SubscribeTopic topics[] = {{"s/1", 0}, {"s/4", 1}, {"$share/g/s/5", 1}};
  Subscribe s;
  s.packet_id = 2;
  s.topics = topics;
  c.send_bytes(encoded([&](Buffer& b) { encode_subscribe(s, ProtocolVersion::v5, b); }));
  CHECK(suback_reasons(c.next(), ProtocolVersion::v5) ==
        std::vector<Reason>{Reason::Success, Reason::QuotaExceeded, Reason::QuotaExceeded});
  // Room again once one is removed.
  std::string_view gone = "s/2";
  Unsubscribe u;
  u.packet_id = 3;
  u.filters = {&gone, 1};
  c.send_bytes(encoded([&](Buffer& b) { encode_unsubscribe(u, ProtocolVersion::v5, b); }));
  c.next();
  c.subscribe("s/4", 1, 4);
  CHECK(suback_reasons(c.next(), ProtocolVersion::v5) == std::vector<Reason>{Reason::GrantedQos1});

  // 3.1.1: 0x80.
  MemoryClient c311(broker, ProtocolVersion::v311);
  c311.connect("subs311");
  c311.next();
  for (auto f : {"t/1", "t/2", "t/3"}) {
    c311.subscribe(f, 0);
    c311.next();
  }
  c311.subscribe("t/4", 0);
  CHECK(suback_reasons(c311.next(), ProtocolVersion::v311) == std::vector<Reason>{Reason::UnspecifiedError});
  CHECK(broker.stats().limit(Limit::SubscriptionsPerSession) == 3);
}

TEST_CASE("Scratch buffers shrink after a large packet", "[engine][limits]") {
  Broker broker(one_worker());
  Worker& worker = broker.worker(0);
  MemoryClient c(broker, ProtocolVersion::v5);
  c.connect("scratch");
  c.next();
  // A SUBSCRIBE with 1,000 filters (the default bound) and 128 user properties.
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("x/" + std::to_string(i));
  std::vector<SubscribeTopic> topics;
  for (auto& n : names) topics.push_back({n, 0});
  std::vector<UserProperty> props(128, UserProperty{"k", "v"});
  Subscribe s;
  s.packet_id = 1;
  s.topics = topics;
  s.properties.user_properties = props;
  c.send_bytes(encoded([&](Buffer& b) { encode_subscribe(s, ProtocolVersion::v5, b); }));
  CHECK(suback_reasons(c.next(), ProtocolVersion::v5).size() == 1000);
  // A PUBLISH whose properties (240 KB) are copied into the encode scratch (Message Expiry is
  // stripped before forwarding), and 1,000 filters to unsubscribe.
  std::string big(60'000, 'v');
  UserProperty large[] = {{"k", big}, {"k", big}, {"k", big}, {"k", big}};
  Publish p;
  p.topic = "x/1";
  p.payload = as_bytes(std::string_view("x"));
  p.properties.message_expiry_interval = 60;
  p.properties.user_properties = large;
  c.send_bytes(encoded([&](Buffer& b) { encode_publish(p, ProtocolVersion::v5, b); }));
  CHECK(c.next().type() == PacketType::Publish);
  std::vector<std::string_view> filters(names.begin(), names.end());
  Unsubscribe u;
  u.packet_id = 2;
  u.filters = filters;
  c.send_bytes(encoded([&](Buffer& b) { encode_unsubscribe(u, ProtocolVersion::v5, b); }));
  CHECK(unsuback_reasons(c.next(), ProtocolVersion::v5).size() == 1000);

  const auto& d = worker.scratch();
  CHECK(d.topics.capacity() <= 64);
  CHECK(d.filters.capacity() <= 64);
  CHECK(d.user_properties.capacity() <= 64);
  CHECK(d.reasons.capacity() <= 64);
  CHECK(worker.encode_scratch().capacity() <= 64 * 1024);
}

TEST_CASE("MQTT 3.1.1 persistent sessions expire (a week unless maxSessionExpirySeconds says)", "[engine][limits]") {
  Broker broker(one_worker());
  MemoryClient old(broker, ProtocolVersion::v311);
  old.connect("old-311", false);
  old.next();
  // Before: 0xFFFFFFFF, a session that never expires, so abandoned client ids piled up forever.
  CHECK(old.connection().session()->expiry_interval == 7u * 24 * 3600);
  BrokerSettings capped = one_worker();
  capped.max_session_expiry_seconds = 60;
  Broker broker2(capped);
  MemoryClient old2(broker2, ProtocolVersion::v311);
  old2.connect("old-311", false);
  old2.next();
  CHECK(old2.connection().session()->expiry_interval == 60);
}

TEST_CASE("the CONNECT timeout also bounds a session handover that never completes", "[engine][limits]") {
  BrokerSettings two = one_worker();
  two.workers = 2;
  Broker broker(two);
  // The session lives on worker 1; a new CONNECT on worker 0 asks worker 1 to hand it over, and
  // worker 1 (never polled here) never answers: the connection waits in its Attaching state.
  MemoryClient first(broker, ProtocolVersion::v5, 1);
  first.connect("stuck", false, 600);
  first.next();
  MemoryClient second(broker, ProtocolVersion::v5, 0);
  second.connect("stuck", false, 600);
  CHECK(second.nothing_more());
  CHECK_FALSE(second.closed());
  broker.worker(0).tick_at(Clock::now() + std::chrono::seconds(11));
  second.pump();
  CHECK(second.closed());
  CHECK(broker.stats().limit(Limit::ConnectTimeout) == 1);
}

// Hardening "unacknowledged outbound messages found by packet id in O(1)": acknowledgements in
// reverse order over a full 65,535-message window. A linear search per acknowledgement makes
// this about 2 billion comparisons (seconds); a table indexed by packet id, milliseconds.
TEST_CASE("Inflight table: 65535 acknowledgements in reverse order are not quadratic", "[engine][limits]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v5);
  sub.connect("window-sub");
  sub.next();
  sub.subscribe("w", 1);
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("window-pub");
  pub.next();
  constexpr int kWindow = 65535;
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < kWindow; ++i) {
    pub.publish("w", "m", 1, static_cast<std::uint16_t>(i % 65535 + 1));
    if (i % 4096 == 0) pub.packets();  // the PUBACKs are not needed
    ids.push_back(sub.decode_publish_packet(sub.next()).packet_id);
  }
  std::vector<std::uint16_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // all distinct
  auto start = std::chrono::steady_clock::now();
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) sub.ack(PacketType::Puback, *it);
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Speed is not asserted here (a loaded or sanitized build varies too much); the figure is
  // printed, and the table's O(1) lookup has its own unit tests.
  WARN("65535 reverse-order acknowledgements took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  // Every slot is free again: the next message is sent at once.
  pub.publish("w", "after", 1, 1);
  CHECK(sub.decode_publish_packet(sub.next()).payload.size() == 5);
}

// Review finding: messages sent and never acknowledged were bounded only by the client's Receive
// Maximum (up to 65,535 messages of up to the maximum packet size each).
TEST_CASE("In-flight bytes: a client that never acknowledges holds at most the per-session bound", "[engine][limits]") {
  BrokerSettings s = one_worker();
  s.max_queued_bytes_per_session = 10'000;
  Broker broker(s);
  MemoryClient sub(broker, ProtocolVersion::v5);
  sub.connect("hoarder", true, 600);
  sub.next();
  sub.subscribe("h", 1);
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  std::string payload(1000, 'x');
  for (std::uint16_t i = 1; i <= 50; ++i) pub.publish("h", payload, 1, i);
  int sent = 0;
  while (!sub.nothing_more()) {
    if (sub.next().type() == PacketType::Publish) ++sent;
  }
  const auto& session = sub.connection().session()->holdings(0);
  CHECK(session.inflight.bytes() <= 10'000);
  CHECK(sent == static_cast<int>(session.inflight.size()));
  CHECK(sent < 50);
  CHECK(sent > 5);
  // The rest waits in the queue (itself bounded by bytes; strategy None drops the newest).
  CHECK(session.queue.bytes() <= 10'000);
  CHECK(broker.stats().limit(Limit::QueuedBytesPerSession) > 0);
  // Acknowledging frees room: the next queued message goes out.
  sub.ack(PacketType::Puback, 1);
  CHECK(sub.decode_publish_packet(sub.next()).payload.size() == 1000);
}

// Issue "engine", races: a SUBSCRIBE the broker has read applies on every worker to every
// PUBLISH read after it. Worker 1 is polled only after the PUBLISH was handed to it, the order in
// which a busy worker meets a PUBLISH before the posted index change: the change must be applied
// before matching, not after.
TEST_CASE("subscription visibility: a PUBLISH read after a SUBSCRIBE on another worker finds it", "[engine]") {
  BrokerSettings two = one_worker();
  two.workers = 2;
  Broker broker(two);
  MemoryClient sub(broker, ProtocolVersion::v5, 0);
  sub.connect("vis-sub");
  sub.next();
  MemoryClient pub(broker, ProtocolVersion::v5, 1);
  pub.connect("vis-pub");
  pub.next();
  sub.subscribe("vis/t", 0);  // read and applied on worker 0; worker 1's replica is behind
  pub.connection().on_bytes([] {
    Publish p;
    p.topic = "vis/t";
    p.payload = as_bytes(std::string_view("after"));
    Buffer b;
    encode_publish(p, ProtocolVersion::v5, b);
    return b;
  }());
  // Now let both workers run what they queued (the delivery, the index change, the SUBACK).
  for (int i = 0; i < 4; ++i) {
    pub.pump();
    sub.pump();
  }
  bool delivered = false;
  while (!sub.nothing_more()) delivered = delivered || sub.next().type() == PacketType::Publish;
  CHECK(delivered);
}

// A shared-subscription message acknowledged with PUBREC keeps only its packet identifier (the
// message itself is released). When that member's session ends, the identifier must not be
// handed to another member: it is delivered already, and there is no message to send.
TEST_CASE("a shared message past PUBREC is not redistributed when its member's session ends", "[engine]") {
  Broker broker(one_worker());
  auto first = std::make_unique<MemoryClient>(broker, ProtocolVersion::v5);
  auto second = std::make_unique<MemoryClient>(broker, ProtocolVersion::v5);
  first->connect("member-1");
  first->next();
  second->connect("member-2");
  second->next();
  first->subscribe("$share/g/s2", 2);
  first->next();
  second->subscribe("$share/g/s2", 2);
  second->next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  pub.publish("s2", "once", 2, 1);
  pub.next();  // PUBREC
  pub.ack(PacketType::Pubrel, 1);
  pub.next();  // PUBCOMP
  // Whichever member got it acknowledges with PUBREC, then leaves (session expiry 0).
  std::unique_ptr<MemoryClient>& got = first->nothing_more() ? second : first;
  std::unique_ptr<MemoryClient>& other = first->nothing_more() ? first : second;
  auto m = got->decode_publish_packet(got->next());
  CHECK(m.qos == 2);
  got->ack(PacketType::Pubrec, m.packet_id);
  CHECK(got->decode_ack_packet(got->next()).type == PacketType::Pubrel);
  got.reset();
  // The other member does not get it a second time, and the broker still routes.
  CHECK(other->nothing_more());
  pub.publish("s2", "next", 1, 2);
  pub.next();
  CHECK(codec::as_string(other->decode_publish_packet(other->next()).payload) == "next");
}

// maxQueuedBytesPerSession bounds what accumulates, not the size of one message: a message the
// packet limits allowed but larger than the bound still reaches a subscriber with nothing queued.
TEST_CASE("Queued bytes: an empty queue takes one message larger than the per-session bound", "[engine][limits]") {
  BrokerSettings s = one_worker();
  s.max_queued_bytes_per_session = 1'000;
  Broker broker(s);
  {
    MemoryClient sub(broker, ProtocolVersion::v5);
    sub.connect("big-offline", true, 600);
    sub.next();
    sub.subscribe("big", 1);
    sub.next();
  }
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  pub.publish("big", std::string(3'000, 'a'), 1, 1);
  pub.next();
  pub.publish("big", std::string(3'000, 'b'), 1, 2);  // the queue holds one already: over the bound
  pub.next();
  CHECK(broker.stats().limit(Limit::QueuedBytesPerSession) == 1);
  MemoryClient back(broker, ProtocolVersion::v5);
  back.connect("big-offline", false, 600);
  CHECK(back.decode_connack_packet(back.next()).session_present);
  auto m = back.decode_publish_packet(back.next());
  CHECK(m.payload.size() == 3'000);
  CHECK(std::to_integer<char>(m.payload[0]) == 'a');
  CHECK(back.nothing_more());
}

// [MQTT-4.8.2-4], [MQTT-4.8.2-5]: a QoS 2 shared-subscription message sent to a member is
// completed with that member, never sent to another, even if its session ends first.
TEST_CASE("a shared QoS 2 message sent to a member is not sent to another when it leaves", "[engine]") {
  Broker broker(one_worker());
  auto first = std::make_unique<MemoryClient>(broker, ProtocolVersion::v5);
  auto second = std::make_unique<MemoryClient>(broker, ProtocolVersion::v5);
  first->connect("q2-member-1");
  first->next();
  second->connect("q2-member-2");
  second->next();
  first->subscribe("$share/g/q2", 2);
  first->next();
  second->subscribe("$share/g/q2", 2);
  second->next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  pub.publish("q2", "exactly once", 2, 1);
  pub.next();
  pub.ack(PacketType::Pubrel, 1);
  pub.next();
  std::unique_ptr<MemoryClient>& got = first->nothing_more() ? second : first;
  std::unique_ptr<MemoryClient>& other = first->nothing_more() ? first : second;
  CHECK(got->decode_publish_packet(got->next()).qos == 2);
  got.reset();  // no PUBREC; the session (expiry 0) ends
  other->pump();
  CHECK(other->nothing_more());
  pub.publish("q2", "next", 1, 2);
  pub.next();
  CHECK(codec::as_string(other->decode_publish_packet(other->next()).payload) == "next");
}

// A shared-subscription message of a member that goes offline waits in its session when no other
// member can take it, instead of disappearing.
TEST_CASE("the only member of a shared group keeps its messages while offline", "[engine]") {
  Broker broker(one_worker());
  {
    MemoryClient member(broker, ProtocolVersion::v5);
    member.connect("only-member", true, 600);
    member.next();
    member.subscribe("$share/g/alone", 1);
    member.next();
    MemoryClient pub(broker, ProtocolVersion::v5);
    pub.connect("p");
    pub.next();
    pub.publish("alone", "in flight", 1, 1);
    pub.next();
    CHECK(member.decode_publish_packet(member.next()).qos == 1);  // not acknowledged
  }
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p2");
  pub.next();
  pub.publish("alone", "queued", 1, 2);
  pub.next();
  MemoryClient back(broker, ProtocolVersion::v5);
  back.connect("only-member", false, 600);
  CHECK(back.decode_connack_packet(back.next()).session_present);
  auto resent = back.decode_publish_packet(back.next());
  CHECK(codec::as_string(resent.payload) == "in flight");
  CHECK(resent.dup);  // still in flight, with its packet identifier: resent, not sent anew
  CHECK(codec::as_string(back.decode_publish_packet(back.next()).payload) == "queued");
}

// DropOldest makes room for a message only when dropping older ones can: a message larger than
// the per-session bound never empties a full queue to get in.
TEST_CASE("Queued bytes: DropOldest does not empty a queue for a message above the per-session bound",
          "[engine][limits]") {
  BrokerSettings s = one_worker();
  s.max_queued_bytes_per_session = 1'000;
  s.subscriber_queue_length = 3;
  s.subscriber_queue_strategy = QueueStrategy::DropOldest;
  Broker broker(s);
  {
    MemoryClient sub(broker, ProtocolVersion::v5);
    sub.connect("keeps-three", true, 600);
    sub.next();
    sub.subscribe("k", 1);
    sub.next();
  }
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  for (std::uint16_t i = 1; i <= 3; ++i) {
    pub.publish("k", std::string(10, char('0' + i)), 1, i);
    pub.next();
  }
  pub.publish("k", std::string(3'000, 'x'), 1, 4);  // the queue is full by count, and this is oversized
  pub.next();
  MemoryClient back(broker, ProtocolVersion::v5);
  back.connect("keeps-three", false, 600);
  back.next();
  for (char c : {'1', '2', '3'}) CHECK(codec::as_string(back.decode_publish_packet(back.next()).payload)[0] == c);
  CHECK(back.nothing_more());
}

// A repeated PUBREC for a QoS 2 message already released (its PUBREL sent) gets PUBREL 0x00
// again while the packet id is in flight, not 0x92; an acknowledgement of the wrong type for a
// packet id in flight closes a 3.1.1 connection (protocol violation) and is ignored in v5.
TEST_CASE("QoS 2 acknowledgements: PUBREC again gets PUBREL 0x00; the wrong type is a 3.1.1 violation", "[engine]") {
  Broker broker(one_worker());
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  for (auto version : {ProtocolVersion::v5, ProtocolVersion::v311}) {
    bool v5 = version == ProtocolVersion::v5;
    MemoryClient sub(broker, version);
    sub.connect(v5 ? "acks-v5" : "acks-v311");
    sub.next();
    sub.subscribe(v5 ? "acks/5" : "acks/4", 2);
    sub.next();
    pub.publish(v5 ? "acks/5" : "acks/4", "m", 2, v5 ? 1 : 2);
    pub.next();
    pub.ack(PacketType::Pubrel, v5 ? 1 : 2);
    pub.next();
    auto m = sub.decode_publish_packet(sub.next());
    sub.ack(PacketType::Pubrec, m.packet_id);
    auto rel = sub.decode_ack_packet(sub.next());
    CHECK(rel.type == PacketType::Pubrel);
    sub.ack(PacketType::Pubrec, m.packet_id);  // again
    auto again = sub.decode_ack_packet(sub.next());
    CHECK(again.type == PacketType::Pubrel);
    CHECK(again.reason == Reason::Success);
    CHECK(again.packet_id == m.packet_id);
    // PUBACK for a QoS 2 packet id awaiting PUBCOMP: the wrong type.
    sub.ack(PacketType::Puback, m.packet_id);
    CHECK(sub.closed() == !v5);
    if (v5) {
      sub.ack(PacketType::Pubcomp, m.packet_id);
      CHECK(sub.nothing_more());
      CHECK_FALSE(sub.closed());
    }
  }
}

// [MQTT-3.1.2-6], [MQTT-3.2.2-3]: a session that ends with its connection (3.1.1 clean session,
// v5 Session Expiry 0) is never reported present and lends nothing to the next connection with
// the same client id, even when that one takes the client id over while the old is connected.
TEST_CASE("a takeover of a session that ends with its connection starts fresh", "[engine]") {
  for (auto version : {ProtocolVersion::v311, ProtocolVersion::v5}) {
    Broker broker(one_worker());
    MemoryClient old(broker, version);
    old.connect("ends-with-connection", true);  // 3.1.1 clean session; v5 no expiry (0)
    old.next();
    old.subscribe("old/t", 1);
    old.next();
    MemoryClient next(broker, version);
    next.connect("ends-with-connection", false, 600);  // asks to resume
    auto ack = next.decode_connack_packet(next.next());
    CHECK_FALSE(ack.session_present);
    MemoryClient pub(broker, ProtocolVersion::v5);
    pub.connect("p");
    pub.next();
    pub.publish("old/t", "not for the new connection", 1, 1);
    pub.next();
    CHECK(next.nothing_more());
  }
}

// [MQTT-3.1.2-24], [MQTT-3.14.2-3]: nothing larger than the client's Maximum Packet Size; a
// DISCONNECT goes without its Reason String when that makes it fit.
TEST_CASE("packets respect the client's Maximum Packet Size; the Reason String goes first", "[engine]") {
  Broker broker(one_worker());
  MemoryClient c(broker, ProtocolVersion::v5);
  Connect connect;
  connect.version = ProtocolVersion::v5;
  connect.client_id = "small";
  connect.keep_alive = 60;
  connect.properties.maximum_packet_size =
      18;  // the CONNACK (16 bytes) fits; DISCONNECT 0x82 with its reason (21) does not
  Buffer b;
  encode_connect(connect, b);
  c.send_bytes(b);
  auto connack = c.next();
  REQUIRE(connack.type() == PacketType::Connack);
  CHECK(connack.header.header_size + connack.header.remaining_length <= 18);
  c.send_bytes(b);  // a second CONNECT: DISCONNECT 0x82, whose reason string would not fit
  auto d = c.next();
  REQUIRE(d.type() == PacketType::Disconnect);
  CHECK(d.header.header_size + d.header.remaining_length <= 18);
  CHECK(c.decode_disconnect_packet(d).reason == Reason::ProtocolError);
  CHECK_FALSE(c.decode_disconnect_packet(d).properties.reason_string.has_value());
  CHECK(c.closed());
}

namespace {
std::vector<int> bytes_of(const Received& r) {
  std::vector<int> out{static_cast<int>(r.header.type) << 4 | r.header.flags, static_cast<int>(r.body.size())};
  for (auto b : r.body) out.push_back(std::to_integer<int>(b));
  return out;
}
}  // namespace

// Acknowledgements in their shortest form, as mainstream brokers send them: reason 0x00 and no
// properties is remaining length 2 (v5 as 3.1.1), byte for byte; with Request Problem
// Information 0 no acknowledgement carries a Reason String or User Property [MQTT-3.1.2-29].
TEST_CASE("acknowledgements byte for byte: the shortest form for success", "[engine]") {
  for (auto version : {ProtocolVersion::v311, ProtocolVersion::v5}) {
    Broker broker(one_worker());
    MemoryClient c(broker, version);
    if (version == ProtocolVersion::v5) {
      Connect connect;
      connect.version = version;
      connect.client_id = "short-acks";
      connect.keep_alive = 60;
      connect.properties.request_problem_information = 0;
      Buffer b;
      encode_connect(connect, b);
      c.send_bytes(b);
    } else {
      c.connect("short-acks");
    }
    c.next();
    c.subscribe("a/#", 2, 7);
    std::vector<std::uint16_t> delivered;
    auto suback = bytes_of(c.next());
    CHECK(suback == (version == ProtocolVersion::v5 ? std::vector<int>{0x90, 4, 0, 7, 0, 2}
                                                    : std::vector<int>{0x90, 3, 0, 7, 2}));
    // Its own messages come back to it (a/#) beside the acknowledgements: pick by type.
    auto take = [&](PacketType type) {
      for (int i = 0; i < 4; ++i) {
        auto r = c.next();
        if (r.type() == type) return r;
        if (r.type() == PacketType::Publish) delivered.push_back(c.decode_publish_packet(r).packet_id);
      }
      FAIL("no packet of the expected type");
      return Received{};
    };
    c.publish("a/1", "x", 1, 0x0102);
    CHECK(bytes_of(take(PacketType::Puback)) == std::vector<int>{0x40, 2, 1, 2});
    c.publish("a/2", "y", 2, 0x0304);
    CHECK(bytes_of(take(PacketType::Pubrec)) == std::vector<int>{0x50, 2, 3, 4});
    c.ack(PacketType::Pubrel, 0x0304);
    CHECK(bytes_of(take(PacketType::Pubcomp)) == std::vector<int>{0x70, 2, 3, 4});
    while (!c.nothing_more()) {
      auto r = c.next();
      if (r.type() == PacketType::Publish) delivered.push_back(c.decode_publish_packet(r).packet_id);
    }
    REQUIRE(delivered.size() == 2);
    c.ack(PacketType::Puback, delivered[0]);
    c.ack(PacketType::Pubrec, delivered[1]);
    CHECK(bytes_of(take(PacketType::Pubrel)) == std::vector<int>{0x62, 2, 0, static_cast<int>(delivered[1])});
    c.ack(PacketType::Pubcomp, delivered[1]);
    // Unknown packet id: v5 PUBCOMP 0x92 (no reason string with Request Problem Information 0).
    c.ack(PacketType::Pubrel, 0x0999);
    auto comp = bytes_of(c.next());
    CHECK(comp == (version == ProtocolVersion::v5 ? std::vector<int>{0x70, 3, 9, 0x99, 0x92}
                                                  : std::vector<int>{0x70, 2, 9, 0x99}));
    {
      Unsubscribe u;
      u.packet_id = 8;
      std::string_view filter = "a/#";
      u.filters = {&filter, 1};
      Buffer b;
      encode_unsubscribe(u, version, b);
      c.send_bytes(b);
    }
    auto unsuback = bytes_of(c.next());
    CHECK(unsuback ==
          (version == ProtocolVersion::v5 ? std::vector<int>{0xB0, 4, 0, 8, 0, 0} : std::vector<int>{0xB0, 2, 0, 8}));
  }
}

// Keep alive on the worker's timer wheel, driven by a clock the test passes in: a connection is
// disconnected (0x8D) after one and a half keep-alive periods of silence, not before; and an
// idle connection is looked at about once per keep-alive period, not at every 250 ms tick.
TEST_CASE("keep alive: the timer wheel disconnects after 1.5 periods and checks idle connections rarely", "[engine]") {
  Broker broker(one_worker());
  Worker& worker = broker.worker(0);
  auto start = Clock::now();
  worker.tick_at(start);
  MemoryClient quiet(broker, ProtocolVersion::v5);
  Connect connect;
  connect.version = ProtocolVersion::v5;
  connect.client_id = "quiet";
  connect.keep_alive = 2;
  Buffer b;
  encode_connect(connect, b);
  quiet.send_bytes(b);
  quiet.next();
  std::vector<std::unique_ptr<MemoryClient>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<MemoryClient>(broker, ProtocolVersion::v5));
    idle.back()->connect("idle-" + std::to_string(i));  // keep alive 60
    idle.back()->next();
  }
  auto checks_before = worker.connection_checks();
  for (auto t = start; t <= start + std::chrono::milliseconds(2900); t += Worker::kTickInterval) worker.tick_at(t);
  quiet.pump();
  CHECK_FALSE(quiet.closed());  // 2.9 s < 3 s
  for (auto t = start + std::chrono::seconds(3); t <= start + std::chrono::seconds(60); t += Worker::kTickInterval)
    worker.tick_at(t);
  quiet.pump();
  auto d = quiet.decode_disconnect_packet(quiet.next());
  CHECK(d.reason == Reason::KeepAliveTimeout);
  CHECK(quiet.closed());
  for (auto& c : idle) CHECK_FALSE(c->closed());
  // A scan would have looked at 1,001 connections 240 times in that minute (240,240 checks).
  CHECK(worker.connection_checks() - checks_before < 3'000);
  // 91 s of silence (1.5 x 60 s, plus a tick): the idle ones go too.
  for (auto t = start + std::chrono::seconds(60); t <= start + std::chrono::seconds(92); t += Worker::kTickInterval)
    worker.tick_at(t);
  idle.front()->pump();
  CHECK(idle.front()->closed());
}

// Outbound topic aliases (MQTT 5 section 3.3.2.3.4): a client that allows them receives a topic
// once with an alias, then the alias with an empty topic; the least recently used alias is
// reassigned when every one is taken. A client that does not allow them never gets one.
TEST_CASE("outbound topic aliases: the topic once, then the alias; least recently used reassigned", "[engine]") {
  Broker broker(one_worker());
  MemoryClient sub(broker, ProtocolVersion::v5);
  Connect connect;
  connect.version = ProtocolVersion::v5;
  connect.client_id = "aliases";
  connect.keep_alive = 60;
  connect.properties.topic_alias_maximum = 2;
  Buffer b;
  encode_connect(connect, b);
  sub.send_bytes(b);
  sub.next();
  sub.subscribe("al/#", 0);
  sub.next();
  MemoryClient plain(broker, ProtocolVersion::v5);
  plain.connect("no-aliases");
  plain.next();
  plain.subscribe("al/#", 0);
  plain.next();
  MemoryClient pub(broker, ProtocolVersion::v5);
  pub.connect("p");
  pub.next();
  struct Seen {
    std::string topic;
    std::optional<std::uint16_t> alias;
  };
  auto receive = [&](MemoryClient& c) {
    auto m = c.decode_publish_packet(c.next());
    return Seen{std::string(m.topic), m.properties.topic_alias};
  };
  const char* topics[] = {"al/a", "al/b", "al/a", "al/c", "al/b", "al/a"};
  std::vector<Seen> got;
  for (const char* t : topics) {
    pub.publish(t, "m");
    got.push_back(receive(sub));
    auto p = receive(plain);
    CHECK(p.topic == t);
    CHECK_FALSE(p.alias.has_value());
  }
  // al/a: new alias 1; al/b: new alias 2; al/a: alias 1 alone; al/c: takes alias 2 (al/b least
  // recently used); al/b: takes alias 1 (al/a is now the least recently used); al/a: alias 2.
  CHECK((got[0].topic == "al/a" && got[0].alias == 1));
  CHECK((got[1].topic == "al/b" && got[1].alias == 2));
  CHECK((got[2].topic.empty() && got[2].alias == 1));
  CHECK((got[3].topic == "al/c" && got[3].alias == 2));
  CHECK((got[4].topic == "al/b" && got[4].alias == 1));
  CHECK((got[5].topic == "al/a" && got[5].alias == 2));
}

// [MQTT-3.1.3-9], [MQTT-3.1.2-5]: a will waiting for its delay is published when the session
// ends, and a Clean Start by the same client ends it; a resumed session withholds it.
TEST_CASE("a delayed will goes out when a Clean Start ends the session, and not on a resume", "[engine]") {
  for (bool clean : {true, false}) {
    Broker broker(one_worker());
    MemoryClient watcher(broker, ProtocolVersion::v5);
    watcher.connect("watcher");
    watcher.next();
    watcher.subscribe("wills/#", 0);
    watcher.next();
    {
      MemoryClient dying(broker, ProtocolVersion::v5);
      Connect c;
      c.version = ProtocolVersion::v5;
      c.client_id = "dying";
      c.keep_alive = 60;
      c.properties.session_expiry_interval = 600;
      c.will = true;
      c.will_topic = "wills/dying";
      c.will_payload = as_bytes(std::string_view("gone"));
      c.will_properties.will_delay_interval = 60;
      Buffer b;
      encode_connect(c, b);
      dying.send_bytes(b);
      dying.next();
    }  // the connection drops: the will waits for its delay
    watcher.pump();
    CHECK(watcher.nothing_more());
    MemoryClient back(broker, ProtocolVersion::v5);
    back.connect("dying", clean, 600);
    back.next();
    watcher.pump();
    if (clean) {
      CHECK(watcher.decode_publish_packet(watcher.next()).topic == "wills/dying");
    } else {
      CHECK(watcher.nothing_more());
    }
  }
}
