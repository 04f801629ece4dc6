// The protocol engine driven by byte vectors: real Broker, Worker and ClientConnection, with a
// transport that keeps the bytes in memory instead of a socket (tests/support/memory_transport.hpp).
// The worker's event loop is polled by hand.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <deque>
#include <memory>
#include <string>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/codec/decode.hpp"
#include "broker/codec/encode.hpp"
#include "broker/codec/wire.hpp"
#include "broker/transport.hpp"
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
  MemoryClient(Broker& broker, ProtocolVersion v) : MemoryTransport(broker), version_(v) { REQUIRE(admitted()); }

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
