// Codec round trips for every packet and property, and the reaction to malformed input. The
// string and topic checks are in test_utf8.cpp.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "codec/wire.hpp"

using namespace mqttd::codec;

namespace {

Bytes bytes_of(const std::string& s) { return as_bytes(s); }

std::vector<std::byte> hex(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(std::byte(v));
  return out;
}

// Splits an encoded packet into its fixed header and body.
std::pair<FixedHeader, Bytes> frame(const Buffer& b) {
  FixedHeader h;
  REQUIRE(parse_fixed_header(b, h) == FrameStatus::Complete);
  REQUIRE(h.header_size + h.remaining_length == b.size());
  return {h, Bytes(b).subspan(h.header_size)};
}

// A property block using every property once (User Property twice), to round-trip through the
// packets that allow them. Individual packets only carry the subset they allow.
const std::string kCorr = "corr-data";
const std::string kAuthData = "auth-data";
const UserProperty kUserProps[] = {{"k1", "v1"}, {"k2", "v\xC3\xA9"}};
const std::uint32_t kSubIds[] = {7, 300000};

void require_same(const Properties& a, const Properties& b) {
  CHECK(a.payload_format_indicator == b.payload_format_indicator);
  CHECK(a.message_expiry_interval == b.message_expiry_interval);
  CHECK(a.content_type == b.content_type);
  CHECK(a.response_topic == b.response_topic);
  CHECK(a.correlation_data.has_value() == b.correlation_data.has_value());
  if (a.correlation_data && b.correlation_data) CHECK(as_string(*a.correlation_data) == as_string(*b.correlation_data));
  CHECK(std::vector<std::uint32_t>(a.subscription_identifiers.begin(), a.subscription_identifiers.end()) ==
        std::vector<std::uint32_t>(b.subscription_identifiers.begin(), b.subscription_identifiers.end()));
  CHECK(a.session_expiry_interval == b.session_expiry_interval);
  CHECK(a.assigned_client_identifier == b.assigned_client_identifier);
  CHECK(a.server_keep_alive == b.server_keep_alive);
  CHECK(a.authentication_method == b.authentication_method);
  CHECK(a.authentication_data.has_value() == b.authentication_data.has_value());
  CHECK(a.request_problem_information == b.request_problem_information);
  CHECK(a.will_delay_interval == b.will_delay_interval);
  CHECK(a.request_response_information == b.request_response_information);
  CHECK(a.response_information == b.response_information);
  CHECK(a.server_reference == b.server_reference);
  CHECK(a.reason_string == b.reason_string);
  CHECK(a.receive_maximum == b.receive_maximum);
  CHECK(a.topic_alias_maximum == b.topic_alias_maximum);
  CHECK(a.topic_alias == b.topic_alias);
  CHECK(a.maximum_qos == b.maximum_qos);
  CHECK(a.retain_available == b.retain_available);
  CHECK(std::vector<UserProperty>(a.user_properties.begin(), a.user_properties.end()) ==
        std::vector<UserProperty>(b.user_properties.begin(), b.user_properties.end()));
  CHECK(a.maximum_packet_size == b.maximum_packet_size);
  CHECK(a.wildcard_subscription_available == b.wildcard_subscription_available);
  CHECK(a.subscription_identifier_available == b.subscription_identifier_available);
  CHECK(a.shared_subscription_available == b.shared_subscription_available);
}

}  // namespace

TEST_CASE("variable byte integer boundaries", "[codec]") {
  for (std::uint32_t v : {0u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u, kMaxVarint}) {
    std::vector<std::byte> buf(4);
    Writer w(buf.data());
    w.varint(v);
    std::size_t n = static_cast<std::size_t>(w.position() - buf.data());
    CHECK(n == varint_size(v));
    Reader r(Bytes(buf.data(), n));
    CHECK(r.varint() == v);
    CHECK_FALSE(r.failed());
  }
  auto five = hex({0xFF, 0xFF, 0xFF, 0xFF, 0x7F});
  Reader r(five);
  r.varint();
  CHECK(r.failed());
}

