#include "codec/decode.hpp"

#include <algorithm>

#include "codec/utf8.hpp"
#include "codec/wire.hpp"

namespace mqttd::codec {
namespace {

// Where a property block appears; each property is allowed in some of these (table 2-4).
enum Context : std::uint16_t {
  kConnect = 1 << 0,
  kConnack = 1 << 1,
  kPublish = 1 << 2,
  kWill = 1 << 3,
  kAck = 1 << 4,  // PUBACK, PUBREC, PUBREL, PUBCOMP
  kSubscribe = 1 << 5,
  kSuback = 1 << 6,
  kUnsubscribe = 1 << 7,
  kUnsuback = 1 << 8,
  kDisconnect = 1 << 9,
  kAuth = 1 << 10,
  kAll = 0x7FF,
};

std::uint16_t allowed_in(std::uint8_t id) {
  switch (static_cast<PropertyId>(id)) {
    case PropertyId::PayloadFormatIndicator:
    case PropertyId::MessageExpiryInterval:
    case PropertyId::ContentType:
    case PropertyId::ResponseTopic:
    case PropertyId::CorrelationData:
      return kPublish | kWill;
    case PropertyId::SubscriptionIdentifier:
      return kPublish | kSubscribe;
    case PropertyId::SessionExpiryInterval:
      return kConnect | kConnack | kDisconnect;
    case PropertyId::AssignedClientIdentifier:
    case PropertyId::ServerKeepAlive:
    case PropertyId::ResponseInformation:
    case PropertyId::MaximumQos:
    case PropertyId::RetainAvailable:
    case PropertyId::WildcardSubscriptionAvailable:
    case PropertyId::SubscriptionIdentifierAvailable:
    case PropertyId::SharedSubscriptionAvailable:
      return kConnack;
    case PropertyId::AuthenticationMethod:
    case PropertyId::AuthenticationData:
      return kConnect | kConnack | kAuth;
    case PropertyId::RequestProblemInformation:
    case PropertyId::RequestResponseInformation:
      return kConnect;
    case PropertyId::WillDelayInterval:
      return kWill;
    case PropertyId::ServerReference:
      return kConnack | kDisconnect;
    case PropertyId::ReasonString:
      return kConnack | kAck | kSuback | kUnsuback | kDisconnect | kAuth;
    case PropertyId::ReceiveMaximum:
    case PropertyId::TopicAliasMaximum:
    case PropertyId::MaximumPacketSize:
      return kConnect | kConnack;
    case PropertyId::TopicAlias:
      return kPublish;
    case PropertyId::UserProperty:
      return kAll;
  }
  return 0;
}

DecodeStatus malformed(std::string_view why) { return {Reason::MalformedPacket, why}; }
DecodeStatus protocol_error(std::string_view why) { return {Reason::ProtocolError, why}; }

template <typename T>
bool set_once(std::optional<T>& field, T value) {
  if (field) return false;
  field = value;
  return true;
}

DecodeStatus too_many_topic_filters() {
  return {Reason::QuotaExceeded, "too many topic filters", DecodeBound::TopicFilters};
}

DecodeStatus too_many_user_properties() {
  return {Reason::QuotaExceeded, "too many user properties", DecodeBound::UserProperties};
}

// Reads a property block (length varint, then properties) into `out`, with at most
// `max_user_props` user properties.
DecodeStatus read_properties(Reader& r, Context ctx, Properties& out, std::vector<UserProperty>& user_props,
                             std::vector<std::uint32_t>* sub_ids, std::size_t max_user_props, Bytes* raw = nullptr) {
  user_props.clear();
  if (sub_ids) sub_ids->clear();
  std::uint32_t length = r.varint();
  if (r.failed() || length > r.remaining()) return malformed("property length exceeds packet");
  Bytes block = r.take(length);
  if (raw) *raw = block;
  Reader p(block);
  while (!p.at_end()) {
    std::uint8_t id = p.u8();
    if (!(allowed_in(id) & ctx)) return malformed("property not allowed in this packet");
    bool fresh = true;
    auto byte01 = [&](std::optional<std::uint8_t>& f) {
      std::uint8_t v = p.u8();
      if (v > 1) return false;
      fresh = set_once(f, v);
      return true;
    };
    bool valid = true;
    switch (static_cast<PropertyId>(id)) {
      case PropertyId::PayloadFormatIndicator:
        valid = byte01(out.payload_format_indicator);
        break;
      case PropertyId::MessageExpiryInterval:
        fresh = set_once(out.message_expiry_interval, p.u32());
        break;
      case PropertyId::ContentType:
        fresh = set_once(out.content_type, p.string());
        break;
      case PropertyId::ResponseTopic:
        fresh = set_once(out.response_topic, p.string());
        break;
      case PropertyId::CorrelationData:
        fresh = set_once(out.correlation_data, p.binary());
        break;
      case PropertyId::SubscriptionIdentifier: {
        std::uint32_t v = p.varint();
        if (v == 0) return protocol_error("subscription identifier 0");
        if (!sub_ids) return malformed("subscription identifier not allowed");
        if (ctx == kSubscribe && !sub_ids->empty()) fresh = false;
        sub_ids->push_back(v);
        break;
      }
      case PropertyId::SessionExpiryInterval:
        fresh = set_once(out.session_expiry_interval, p.u32());
        break;
      case PropertyId::AssignedClientIdentifier:
        fresh = set_once(out.assigned_client_identifier, p.string());
        break;
      case PropertyId::ServerKeepAlive:
        fresh = set_once(out.server_keep_alive, p.u16());
        break;
      case PropertyId::AuthenticationMethod:
        fresh = set_once(out.authentication_method, p.string());
        break;
      case PropertyId::AuthenticationData:
        fresh = set_once(out.authentication_data, p.binary());
        break;
      case PropertyId::RequestProblemInformation:
        valid = byte01(out.request_problem_information);
        break;
      case PropertyId::WillDelayInterval:
        fresh = set_once(out.will_delay_interval, p.u32());
        break;
      case PropertyId::RequestResponseInformation:
        valid = byte01(out.request_response_information);
        break;
      case PropertyId::ResponseInformation:
        fresh = set_once(out.response_information, p.string());
        break;
      case PropertyId::ServerReference:
        fresh = set_once(out.server_reference, p.string());
        break;
      case PropertyId::ReasonString:
        fresh = set_once(out.reason_string, p.string());
        break;
      case PropertyId::ReceiveMaximum: {
        auto v = p.u16();
        if (v == 0 && !p.failed()) return protocol_error("receive maximum 0");
        fresh = set_once(out.receive_maximum, v);
        break;
      }
      case PropertyId::TopicAliasMaximum:
        fresh = set_once(out.topic_alias_maximum, p.u16());
        break;
      case PropertyId::TopicAlias:
        fresh = set_once(out.topic_alias, p.u16());
        break;
      case PropertyId::MaximumQos:
        valid = byte01(out.maximum_qos);
        break;
      case PropertyId::RetainAvailable:
        valid = byte01(out.retain_available);
        break;
      case PropertyId::UserProperty: {
        auto k = p.string();
        auto v = p.string();
        if (!p.failed() && (!valid_utf8(k) || !valid_utf8(v))) return malformed("invalid UTF-8 in user property");
        // Checked before the push: the scratch never grows past the bound.
        if (user_props.size() >= max_user_props) return too_many_user_properties();
        user_props.push_back({k, v});
        break;
      }
      case PropertyId::MaximumPacketSize: {
        auto v = p.u32();
        if (v == 0 && !p.failed()) return protocol_error("maximum packet size 0");
        fresh = set_once(out.maximum_packet_size, v);
        break;
      }
      case PropertyId::WildcardSubscriptionAvailable:
        valid = byte01(out.wildcard_subscription_available);
        break;
      case PropertyId::SubscriptionIdentifierAvailable:
        valid = byte01(out.subscription_identifier_available);
        break;
      case PropertyId::SharedSubscriptionAvailable:
        valid = byte01(out.shared_subscription_available);
        break;
    }
    if (p.failed()) return malformed("truncated property");
    if (!valid) return protocol_error("invalid property value");
    if (!fresh) return protocol_error("property appears twice");
  }
  auto check_string = [](const std::optional<std::string_view>& s) { return !s || valid_utf8(*s); };
  if (!check_string(out.content_type) || !check_string(out.response_topic) ||
      !check_string(out.assigned_client_identifier) || !check_string(out.authentication_method) ||
      !check_string(out.response_information) || !check_string(out.server_reference) ||
      !check_string(out.reason_string))
    return malformed("invalid UTF-8 in property");
  if (out.response_topic && !valid_topic_name(*out.response_topic))
    return protocol_error("response topic is not a valid topic name");
  out.user_properties = user_props;
  if (sub_ids) out.subscription_identifiers = *sub_ids;
  return {};
}

bool read_utf8(Reader& r, std::string_view& out) {
  out = r.string();
  return !r.failed() && valid_utf8(out);
}

DecodeStatus expect_flags(const FixedHeader& h, std::uint8_t flags) {
  if (h.flags != flags) return malformed("reserved fixed-header flags");
  return {};
}

}  // namespace

PropertyKind property_kind(std::uint8_t id) {
  switch (static_cast<PropertyId>(id)) {
    case PropertyId::PayloadFormatIndicator:
    case PropertyId::RequestProblemInformation:
    case PropertyId::RequestResponseInformation:
    case PropertyId::MaximumQos:
    case PropertyId::RetainAvailable:
    case PropertyId::WildcardSubscriptionAvailable:
    case PropertyId::SubscriptionIdentifierAvailable:
    case PropertyId::SharedSubscriptionAvailable:
      return PropertyKind::Byte;
    case PropertyId::ServerKeepAlive:
    case PropertyId::ReceiveMaximum:
    case PropertyId::TopicAliasMaximum:
    case PropertyId::TopicAlias:
      return PropertyKind::TwoByte;
    case PropertyId::MessageExpiryInterval:
    case PropertyId::SessionExpiryInterval:
    case PropertyId::WillDelayInterval:
    case PropertyId::MaximumPacketSize:
      return PropertyKind::FourByte;
    case PropertyId::SubscriptionIdentifier:
      return PropertyKind::Varint;
    case PropertyId::ContentType:
    case PropertyId::ResponseTopic:
    case PropertyId::AssignedClientIdentifier:
    case PropertyId::AuthenticationMethod:
    case PropertyId::ResponseInformation:
    case PropertyId::ServerReference:
    case PropertyId::ReasonString:
      return PropertyKind::String;
    case PropertyId::CorrelationData:
    case PropertyId::AuthenticationData:
      return PropertyKind::Binary;
    case PropertyId::UserProperty:
      return PropertyKind::Pair;
  }
  return PropertyKind::Invalid;
}

FrameStatus parse_fixed_header(Bytes buffer, FixedHeader& out) {
  if (buffer.empty()) return FrameStatus::NeedMore;
  auto first = std::to_integer<std::uint8_t>(buffer[0]);
  if ((first >> 4) == 0) return FrameStatus::Malformed;
  out.type = static_cast<PacketType>(first >> 4);
  out.flags = first & 0x0F;
  std::uint32_t value = 0;
  for (std::size_t i = 1; i <= 4; ++i) {
    if (i >= buffer.size()) return FrameStatus::NeedMore;
    auto b = std::to_integer<std::uint32_t>(buffer[i]);
    value |= (b & 0x7F) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      out.remaining_length = value;
      out.header_size = static_cast<std::uint8_t>(i + 1);
      return FrameStatus::Complete;
    }
  }
  return FrameStatus::Malformed;
}

