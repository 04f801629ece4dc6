#include "codec/encode.hpp"

#include "codec/wire.hpp"

namespace mqttd::codec {
namespace {

// Visits every present property in id order. Used once to count bytes and once to write them.
template <typename Sink>
void visit(const Properties& p, Sink& s) {
  auto byte = [&](PropertyId id, const std::optional<std::uint8_t>& v) {
    if (v) s.u8(static_cast<std::uint8_t>(id)), s.u8(*v);
  };
  auto u16 = [&](PropertyId id, const std::optional<std::uint16_t>& v) {
    if (v) s.u8(static_cast<std::uint8_t>(id)), s.u16(*v);
  };
  auto u32 = [&](PropertyId id, const std::optional<std::uint32_t>& v) {
    if (v) s.u8(static_cast<std::uint8_t>(id)), s.u32(*v);
  };
  auto str = [&](PropertyId id, const std::optional<std::string_view>& v) {
    if (v) s.u8(static_cast<std::uint8_t>(id)), s.string(*v);
  };
  auto bin = [&](PropertyId id, const std::optional<Bytes>& v) {
    if (v) s.u8(static_cast<std::uint8_t>(id)), s.binary(*v);
  };
  byte(PropertyId::PayloadFormatIndicator, p.payload_format_indicator);
  u32(PropertyId::MessageExpiryInterval, p.message_expiry_interval);
  str(PropertyId::ContentType, p.content_type);
  str(PropertyId::ResponseTopic, p.response_topic);
  bin(PropertyId::CorrelationData, p.correlation_data);
  for (auto id : p.subscription_identifiers) {
    s.u8(static_cast<std::uint8_t>(PropertyId::SubscriptionIdentifier));
    s.varint(id);
  }
  u32(PropertyId::SessionExpiryInterval, p.session_expiry_interval);
  str(PropertyId::AssignedClientIdentifier, p.assigned_client_identifier);
  u16(PropertyId::ServerKeepAlive, p.server_keep_alive);
  str(PropertyId::AuthenticationMethod, p.authentication_method);
  bin(PropertyId::AuthenticationData, p.authentication_data);
  byte(PropertyId::RequestProblemInformation, p.request_problem_information);
  u32(PropertyId::WillDelayInterval, p.will_delay_interval);
  byte(PropertyId::RequestResponseInformation, p.request_response_information);
  str(PropertyId::ResponseInformation, p.response_information);
  str(PropertyId::ServerReference, p.server_reference);
  str(PropertyId::ReasonString, p.reason_string);
  u16(PropertyId::ReceiveMaximum, p.receive_maximum);
  u16(PropertyId::TopicAliasMaximum, p.topic_alias_maximum);
  u16(PropertyId::TopicAlias, p.topic_alias);
  byte(PropertyId::MaximumQos, p.maximum_qos);
  byte(PropertyId::RetainAvailable, p.retain_available);
  for (const auto& up : p.user_properties) {
    s.u8(static_cast<std::uint8_t>(PropertyId::UserProperty));
    s.string(up.key);
    s.string(up.value);
  }
  u32(PropertyId::MaximumPacketSize, p.maximum_packet_size);
  byte(PropertyId::WildcardSubscriptionAvailable, p.wildcard_subscription_available);
  byte(PropertyId::SubscriptionIdentifierAvailable, p.subscription_identifier_available);
  byte(PropertyId::SharedSubscriptionAvailable, p.shared_subscription_available);
}

struct Counter {
  std::size_t n = 0;
  void u8(std::uint8_t) { n += 1; }
  void u16(std::uint16_t) { n += 2; }
  void u32(std::uint32_t) { n += 4; }
  void varint(std::uint32_t v) { n += varint_size(v); }
  void string(std::string_view s) { n += 2 + s.size(); }
  void binary(Bytes b) { n += 2 + b.size(); }
};

std::size_t block_size(const Properties& p) {
  std::size_t n = properties_size(p);
  return varint_size(static_cast<std::uint32_t>(n)) + n;
}

void write_block(Writer& w, const Properties& p) {
  w.varint(static_cast<std::uint32_t>(properties_size(p)));
  visit(p, w);
}

// Appends the fixed header and returns a writer positioned at the start of the body.
Writer begin(Buffer& out, std::uint8_t first_byte, std::size_t remaining) {
  std::size_t start = out.size();
  out.resize(start + packet_size(remaining));
  Writer w(out.data() + start);
  w.u8(first_byte);
  w.varint(static_cast<std::uint32_t>(remaining));
  return w;
}

std::uint8_t first(PacketType t, std::uint8_t flags = 0) {
  return static_cast<std::uint8_t>((static_cast<unsigned>(t) << 4) | flags);
}

bool has_properties(const Properties& p) { return properties_size(p) != 0; }

}  // namespace

std::size_t properties_size(const Properties& p) {
  Counter c;
  visit(p, c);
  return c.n;
}

void encode_property_contents(const Properties& p, std::byte* out) {
  Writer w(out);
  visit(p, w);
}

void encode_connect(const Connect& p, Buffer& out) {
  bool v5 = p.version == ProtocolVersion::v5;
  std::size_t n = 2 + 4 + 1 + 1 + 2;
  if (v5) n += block_size(p.properties);
  n += 2 + p.client_id.size();
  if (p.will) {
    if (v5) n += block_size(p.will_properties);
    n += 2 + p.will_topic.size() + 2 + p.will_payload.size();
  }
  if (p.username) n += 2 + p.username->size();
  if (p.password) n += 2 + p.password->size();
  Writer w = begin(out, first(PacketType::Connect), n);
  w.string("MQTT");
  w.u8(static_cast<std::uint8_t>(p.version));
  std::uint8_t flags = 0;
  if (p.clean_start) flags |= 0x02;
  if (p.will) flags |= static_cast<std::uint8_t>(0x04 | (p.will_qos << 3) | (p.will_retain ? 0x20 : 0));
  if (p.password) flags |= 0x40;
  if (p.username) flags |= 0x80;
  w.u8(flags);
  w.u16(p.keep_alive);
  if (v5) write_block(w, p.properties);
  w.string(p.client_id);
  if (p.will) {
    if (v5) write_block(w, p.will_properties);
    w.string(p.will_topic);
    w.binary(p.will_payload);
  }
  if (p.username) w.string(*p.username);
  if (p.password) w.binary(*p.password);
}

void encode_connack(const Connack& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + (v5 ? block_size(p.properties) : 0);
  Writer w = begin(out, first(PacketType::Connack), n);
  w.u8(p.session_present ? 1 : 0);
  w.u8(static_cast<std::uint8_t>(p.reason));
  if (v5) write_block(w, p.properties);
}

void encode_publish(const Publish& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + p.topic.size() + (p.qos ? 2 : 0) + (v5 ? block_size(p.properties) : 0) + p.payload.size();
  auto flags = static_cast<std::uint8_t>((p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0));
  Writer w = begin(out, first(PacketType::Publish, flags), n);
  w.string(p.topic);
  if (p.qos) w.u16(p.packet_id);
  if (v5) write_block(w, p.properties);
  w.raw(p.payload);
}

void encode_ack(const Ack& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  bool props = v5 && has_properties(p.properties);
  bool reason = v5 && (props || p.reason != Reason::Success);
  std::size_t n = 2 + (reason ? 1 : 0) + (props ? block_size(p.properties) : 0);
  Writer w = begin(out, first(p.type, p.type == PacketType::Pubrel ? 2 : 0), n);
  w.u16(p.packet_id);
  if (reason) w.u8(static_cast<std::uint8_t>(p.reason));
  if (props) write_block(w, p.properties);
}

void encode_subscribe(const Subscribe& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + (v5 ? block_size(p.properties) : 0);
  for (const auto& t : p.topics) n += 2 + t.filter.size() + 1;
  Writer w = begin(out, first(PacketType::Subscribe, 2), n);
  w.u16(p.packet_id);
  if (v5) write_block(w, p.properties);
  for (const auto& t : p.topics) {
    w.string(t.filter);
    w.u8(static_cast<std::uint8_t>(t.qos | (t.no_local ? 0x04 : 0) | (t.retain_as_published ? 0x08 : 0) |
                                   (t.retain_handling << 4)));
  }
}

void encode_suback(const Suback& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + (v5 ? block_size(p.properties) : 0) + p.reasons.size();
  Writer w = begin(out, first(PacketType::Suback), n);
  w.u16(p.packet_id);
  if (v5) write_block(w, p.properties);
  for (auto r : p.reasons) w.u8(static_cast<std::uint8_t>(r));
}

void encode_unsubscribe(const Unsubscribe& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + (v5 ? block_size(p.properties) : 0);
  for (auto f : p.filters) n += 2 + f.size();
  Writer w = begin(out, first(PacketType::Unsubscribe, 2), n);
  w.u16(p.packet_id);
  if (v5) write_block(w, p.properties);
  for (auto f : p.filters) w.string(f);
}

void encode_unsuback(const Unsuback& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  std::size_t n = 2 + (v5 ? block_size(p.properties) + p.reasons.size() : 0);
  Writer w = begin(out, first(PacketType::Unsuback), n);
  w.u16(p.packet_id);
  if (v5) {
    write_block(w, p.properties);
    for (auto r : p.reasons) w.u8(static_cast<std::uint8_t>(r));
  }
}

void encode_disconnect(const Disconnect& p, ProtocolVersion v, Buffer& out) {
  bool v5 = v == ProtocolVersion::v5;
  bool props = v5 && has_properties(p.properties);
  bool reason = v5 && (props || p.reason != Reason::Success);
  std::size_t n = (reason ? 1 : 0) + (props ? block_size(p.properties) : 0);
  Writer w = begin(out, first(PacketType::Disconnect), n);
  if (reason) w.u8(static_cast<std::uint8_t>(p.reason));
  if (props) write_block(w, p.properties);
}

void encode_auth(const Auth& p, Buffer& out) {
  bool props = has_properties(p.properties);
  bool reason = props || p.reason != Reason::Success;
  std::size_t n = (reason ? 1 : 0) + (props ? block_size(p.properties) : 0);
  Writer w = begin(out, first(PacketType::Auth), n);
  if (reason) w.u8(static_cast<std::uint8_t>(p.reason));
  if (props) write_block(w, p.properties);
}

void encode_pingreq(Buffer& out) { begin(out, first(PacketType::Pingreq), 0); }
void encode_pingresp(Buffer& out) { begin(out, first(PacketType::Pingresp), 0); }

}  // namespace mqttd::codec