TEST_CASE("fixed header framing", "[codec]") {
  FixedHeader h;
  CHECK(parse_fixed_header({}, h) == FrameStatus::NeedMore);
  auto partial = hex({0x30, 0x80});
  CHECK(parse_fixed_header(partial, h) == FrameStatus::NeedMore);
  auto huge = hex({0x30, 0x80, 0x80, 0x80, 0x80, 0x01});
  CHECK(parse_fixed_header(huge, h) == FrameStatus::Malformed);
  auto reserved = hex({0x00, 0x00});
  CHECK(parse_fixed_header(reserved, h) == FrameStatus::Malformed);
  auto big = hex({0x30, 0x80, 0x80, 0x80, 0x01});  // 300 MB would be 0x80 0x80 0xC0 0x8F ...
  REQUIRE(parse_fixed_header(big, h) == FrameStatus::Complete);
  CHECK(h.remaining_length == 2097152);
  CHECK(h.header_size == 5);
}

TEST_CASE("CONNECT round trip, v5 with will and every CONNECT property", "[codec]") {
  Connect c;
  c.version = ProtocolVersion::v5;
  c.clean_start = false;
  c.keep_alive = 30;
  c.client_id = "client-1";
  c.properties.session_expiry_interval = 3600;
  c.properties.receive_maximum = 10;
  c.properties.maximum_packet_size = 1000;
  c.properties.topic_alias_maximum = 5;
  c.properties.request_response_information = 1;
  c.properties.request_problem_information = 0;
  c.properties.user_properties = kUserProps;
  c.properties.authentication_method = "K8S-SAT";
  c.properties.authentication_data = bytes_of(kAuthData);
  c.will = true;
  c.will_qos = 2;
  c.will_retain = true;
  c.will_topic = "will/topic";
  std::string will_payload = "bye";
  c.will_payload = bytes_of(will_payload);
  c.will_properties.will_delay_interval = 5;
  c.will_properties.payload_format_indicator = 1;
  c.will_properties.message_expiry_interval = 60;
  c.will_properties.content_type = "text/plain";
  c.will_properties.response_topic = "reply/here";
  c.will_properties.correlation_data = bytes_of(kCorr);
  c.will_properties.user_properties = kUserProps;
  c.username = "user";
  std::string password = "secret";
  c.password = bytes_of(password);
  Buffer b;
  encode_connect(c, b);
  auto [h, body] = frame(b);
  Connect d;
  DecodeScratch s;
  REQUIRE(decode_connect(h, body, d, s).ok());
  CHECK(d.version == ProtocolVersion::v5);
  CHECK(d.clean_start == false);
  CHECK(d.keep_alive == 30);
  CHECK(d.client_id == "client-1");
  require_same(c.properties, d.properties);
  CHECK(d.will);
  CHECK(d.will_qos == 2);
  CHECK(d.will_retain);
  CHECK(d.will_topic == "will/topic");
  CHECK(as_string(d.will_payload) == "bye");
  require_same(c.will_properties, d.will_properties);
  CHECK(d.username == std::optional<std::string_view>("user"));
  CHECK(as_string(*d.password) == "secret");
}

