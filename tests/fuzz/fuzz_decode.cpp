// fuzz_decode: the MQTT 3.1.1 / 5.0 decoder on arbitrary bytes.
//
// Input: byte 0 chooses the protocol version (low bit: 1 = 5.0, 0 = 3.1.1); the rest is one
// packet, fixed header first. Every decode_* function runs on the body, whatever the packet
// type says, since the engine trusts only the framing. When the decoder of the packet's own
// type accepts it, the packet is encoded again and decoded again: the second decode must
// succeed and give the same packet. A mismatch aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/decode.hpp"
#include "codec/encode.hpp"

using namespace mqttd::codec;

namespace {

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "fuzz_decode: round trip changed %s\n", what);
  std::abort();
}

#define CHECK_SAME(a, b)             \
  do {                               \
    if (!((a) == (b))) mismatch(#a); \
  } while (0)

bool same_bytes(Bytes a, Bytes b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

bool same_bytes(const std::optional<Bytes>& a, const std::optional<Bytes>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || same_bytes(*a, *b);
}

template <typename T>
bool same_span(std::span<const T> a, std::span<const T> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

void check_same(const Properties& a, const Properties& b) {
  CHECK_SAME(a.payload_format_indicator, b.payload_format_indicator);
  CHECK_SAME(a.message_expiry_interval, b.message_expiry_interval);
  CHECK_SAME(a.content_type, b.content_type);
  CHECK_SAME(a.response_topic, b.response_topic);
  if (!same_bytes(a.correlation_data, b.correlation_data)) mismatch("correlation_data");
  if (!same_span(a.subscription_identifiers, b.subscription_identifiers)) mismatch("subscription_identifiers");
  CHECK_SAME(a.session_expiry_interval, b.session_expiry_interval);
  CHECK_SAME(a.assigned_client_identifier, b.assigned_client_identifier);
  CHECK_SAME(a.server_keep_alive, b.server_keep_alive);
  CHECK_SAME(a.authentication_method, b.authentication_method);
  if (!same_bytes(a.authentication_data, b.authentication_data)) mismatch("authentication_data");
  CHECK_SAME(a.request_problem_information, b.request_problem_information);
  CHECK_SAME(a.will_delay_interval, b.will_delay_interval);
  CHECK_SAME(a.request_response_information, b.request_response_information);
  CHECK_SAME(a.response_information, b.response_information);
  CHECK_SAME(a.server_reference, b.server_reference);
  CHECK_SAME(a.reason_string, b.reason_string);
  CHECK_SAME(a.receive_maximum, b.receive_maximum);
  CHECK_SAME(a.topic_alias_maximum, b.topic_alias_maximum);
  CHECK_SAME(a.topic_alias, b.topic_alias);
  CHECK_SAME(a.maximum_qos, b.maximum_qos);
  CHECK_SAME(a.retain_available, b.retain_available);
  if (!same_span(a.user_properties, b.user_properties)) mismatch("user_properties");
  CHECK_SAME(a.maximum_packet_size, b.maximum_packet_size);
  CHECK_SAME(a.wildcard_subscription_available, b.wildcard_subscription_available);
  CHECK_SAME(a.subscription_identifier_available, b.subscription_identifier_available);
  CHECK_SAME(a.shared_subscription_available, b.shared_subscription_available);
}

// Splits an encoded packet; the encoder's output must always frame exactly.
std::pair<FixedHeader, Bytes> frame(const Buffer& b) {
  FixedHeader h;
  if (parse_fixed_header(b, h) != FrameStatus::Complete) mismatch("framing of the encoded packet");
  if (h.header_size + std::size_t{h.remaining_length} != b.size()) mismatch("length of the encoded packet");
  return {h, Bytes(b).subspan(h.header_size)};
}

void expect_ok(const DecodeStatus& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "fuzz_decode: the re-encoded packet does not decode: %s\n", std::string(st.detail).c_str());
    std::abort();
  }
}

void round_trip_connect(const Connect& c) {
  Buffer b;
  encode_connect(c, b);
  auto [h, body] = frame(b);
  Connect d;
  DecodeScratch s;
  expect_ok(decode_connect(h, body, d, s));
  CHECK_SAME(c.version, d.version);
  CHECK_SAME(c.clean_start, d.clean_start);
  CHECK_SAME(c.keep_alive, d.keep_alive);
  check_same(c.properties, d.properties);
  CHECK_SAME(c.client_id, d.client_id);
  CHECK_SAME(c.will, d.will);
  CHECK_SAME(c.will_qos, d.will_qos);
  CHECK_SAME(c.will_retain, d.will_retain);
  check_same(c.will_properties, d.will_properties);
  CHECK_SAME(c.will_topic, d.will_topic);
  if (!same_bytes(c.will_payload, d.will_payload)) mismatch("will_payload");
  CHECK_SAME(c.username, d.username);
  if (!same_bytes(c.password, d.password)) mismatch("password");
}

void round_trip_connack(const Connack& c, ProtocolVersion v) {
  Buffer b;
  encode_connack(c, v, b);
  auto [h, body] = frame(b);
  Connack d;
  DecodeScratch s;
  expect_ok(decode_connack(h, body, v, d, s));
  CHECK_SAME(c.session_present, d.session_present);
  CHECK_SAME(c.reason, d.reason);
  check_same(c.properties, d.properties);
}

void round_trip_publish(const Publish& p, ProtocolVersion v) {
  Buffer b;
  encode_publish(p, v, b);
  auto [h, body] = frame(b);
  Publish d;
  DecodeScratch s;
  expect_ok(decode_publish(h, body, v, d, s));
  CHECK_SAME(p.qos, d.qos);
  CHECK_SAME(p.dup, d.dup);
  CHECK_SAME(p.retain, d.retain);
  CHECK_SAME(p.topic, d.topic);
  CHECK_SAME(p.packet_id, d.packet_id);
  check_same(p.properties, d.properties);
  if (!same_bytes(p.payload, d.payload)) mismatch("payload");
  // What the engine does with a received PUBLISH: walk its raw properties to forward them.
  std::size_t seen = 0;
  for_each_raw_property(d.raw_properties, [&](PropertyId, Bytes raw) { seen += raw.size(); });
  if (seen != d.raw_properties.size()) mismatch("raw property walk");
}

void round_trip_ack(const Ack& a, ProtocolVersion v) {
  Buffer b;
  encode_ack(a, v, b);
  auto [h, body] = frame(b);
  Ack d;
  DecodeScratch s;
  expect_ok(decode_ack(h, body, v, d, s));
  CHECK_SAME(a.type, d.type);
  CHECK_SAME(a.packet_id, d.packet_id);
  // 3.1.1 acknowledgements carry no reason code and no properties.
  if (v == ProtocolVersion::v5) {
    CHECK_SAME(a.reason, d.reason);
    check_same(a.properties, d.properties);
  }
}

void round_trip_subscribe(const Subscribe& p, ProtocolVersion v) {
  Buffer b;
  encode_subscribe(p, v, b);
  auto [h, body] = frame(b);
  Subscribe d;
  DecodeScratch s;
  expect_ok(decode_subscribe(h, body, v, d, s));
  CHECK_SAME(p.packet_id, d.packet_id);
  check_same(p.properties, d.properties);
  if (!same_span(p.topics, d.topics)) mismatch("topics");
}

void round_trip_suback(const Suback& p, ProtocolVersion v) {
  Buffer b;
  encode_suback(p, v, b);
  auto [h, body] = frame(b);
  Suback d;
  DecodeScratch s;
  expect_ok(decode_suback(h, body, v, d, s));
  CHECK_SAME(p.packet_id, d.packet_id);
  check_same(p.properties, d.properties);
  if (!same_span(p.reasons, d.reasons)) mismatch("reasons");
}

void round_trip_unsubscribe(const Unsubscribe& p, ProtocolVersion v) {
  Buffer b;
  encode_unsubscribe(p, v, b);
  auto [h, body] = frame(b);
  Unsubscribe d;
  DecodeScratch s;
  expect_ok(decode_unsubscribe(h, body, v, d, s));
  CHECK_SAME(p.packet_id, d.packet_id);
  check_same(p.properties, d.properties);
  if (!same_span(p.filters, d.filters)) mismatch("filters");
}

void round_trip_unsuback(const Unsuback& p, ProtocolVersion v) {
  Buffer b;
  encode_unsuback(p, v, b);
  auto [h, body] = frame(b);
  Unsuback d;
  DecodeScratch s;
  expect_ok(decode_unsuback(h, body, v, d, s));
  CHECK_SAME(p.packet_id, d.packet_id);
  check_same(p.properties, d.properties);
  if (!same_span(p.reasons, d.reasons)) mismatch("reasons");
}

void round_trip_disconnect(const Disconnect& p, ProtocolVersion v) {
  Buffer b;
  encode_disconnect(p, v, b);
  auto [h, body] = frame(b);
  Disconnect d;
  DecodeScratch s;
  expect_ok(decode_disconnect(h, body, v, d, s));
  if (v == ProtocolVersion::v5) {
    CHECK_SAME(p.reason, d.reason);
    check_same(p.properties, d.properties);
  }
}

void round_trip_auth(const Auth& p, ProtocolVersion v) {
  Buffer b;
  encode_auth(p, b);
  auto [h, body] = frame(b);
  Auth d;
  DecodeScratch s;
  expect_ok(decode_auth(h, body, v, d, s));
  CHECK_SAME(p.reason, d.reason);
  check_same(p.properties, d.properties);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const ProtocolVersion v = (data[0] & 1) ? ProtocolVersion::v5 : ProtocolVersion::v311;
  Bytes packet(reinterpret_cast<const std::byte*>(data + 1), size - 1);

  FixedHeader h;
  if (parse_fixed_header(packet, h) != FrameStatus::Complete) return 0;
  // The engine hands a decoder exactly remaining_length bytes; a short input stands for a
  // packet whose announced length is what is there.
  Bytes body = packet.subspan(h.header_size);
  if (body.size() > h.remaining_length) body = body.first(h.remaining_length);
  h.remaining_length = static_cast<std::uint32_t>(body.size());

  // One scratch per decoder: a decoded packet's repeated fields live in its scratch.
  DecodeScratch s_connect, s_connack, s_publish, s_ack, s_subscribe, s_suback, s_unsubscribe, s_unsuback, s_disconnect,
      s_auth;
  Connect connect;
  Connack connack;
  Publish publish;
  Ack ack;
  Subscribe subscribe;
  Suback suback;
  Unsubscribe unsubscribe;
  Unsuback unsuback;
  Disconnect disconnect;
  Auth auth;
  const bool connect_ok = decode_connect(h, body, connect, s_connect).ok();
  const bool connack_ok = decode_connack(h, body, v, connack, s_connack).ok();
  const bool publish_ok = decode_publish(h, body, v, publish, s_publish).ok();
  const bool ack_ok = decode_ack(h, body, v, ack, s_ack).ok();
  const bool subscribe_ok = decode_subscribe(h, body, v, subscribe, s_subscribe).ok();
  const bool suback_ok = decode_suback(h, body, v, suback, s_suback).ok();
  const bool unsubscribe_ok = decode_unsubscribe(h, body, v, unsubscribe, s_unsubscribe).ok();
  const bool unsuback_ok = decode_unsuback(h, body, v, unsuback, s_unsuback).ok();
  const bool disconnect_ok = decode_disconnect(h, body, v, disconnect, s_disconnect).ok();
  const bool auth_ok = decode_auth(h, body, v, auth, s_auth).ok();
  const bool empty_ok = decode_empty(h, body).ok();

  // Round trips only through the decoder the packet type names: the fixed header's flags and
  // type belong to that packet, and the encoder writes them from the decoded fields.
  switch (h.type) {
    case PacketType::Connect:
      if (connect_ok) round_trip_connect(connect);
      break;
    case PacketType::Connack:
      if (connack_ok) round_trip_connack(connack, v);
      break;
    case PacketType::Publish:
      if (publish_ok) round_trip_publish(publish, v);
      break;
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      if (ack_ok) round_trip_ack(ack, v);
      break;
    case PacketType::Subscribe:
      if (subscribe_ok) round_trip_subscribe(subscribe, v);
      break;
    case PacketType::Suback:
      if (suback_ok) round_trip_suback(suback, v);
      break;
    case PacketType::Unsubscribe:
      if (unsubscribe_ok) round_trip_unsubscribe(unsubscribe, v);
      break;
    case PacketType::Unsuback:
      if (unsuback_ok) round_trip_unsuback(unsuback, v);
      break;
    case PacketType::Pingreq:
    case PacketType::Pingresp:
      if (empty_ok) {
        Buffer b;
        h.type == PacketType::Pingreq ? encode_pingreq(b) : encode_pingresp(b);
        auto [h2, body2] = frame(b);
        if (!decode_empty(h2, body2).ok() || h2.type != h.type) mismatch("PINGREQ/PINGRESP");
      }
      break;
    case PacketType::Disconnect:
      if (disconnect_ok) round_trip_disconnect(disconnect, v);
      break;
    case PacketType::Auth:
      if (auth_ok) round_trip_auth(auth, v);
      break;
  }
  return 0;
}
