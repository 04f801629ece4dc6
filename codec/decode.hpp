// Decoding of MQTT 3.1.1 and 5.0 packets from a complete frame. No I/O, no allocation once the
// DecodeScratch has grown to the largest packet seen.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "codec/packets.hpp"

namespace mqttd::codec {

struct FixedHeader {
  PacketType type{};
  std::uint8_t flags = 0;
  std::uint32_t remaining_length = 0;
  std::uint8_t header_size = 0;  // type byte plus the remaining-length bytes
};

enum class FrameStatus { Complete, NeedMore, Malformed };

// Parses the fixed header at the start of `buffer`. NeedMore means the varint is not complete
// yet; Malformed means the packet type is 0 or the varint runs past four bytes.
FrameStatus parse_fixed_header(Bytes buffer, FixedHeader& out);

// What went wrong, as the reason code the specification asks for, and a short explanation for
// the log and for the v5 Reason String.
// A bound of DecodeScratch was exceeded (the reason is then QuotaExceeded), so that the caller
// can count the hit against the right limit.
enum class DecodeBound : std::uint8_t { None, UserProperties, TopicFilters };

struct DecodeStatus {
  Reason reason = Reason::Success;
  std::string_view detail;
  DecodeBound bound = DecodeBound::None;
  bool ok() const { return reason == Reason::Success; }
};

// Reusable storage for the repeated fields of decoded packets, and the bounds on how much of
// them one packet may fill (the codec knows no broker: the owner of the scratch sets them).
struct DecodeScratch {
  // User properties per packet (a CONNECT's and its will's together); beyond: QuotaExceeded.
  std::size_t max_user_properties = SIZE_MAX;
  // Topic filters per SUBSCRIBE or UNSUBSCRIBE; beyond: QuotaExceeded.
  std::size_t max_topic_filters = SIZE_MAX;

  std::vector<UserProperty> user_properties;
  std::vector<UserProperty> will_user_properties;
  std::vector<std::uint32_t> subscription_identifiers;
  std::vector<SubscribeTopic> topics;
  std::vector<std::string_view> filters;
  std::vector<Reason> reasons;

  // Gives back the memory of every vector grown beyond `keep` entries: a scratch is reused for
  // every packet of a worker, so it would otherwise hold the largest packet's worth forever.
  void release_if_large(std::size_t keep = 64) {
    auto release = [keep](auto& v) {
      if (v.capacity() > keep) std::remove_reference_t<decltype(v)>().swap(v);
    };
    release(user_properties);
    release(will_user_properties);
    release(subscription_identifiers);
    release(topics);
    release(filters);
    release(reasons);
  }
};

// The first packet's protocol level, before a version is known. Errors in CONNECT are reported
// with the reason code a v5 CONNACK would carry (UnsupportedProtocolVersion, MalformedPacket,
// ProtocolError, ClientIdentifierNotValid).
DecodeStatus decode_connect(const FixedHeader& h, Bytes body, Connect& out, DecodeScratch& s);

DecodeStatus decode_connack(const FixedHeader& h, Bytes body, ProtocolVersion v, Connack& out, DecodeScratch& s);
DecodeStatus decode_publish(const FixedHeader& h, Bytes body, ProtocolVersion v, Publish& out, DecodeScratch& s);
DecodeStatus decode_ack(const FixedHeader& h, Bytes body, ProtocolVersion v, Ack& out, DecodeScratch& s);
DecodeStatus decode_subscribe(const FixedHeader& h, Bytes body, ProtocolVersion v, Subscribe& out, DecodeScratch& s);
DecodeStatus decode_suback(const FixedHeader& h, Bytes body, ProtocolVersion v, Suback& out, DecodeScratch& s);
DecodeStatus decode_unsubscribe(const FixedHeader& h, Bytes body, ProtocolVersion v, Unsubscribe& out,
                                DecodeScratch& s);
DecodeStatus decode_unsuback(const FixedHeader& h, Bytes body, ProtocolVersion v, Unsuback& out, DecodeScratch& s);
DecodeStatus decode_disconnect(const FixedHeader& h, Bytes body, ProtocolVersion v, Disconnect& out, DecodeScratch& s);
DecodeStatus decode_auth(const FixedHeader& h, Bytes body, ProtocolVersion v, Auth& out, DecodeScratch& s);
// PINGREQ and PINGRESP: only the flags and an empty body are checked.
DecodeStatus decode_empty(const FixedHeader& h, Bytes body);

// Calls fn(PropertyId, raw bytes of the whole property including its id) for each property of
// a property block that has already been validated by a decode function.
template <typename Fn>
void for_each_raw_property(Bytes block, Fn&& fn);

}  // namespace mqttd::codec

#include "codec/decode_inl.hpp"