DecodeStatus decode_connect(const FixedHeader& h, Bytes body, Connect& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  std::string_view name = r.string();
  std::uint8_t level = r.u8();
  if (r.failed()) return malformed("truncated CONNECT");
  if (name == "MQIsdp" && level == 3) return {Reason::UnsupportedProtocolVersion, "MQTT 3.1 is not supported"};
  if (name != "MQTT") return {Reason::MalformedPacket, "protocol name is not MQTT"};
  if (level != 4 && level != 5) return {Reason::UnsupportedProtocolVersion, "unsupported protocol level"};
  out = Connect{};
  out.version = static_cast<ProtocolVersion>(level);
  std::uint8_t flags = r.u8();
  out.keep_alive = r.u16();
  if (r.failed()) return malformed("truncated CONNECT");
  if (flags & 0x01) return malformed("reserved connect flag set");
  out.clean_start = flags & 0x02;
  out.will = flags & 0x04;
  out.will_qos = (flags >> 3) & 0x03;
  out.will_retain = flags & 0x20;
  bool has_password = flags & 0x40;
  bool has_username = flags & 0x80;
  if (out.will_qos == 3) return malformed("will QoS 3");
  if (!out.will && (out.will_qos || out.will_retain)) return malformed("will QoS or retain without will");
  if (out.version == ProtocolVersion::v311 && has_password && !has_username)
    return malformed("password without username");
  bool v5 = out.version == ProtocolVersion::v5;
  if (v5) {
    if (auto st = read_properties(r, kConnect, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  if (!read_utf8(r, out.client_id)) return malformed("client identifier is not valid UTF-8");
  if (out.will) {
    if (v5) {
      std::size_t max = s.max_user_properties - std::min(s.max_user_properties, out.properties.user_properties.size());
      if (auto st = read_properties(r, kWill, out.will_properties, s.will_user_properties, nullptr, max); !st.ok())
        return st;
    }
    if (!read_utf8(r, out.will_topic)) return malformed("will topic is not valid UTF-8");
    if (!valid_topic_name(out.will_topic))
      return {v5 ? Reason::TopicNameInvalid : Reason::MalformedPacket, "invalid will topic"};
    out.will_payload = r.binary();
    if (out.will_properties.payload_format_indicator.value_or(0) == 1 && !valid_utf8(as_string(out.will_payload)))
      return {Reason::PayloadFormatInvalid, "will payload is not UTF-8"};
  }
  if (has_username) {
    std::string_view u;
    if (!read_utf8(r, u)) return malformed("user name is not valid UTF-8");
    out.username = u;
  }
  if (has_password) out.password = r.binary();
  if (r.failed()) return malformed("truncated CONNECT");
  if (!r.at_end()) return malformed("trailing bytes after CONNECT");
  return {};
}

DecodeStatus decode_connack(const FixedHeader& h, Bytes body, ProtocolVersion v, Connack& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  out = Connack{};
  std::uint8_t ack_flags = r.u8();
  out.reason = static_cast<Reason>(r.u8());
  if (r.failed()) return malformed("truncated CONNACK");
  if (ack_flags & 0xFE) return malformed("reserved CONNACK flags");
  out.session_present = ack_flags & 1;
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kConnack, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  if (!r.at_end()) return malformed("trailing bytes after CONNACK");
  return {};
}

DecodeStatus decode_publish(const FixedHeader& h, Bytes body, ProtocolVersion v, Publish& out, DecodeScratch& s) {
  Reader r(body);
  out.qos = (h.flags >> 1) & 0x03;
  out.dup = h.flags & 0x08;
  out.retain = h.flags & 0x01;
  if (out.qos == 3) return malformed("PUBLISH QoS 3");
  if (out.qos == 0 && out.dup) return malformed("DUP set on a QoS 0 PUBLISH");
  if (!read_utf8(r, out.topic)) return malformed("topic is not valid UTF-8");
  out.packet_id = 0;
  if (out.qos > 0) {
    out.packet_id = r.u16();
    if (r.failed()) return malformed("truncated PUBLISH");
    if (out.packet_id == 0) return protocol_error("packet identifier 0");
  }
  out.properties = Properties{};
  out.raw_properties = {};
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kPublish, out.properties, s.user_properties, &s.subscription_identifiers,
                                  s.max_user_properties, &out.raw_properties);
        !st.ok())
      return st;
  }
  out.payload = r.rest();
  return {};
}

