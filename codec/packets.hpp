// Decoded MQTT packets. Strings and binary fields are views into the bytes they were decoded
// from (or, when encoding, into caller-owned data); nothing here owns memory.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "codec/types.hpp"

namespace mqttd::codec {

struct UserProperty {
  std::string_view key;
  std::string_view value;
  bool operator==(const UserProperty&) const = default;
};

// Every MQTT 5 property. Absent properties are std::nullopt. Repeated properties (User
// Property, and Subscription Identifier in a server-sent PUBLISH) are spans; when decoding
// they point into a DecodeScratch, so decoding allocates nothing once the scratch is warm.
struct Properties {
  std::optional<std::uint8_t> payload_format_indicator;
  std::optional<std::uint32_t> message_expiry_interval;
  std::optional<std::string_view> content_type;
  std::optional<std::string_view> response_topic;
  std::optional<Bytes> correlation_data;
  std::span<const std::uint32_t> subscription_identifiers;
  std::optional<std::uint32_t> session_expiry_interval;
  std::optional<std::string_view> assigned_client_identifier;
  std::optional<std::uint16_t> server_keep_alive;
  std::optional<std::string_view> authentication_method;
  std::optional<Bytes> authentication_data;
  std::optional<std::uint8_t> request_problem_information;
  std::optional<std::uint32_t> will_delay_interval;
  std::optional<std::uint8_t> request_response_information;
  std::optional<std::string_view> response_information;
  std::optional<std::string_view> server_reference;
  std::optional<std::string_view> reason_string;
  std::optional<std::uint16_t> receive_maximum;
  std::optional<std::uint16_t> topic_alias_maximum;
  std::optional<std::uint16_t> topic_alias;
  std::optional<std::uint8_t> maximum_qos;
  std::optional<std::uint8_t> retain_available;
  std::span<const UserProperty> user_properties;
  std::optional<std::uint32_t> maximum_packet_size;
  std::optional<std::uint8_t> wildcard_subscription_available;
  std::optional<std::uint8_t> subscription_identifier_available;
  std::optional<std::uint8_t> shared_subscription_available;
};

struct Connect {
  ProtocolVersion version = ProtocolVersion::v5;
  bool clean_start = true;
  std::uint16_t keep_alive = 0;
  Properties properties;
  std::string_view client_id;
  bool will = false;
  std::uint8_t will_qos = 0;
  bool will_retain = false;
  Properties will_properties;
  std::string_view will_topic;
  Bytes will_payload;
  std::optional<std::string_view> username;
  std::optional<Bytes> password;
};

struct Connack {
  bool session_present = false;
  Reason reason = Reason::Success;  // for 3.1.1, the return code as a byte value
  Properties properties;
};

struct Publish {
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::string_view topic;
  std::uint16_t packet_id = 0;
  Properties properties;
  Bytes raw_properties;  // the property block as received, for forwarding
  Bytes payload;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct Ack {
  PacketType type = PacketType::Puback;
  std::uint16_t packet_id = 0;
  Reason reason = Reason::Success;
  Properties properties;
};

struct SubscribeTopic {
  std::string_view filter;
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  bool operator==(const SubscribeTopic&) const = default;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  Properties properties;
  std::span<const SubscribeTopic> topics;
};

struct Suback {
  std::uint16_t packet_id = 0;
  Properties properties;
  std::span<const Reason> reasons;  // for 3.1.1: 0x00..0x02 or 0x80
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  Properties properties;
  std::span<const std::string_view> filters;
};

struct Unsuback {
  std::uint16_t packet_id = 0;
  Properties properties;
  std::span<const Reason> reasons;  // empty for 3.1.1
};

struct Disconnect {
  Reason reason = Reason::Success;
  Properties properties;
};

struct Auth {
  Reason reason = Reason::Success;
  Properties properties;
};

}  // namespace mqttd::codec
