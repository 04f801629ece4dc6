// Encoding of MQTT 3.1.1 and 5.0 packets, appended to a byte vector. Sizes are computed first
// so each packet is written in one pass.
#pragma once

#include <vector>

#include "codec/packets.hpp"

namespace mqttd::codec {

using Buffer = std::vector<std::byte>;

// The size of the property block's contents (without its length prefix).
std::size_t properties_size(const Properties& p);

// Writes the properties (without the length prefix) to `out`, which holds properties_size(p).
void encode_property_contents(const Properties& p, std::byte* out);

void encode_connect(const Connect& p, Buffer& out);
void encode_connack(const Connack& p, ProtocolVersion v, Buffer& out);
void encode_publish(const Publish& p, ProtocolVersion v, Buffer& out);
void encode_ack(const Ack& p, ProtocolVersion v, Buffer& out);
void encode_subscribe(const Subscribe& p, ProtocolVersion v, Buffer& out);
void encode_suback(const Suback& p, ProtocolVersion v, Buffer& out);
void encode_unsubscribe(const Unsubscribe& p, ProtocolVersion v, Buffer& out);
void encode_unsuback(const Unsuback& p, ProtocolVersion v, Buffer& out);
void encode_disconnect(const Disconnect& p, ProtocolVersion v, Buffer& out);
void encode_auth(const Auth& p, Buffer& out);
void encode_pingreq(Buffer& out);
void encode_pingresp(Buffer& out);

// Encoded size of a whole packet whose remaining length is `remaining`.
inline std::size_t packet_size(std::size_t remaining) {
  return 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining;
}

}  // namespace mqttd::codec