DecodeStatus decode_ack(const FixedHeader& h, Bytes body, ProtocolVersion v, Ack& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, h.type == PacketType::Pubrel ? 2 : 0); !st.ok()) return st;
  Reader r(body);
  out = Ack{};
  out.type = h.type;
  out.packet_id = r.u16();
  if (r.failed()) return malformed("truncated acknowledgement");
  if (out.packet_id == 0) return protocol_error("packet identifier 0");
  if (v == ProtocolVersion::v5 && !r.at_end()) {
    out.reason = static_cast<Reason>(r.u8());
    if (!r.at_end()) {
      if (auto st = read_properties(r, kAck, out.properties, s.user_properties, nullptr, s.max_user_properties);
          !st.ok())
        return st;
    }
  }
  if (r.failed() || !r.at_end()) return malformed("malformed acknowledgement");
  return {};
}

DecodeStatus decode_subscribe(const FixedHeader& h, Bytes body, ProtocolVersion v, Subscribe& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 2); !st.ok()) return st;
  Reader r(body);
  out = Subscribe{};
  out.packet_id = r.u16();
  if (r.failed()) return malformed("truncated SUBSCRIBE");
  if (out.packet_id == 0) return protocol_error("packet identifier 0");
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kSubscribe, out.properties, s.user_properties, &s.subscription_identifiers,
                                  s.max_user_properties);
        !st.ok())
      return st;
  }
  s.topics.clear();
  while (!r.at_end()) {
    // Checked before reading another: the scratch never grows past the bound.
    if (s.topics.size() >= s.max_topic_filters) return too_many_topic_filters();
    SubscribeTopic t;
    if (!read_utf8(r, t.filter)) return malformed("topic filter is not valid UTF-8");
    // 3.1.1 has no per-filter code for it: a protocol violation, the connection is closed
    // [MQTT-4.7.3-1], [MQTT-4.8.0-1]. A v5 client gets 0x8F Topic Filter Invalid for that filter.
    if (v == ProtocolVersion::v311 && t.filter.empty()) return malformed("empty topic filter");
    std::uint8_t opts = r.u8();
    if (r.failed()) return malformed("truncated SUBSCRIBE");
    if (v == ProtocolVersion::v5 ? (opts & 0xC0) : (opts & 0xFC)) return malformed("reserved subscription options");
    t.qos = opts & 0x03;
    if (t.qos == 3) return malformed("subscription QoS 3");
    if (v == ProtocolVersion::v5) {
      t.no_local = opts & 0x04;
      t.retain_as_published = opts & 0x08;
      t.retain_handling = (opts >> 4) & 0x03;
      if (t.retain_handling == 3) return protocol_error("retain handling 3");
    }
    s.topics.push_back(t);
  }
  if (s.topics.empty()) return protocol_error("SUBSCRIBE without topic filters");
  out.topics = s.topics;
  return {};
}