TEST_CASE("CONNECT round trip, 3.1.1", "[codec]") {
  Connect c;
  c.version = ProtocolVersion::v311;
  c.client_id = "abc";
  c.keep_alive = 60;
  Buffer b;
  encode_connect(c, b);
  // The exact bytes of a minimal 3.1.1 CONNECT.
  auto expected = hex({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a', 'b', 'c'});
  CHECK(b == expected);
  auto [h, body] = frame(b);
  Connect d;
  DecodeScratch s;
  REQUIRE(decode_connect(h, body, d, s).ok());
  CHECK(d.version == ProtocolVersion::v311);
  CHECK(d.client_id == "abc");
}

TEST_CASE("CONNACK round trip with every CONNACK property", "[codec]") {
  Connack c;
  c.session_present = true;
  c.reason = Reason::Success;
  auto& p = c.properties;
  p.session_expiry_interval = 100;
  p.receive_maximum = 20;
  p.maximum_qos = 1;
  p.retain_available = 1;
  p.maximum_packet_size = 4096;
  p.assigned_client_identifier = "assigned";
  p.topic_alias_maximum = 8;
  p.reason_string = "fine";
  p.user_properties = kUserProps;
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 0;
  p.shared_subscription_available = 1;
  p.server_keep_alive = 25;
  p.response_information = "resp";
  p.server_reference = "other";
  p.authentication_method = "m";
  p.authentication_data = bytes_of(kAuthData);
  Buffer b;
  encode_connack(c, ProtocolVersion::v5, b);
  auto [h, body] = frame(b);
  Connack d;
  DecodeScratch s;
  REQUIRE(decode_connack(h, body, ProtocolVersion::v5, d, s).ok());
  CHECK(d.session_present);
  require_same(c.properties, d.properties);

  Buffer b3;
  Connack c3;
  c3.reason = static_cast<Reason>(ConnectReturnCode311::NotAuthorized);
  encode_connack(c3, ProtocolVersion::v311, b3);
  CHECK(b3 == hex({0x20, 0x02, 0x00, 0x05}));
}

TEST_CASE("PUBLISH round trip with every PUBLISH property", "[codec]") {
  for (auto v : {ProtocolVersion::v311, ProtocolVersion::v5}) {
    for (std::uint8_t qos = 0; qos <= 2; ++qos) {
      Publish p;
      p.qos = qos;
      p.dup = qos > 0;
      p.retain = true;
      p.topic = "a/b/c";
      p.packet_id = qos ? 42 : 0;
      std::string payload(1000, 'x');
      p.payload = bytes_of(payload);
      if (v == ProtocolVersion::v5) {
        p.properties.payload_format_indicator = 1;
        p.properties.message_expiry_interval = 10;
        p.properties.topic_alias = 3;
        p.properties.response_topic = "r/t";
        p.properties.correlation_data = bytes_of(kCorr);
        p.properties.user_properties = kUserProps;
        p.properties.subscription_identifiers = kSubIds;
        p.properties.content_type = "application/json";
      }
      Buffer b;
      encode_publish(p, v, b);
      auto [h, body] = frame(b);
      Publish d;
      DecodeScratch s;
      REQUIRE(decode_publish(h, body, v, d, s).ok());
      CHECK(d.qos == qos);
      CHECK(d.dup == (qos > 0));
      CHECK(d.retain);
      CHECK(d.topic == "a/b/c");
      CHECK(d.packet_id == p.packet_id);
      CHECK(as_string(d.payload) == payload);
      require_same(p.properties, d.properties);
    }
  }
}

TEST_CASE("acknowledgements round trip", "[codec]") {
  for (auto type : {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
    Ack a;
    a.type = type;
    a.packet_id = 513;
    a.reason = Reason::Success;
    Buffer b;
    encode_ack(a, ProtocolVersion::v5, b);
    CHECK(b.size() == 4);  // reason 0 and no properties are omitted
    a.reason = Reason::NoMatchingSubscribers;
    a.properties.reason_string = "nobody";
    a.properties.user_properties = kUserProps;
    b.clear();
    encode_ack(a, ProtocolVersion::v5, b);
    auto [h, body] = frame(b);
    Ack d;
    DecodeScratch s;
    REQUIRE(decode_ack(h, body, ProtocolVersion::v5, d, s).ok());
    CHECK(d.type == type);
    CHECK(d.packet_id == 513);
    CHECK(d.reason == Reason::NoMatchingSubscribers);
    require_same(a.properties, d.properties);
    b.clear();
    encode_ack(a, ProtocolVersion::v311, b);
    CHECK(b.size() == 4);
  }
}

TEST_CASE("SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK round trip", "[codec]") {
  const SubscribeTopic topics[] = {{"a/+", 1, true, true, 2}, {"$share/g/b/#", 2, false, false, 0}};
  Subscribe sub;
  sub.packet_id = 9;
  const std::uint32_t id[] = {12345};
  sub.properties.subscription_identifiers = id;
  sub.properties.user_properties = kUserProps;
  sub.topics = topics;
  Buffer b;
  encode_subscribe(sub, ProtocolVersion::v5, b);
  auto [h, body] = frame(b);
  Subscribe d;
  DecodeScratch s;
  REQUIRE(decode_subscribe(h, body, ProtocolVersion::v5, d, s).ok());
  CHECK(d.packet_id == 9);
  REQUIRE(d.topics.size() == 2);
  CHECK(d.topics[0] == topics[0]);
  CHECK(d.topics[1] == topics[1]);
  require_same(sub.properties, d.properties);

  const Reason codes[] = {Reason::GrantedQos1, Reason::NotAuthorized};
  Suback ack;
  ack.packet_id = 9;
  ack.reasons = codes;
  ack.properties.reason_string = "partly";
  Buffer b2;
  encode_suback(ack, ProtocolVersion::v5, b2);
  auto [h2, body2] = frame(b2);
  Suback d2;
  REQUIRE(decode_suback(h2, body2, ProtocolVersion::v5, d2, s).ok());
  CHECK(std::vector<Reason>(d2.reasons.begin(), d2.reasons.end()) == std::vector<Reason>{codes[0], codes[1]});

  const std::string_view filters[] = {"a/+", "b"};
  Unsubscribe un;
  un.packet_id = 10;
  un.filters = filters;
  un.properties.user_properties = kUserProps;
  Buffer b3;
  encode_unsubscribe(un, ProtocolVersion::v5, b3);
  auto [h3, body3] = frame(b3);
  Unsubscribe d3;
  REQUIRE(decode_unsubscribe(h3, body3, ProtocolVersion::v5, d3, s).ok());
  CHECK(std::vector<std::string_view>(d3.filters.begin(), d3.filters.end()) ==
        std::vector<std::string_view>{"a/+", "b"});

  const Reason ucodes[] = {Reason::Success, Reason::NoSubscriptionExisted};
  Unsuback uack;
  uack.packet_id = 10;
  uack.reasons = ucodes;
  Buffer b4;
  encode_unsuback(uack, ProtocolVersion::v5, b4);
  auto [h4, body4] = frame(b4);
  Unsuback d4;
  REQUIRE(decode_unsuback(h4, body4, ProtocolVersion::v5, d4, s).ok());
  CHECK(d4.reasons.size() == 2);
  Buffer b5;
  encode_unsuback(uack, ProtocolVersion::v311, b5);
  CHECK(b5 == hex({0xB0, 0x02, 0x00, 0x0A}));
}

TEST_CASE("DISCONNECT, AUTH, PINGREQ, PINGRESP round trip", "[codec]") {
  Disconnect dc;
  dc.reason = Reason::SessionTakenOver;
  dc.properties.session_expiry_interval = 0;
  dc.properties.reason_string = "moved";
  dc.properties.server_reference = "elsewhere";
  dc.properties.user_properties = kUserProps;
  Buffer b;
  encode_disconnect(dc, ProtocolVersion::v5, b);
  auto [h, body] = frame(b);
  Disconnect d;
  DecodeScratch s;
  REQUIRE(decode_disconnect(h, body, ProtocolVersion::v5, d, s).ok());
  CHECK(d.reason == Reason::SessionTakenOver);
  require_same(dc.properties, d.properties);
  Buffer b311;
  encode_disconnect(dc, ProtocolVersion::v311, b311);
  CHECK(b311 == hex({0xE0, 0x00}));

  Auth a;
  a.reason = Reason::ContinueAuthentication;
  a.properties.authentication_method = "SCRAM";
  a.properties.authentication_data = bytes_of(kAuthData);
  a.properties.reason_string = "more";
  Buffer b2;
  encode_auth(a, b2);
  auto [h2, body2] = frame(b2);
  Auth d2;
  REQUIRE(decode_auth(h2, body2, ProtocolVersion::v5, d2, s).ok());
  CHECK(d2.reason == Reason::ContinueAuthentication);
  require_same(a.properties, d2.properties);

  Buffer p;
  encode_pingreq(p);
  CHECK(p == hex({0xC0, 0x00}));
  p.clear();
  encode_pingresp(p);
  CHECK(p == hex({0xD0, 0x00}));
}

// Each malformed input with the reason code the broker answers with.
TEST_CASE("malformed input table", "[codec]") {
  struct Case {
    const char* what;
    std::vector<std::byte> packet;
    ProtocolVersion version;
    Reason expected;
  };
  std::vector<Case> cases = {
      {"CONNECT reserved flag", hex({0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x03, 0, 0, 0, 0, 0}),
       ProtocolVersion::v5, Reason::MalformedPacket},
      {"CONNECT will QoS 3", hex({0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 0, 0, 0, 0}), ProtocolVersion::v311,
       Reason::MalformedPacket},
      {"CONNECT protocol name", hex({0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'X', 4, 0x02, 0, 0, 0, 0}), ProtocolVersion::v311,
       Reason::MalformedPacket},
      {"CONNECT level 6", hex({0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 0, 0, 0}), ProtocolVersion::v311,
       Reason::UnsupportedProtocolVersion},
      {"CONNECT MQTT 3.1", hex({0x10, 0x0E, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 0}),
       ProtocolVersion::v311, Reason::UnsupportedProtocolVersion},
      {"CONNECT client id with U+0000", hex({0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, 1, 0}),
       ProtocolVersion::v311, Reason::MalformedPacket},
      {"CONNECT duplicate property",
       hex({0x10, 0x17, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0}),
       ProtocolVersion::v5, Reason::ProtocolError},
      {"CONNECT receive maximum 0", hex({0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 3, 0x21, 0, 0, 0, 0}),
       ProtocolVersion::v5, Reason::ProtocolError},
      {"CONNECT property not allowed", hex({0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 0, 2, 0x23, 0, 0, 0}),
       ProtocolVersion::v5, Reason::MalformedPacket},
      {"CONNECT truncated", hex({0x10, 0x06, 0, 4, 'M', 'Q', 'T', 'T'}), ProtocolVersion::v311,
       Reason::MalformedPacket},
      {"PUBLISH QoS 3", hex({0x36, 0x05, 0, 1, 'a', 0, 1}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"PUBLISH DUP on QoS 0", hex({0x38, 0x03, 0, 1, 'a'}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"PUBLISH packet id 0", hex({0x32, 0x05, 0, 1, 'a', 0, 0}), ProtocolVersion::v311, Reason::ProtocolError},
      {"PUBLISH bad UTF-8 topic", hex({0x30, 0x04, 0, 2, 0xC0, 0x80}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"PUBLISH surrogate in topic", hex({0x30, 0x05, 0, 3, 0xED, 0xA0, 0x80}), ProtocolVersion::v311,
       Reason::MalformedPacket},
      {"PUBLISH property length overrun", hex({0x30, 0x04, 0, 1, 'a', 9}), ProtocolVersion::v5,
       Reason::MalformedPacket},
      {"PUBLISH subscription id 0", hex({0x30, 0x06, 0, 1, 'a', 2, 0x0B, 0}), ProtocolVersion::v5,
       Reason::ProtocolError},
      {"SUBSCRIBE wrong flags", hex({0x80, 0x06, 0, 1, 0, 1, 'a', 0}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"SUBSCRIBE no filters", hex({0x82, 0x02, 0, 1}), ProtocolVersion::v311, Reason::ProtocolError},
      {"SUBSCRIBE reserved option bits", hex({0x82, 0x06, 0, 1, 0, 1, 'a', 0x04}), ProtocolVersion::v311,
       Reason::MalformedPacket},
      {"SUBSCRIBE QoS 3", hex({0x82, 0x06, 0, 1, 0, 1, 'a', 3}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"SUBSCRIBE retain handling 3", hex({0x82, 0x07, 0, 1, 0, 0, 1, 'a', 0x30}), ProtocolVersion::v5,
       Reason::ProtocolError},
      {"UNSUBSCRIBE no filters", hex({0xA2, 0x02, 0, 1}), ProtocolVersion::v311, Reason::ProtocolError},
      {"PUBREL wrong flags", hex({0x60, 0x02, 0, 1}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"PINGREQ with body", hex({0xC0, 0x01, 0}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"DISCONNECT 3.1.1 with body", hex({0xE0, 0x01, 0}), ProtocolVersion::v311, Reason::MalformedPacket},
      {"AUTH in 3.1.1", hex({0xF0, 0x00}), ProtocolVersion::v311, Reason::MalformedPacket},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    FixedHeader h;
    REQUIRE(parse_fixed_header(c.packet, h) == FrameStatus::Complete);
    Bytes body = Bytes(c.packet).subspan(h.header_size, h.remaining_length);
    DecodeScratch s;
    DecodeStatus st;
    switch (h.type) {
      case PacketType::Connect: {
        Connect p;
        st = decode_connect(h, body, p, s);
        break;
      }
      case PacketType::Publish: {
        Publish p;
        st = decode_publish(h, body, c.version, p, s);
        break;
      }
      case PacketType::Subscribe: {
        Subscribe p;
        st = decode_subscribe(h, body, c.version, p, s);
        break;
      }
      case PacketType::Unsubscribe: {
        Unsubscribe p;
        st = decode_unsubscribe(h, body, c.version, p, s);
        break;
      }
      case PacketType::Pubrel: {
        Ack p;
        st = decode_ack(h, body, c.version, p, s);
        break;
      }
      case PacketType::Pingreq:
        st = decode_empty(h, body);
        break;
      case PacketType::Disconnect: {
        Disconnect p;
        st = decode_disconnect(h, body, c.version, p, s);
        break;
      }
      case PacketType::Auth: {
        Auth p;
        st = decode_auth(h, body, c.version, p, s);
        break;
      }
      default:
        FAIL("unexpected packet type in table");
    }
    CHECK(st.reason == c.expected);
  }
}