DecodeStatus decode_suback(const FixedHeader& h, Bytes body, ProtocolVersion v, Suback& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  out = Suback{};
  out.packet_id = r.u16();
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kSuback, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  s.reasons.clear();
  while (!r.at_end() && !r.failed()) s.reasons.push_back(static_cast<Reason>(r.u8()));
  if (r.failed()) return malformed("truncated SUBACK");
  out.reasons = s.reasons;
  return {};
}

DecodeStatus decode_unsubscribe(const FixedHeader& h, Bytes body, ProtocolVersion v, Unsubscribe& out,
                                DecodeScratch& s) {
  if (auto st = expect_flags(h, 2); !st.ok()) return st;
  Reader r(body);
  out = Unsubscribe{};
  out.packet_id = r.u16();
  if (r.failed()) return malformed("truncated UNSUBSCRIBE");
  if (out.packet_id == 0) return protocol_error("packet identifier 0");
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kUnsubscribe, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  s.filters.clear();
  while (!r.at_end()) {
    if (s.filters.size() >= s.max_topic_filters) return too_many_topic_filters();
    std::string_view f;
    if (!read_utf8(r, f)) return malformed("topic filter is not valid UTF-8");
    if (v == ProtocolVersion::v311 && f.empty()) return malformed("empty topic filter");
    s.filters.push_back(f);
  }
  if (s.filters.empty()) return protocol_error("UNSUBSCRIBE without topic filters");
  out.filters = s.filters;
  return {};
}

DecodeStatus decode_unsuback(const FixedHeader& h, Bytes body, ProtocolVersion v, Unsuback& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  out = Unsuback{};
  out.packet_id = r.u16();
  s.reasons.clear();
  if (v == ProtocolVersion::v5) {
    if (auto st = read_properties(r, kUnsuback, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
    while (!r.at_end() && !r.failed()) s.reasons.push_back(static_cast<Reason>(r.u8()));
  }
  if (r.failed() || !r.at_end()) return malformed("malformed UNSUBACK");
  out.reasons = s.reasons;
  return {};
}

DecodeStatus decode_disconnect(const FixedHeader& h, Bytes body, ProtocolVersion v, Disconnect& out, DecodeScratch& s) {
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  out = Disconnect{};
  if (v == ProtocolVersion::v311) {
    if (!body.empty()) return malformed("DISCONNECT with a body");
    return {};
  }
  if (!r.at_end()) out.reason = static_cast<Reason>(r.u8());
  if (!r.at_end()) {
    if (auto st = read_properties(r, kDisconnect, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  if (r.failed() || !r.at_end()) return malformed("malformed DISCONNECT");
  return {};
}

DecodeStatus decode_auth(const FixedHeader& h, Bytes body, ProtocolVersion v, Auth& out, DecodeScratch& s) {
  if (v != ProtocolVersion::v5) return malformed("AUTH in MQTT 3.1.1");
  if (auto st = expect_flags(h, 0); !st.ok()) return st;
  Reader r(body);
  out = Auth{};
  if (!r.at_end()) out.reason = static_cast<Reason>(r.u8());
  if (!r.at_end()) {
    if (auto st = read_properties(r, kAuth, out.properties, s.user_properties, nullptr, s.max_user_properties);
        !st.ok())
      return st;
  }
  if (r.failed() || !r.at_end()) return malformed("malformed AUTH");
  return {};
}

DecodeStatus decode_empty(const FixedHeader& h, Bytes body) {
  if (h.flags != 0 || !body.empty()) return malformed("PINGREQ/PINGRESP with flags or body");
  return {};
}

}  // namespace mqttd::codec
