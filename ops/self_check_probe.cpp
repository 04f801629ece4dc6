#include "ops/self_check_probe.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "codec/decode.hpp"
#include "codec/encode.hpp"

namespace mqttd::ops {

namespace {

using codec::PacketType;
using codec::ProtocolVersion;
using codec::Reason;
constexpr auto kV5 = ProtocolVersion::v5;

std::string hex(Reason r) { return fmt::format("0x{:02X}", static_cast<unsigned>(r)); }

const char* packet_name(PacketType t) {
  switch (t) {
    case PacketType::Connect:
      return "CONNECT";
    case PacketType::Connack:
      return "CONNACK";
    case PacketType::Publish:
      return "PUBLISH";
    case PacketType::Puback:
      return "PUBACK";
    case PacketType::Pubrec:
      return "PUBREC";
    case PacketType::Pubrel:
      return "PUBREL";
    case PacketType::Pubcomp:
      return "PUBCOMP";
    case PacketType::Subscribe:
      return "SUBSCRIBE";
    case PacketType::Suback:
      return "SUBACK";
    case PacketType::Unsubscribe:
      return "UNSUBSCRIBE";
    case PacketType::Unsuback:
      return "UNSUBACK";
    case PacketType::Pingreq:
      return "PINGREQ";
    case PacketType::Pingresp:
      return "PINGRESP";
    case PacketType::Disconnect:
      return "DISCONNECT";
    case PacketType::Auth:
      return "AUTH";
  }
  return "packet";
}

}  // namespace

SelfCheckProbe::SelfCheckProbe(std::string client_id, std::string topic, std::vector<std::byte> nonce)
    : client_id_(std::move(client_id)), topic_(std::move(topic)), nonce_(std::move(nonce)) {}

std::vector<std::byte> SelfCheckProbe::start() {
  codec::Connect c;
  c.version = kV5;
  c.clean_start = true;
  c.keep_alive = 60;
  c.client_id = client_id_;
  c.properties.session_expiry_interval = 0;  // nothing of the probe outlives its connection
  // The broker drops what is larger rather than send it: the probe reads small packets only.
  c.properties.maximum_packet_size = static_cast<std::uint32_t>(kMaxPacketBytes);
  std::vector<std::byte> out;
  codec::encode_connect(c, out);
  return out;
}

std::string SelfCheckProbe::waiting_for() const {
  switch (step_) {
    case Step::AwaitConnack:
      return "CONNACK";
    case Step::AwaitSuback:
      return "SUBACK";
    case Step::AwaitPingresp:
      return "PINGRESP";
    case Step::AwaitEcho:
      if (!puback_received_ && !echo_received_) return "PUBACK and PUBLISH back";
      return puback_received_ ? "PUBLISH back" : "PUBACK";
    case Step::AwaitUnsuback:
      return "UNSUBACK";
    case Step::Done:
      break;
  }
  return "nothing";
}

void SelfCheckProbe::fail(std::string why) {
  if (verdict_ != Verdict::Running) return;
  verdict_ = Verdict::Failed;
  failure_ = std::move(why);
}

void SelfCheckProbe::connection_closed() { fail("connection closed by the broker while waiting for " + waiting_for()); }

void SelfCheckProbe::timed_out(unsigned seconds) { fail(fmt::format("no {} within {} s", waiting_for(), seconds)); }

std::vector<std::byte> SelfCheckProbe::feed(std::span<const std::byte> bytes) {
  std::vector<std::byte> out;
  if (verdict_ != Verdict::Running) return out;
  input_.insert(input_.end(), bytes.begin(), bytes.end());
  std::size_t used = 0;
  while (verdict_ == Verdict::Running) {
    codec::FixedHeader h;
    auto rest = std::span<const std::byte>(input_).subspan(used);
    auto status = codec::parse_fixed_header(rest, h);
    if (status == codec::FrameStatus::Malformed) {
      fail("malformed packet from the broker while waiting for " + waiting_for());
      break;
    }
    if (status == codec::FrameStatus::NeedMore) break;
    std::size_t size = h.header_size + std::size_t{h.remaining_length};
    if (size > kMaxPacketBytes) {
      fail(fmt::format("{} of {} bytes from the broker (at most {} expected)", packet_name(h.type), size,
                       kMaxPacketBytes));
      break;
    }
    if (rest.size() < size) break;
    handle(rest.first(size), h.header_size, out);
    used += size;
  }
  input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(std::min(used, input_.size())));
  return out;
}

void SelfCheckProbe::handle(std::span<const std::byte> packet, std::size_t header_size, std::vector<std::byte>& out) {
  codec::FixedHeader h;
  codec::parse_fixed_header(packet, h);
  auto body = packet.subspan(header_size);
  codec::DecodeScratch scratch;
  auto malformed = [&](const codec::DecodeStatus& s) {
    if (s.ok()) return false;
    fail(fmt::format("malformed {} from the broker: {}", packet_name(h.type), s.detail));
    return true;
  };
  auto unexpected = [&] {
    fail(fmt::format("unexpected {} while waiting for {}", packet_name(h.type), waiting_for()));
  };

  switch (h.type) {
    case PacketType::Connack: {
      codec::Connack c;
      if (malformed(codec::decode_connack(h, body, kV5, c, scratch))) return;
      if (step_ != Step::AwaitConnack) return unexpected();
      if (c.reason != Reason::Success) return fail("CONNACK " + hex(c.reason));
      step_ = Step::AwaitSuback;
      codec::SubscribeTopic topic{topic_, 1};
      codec::Subscribe s;
      s.packet_id = kSubscribeId;
      s.topics = std::span<const codec::SubscribeTopic>(&topic, 1);
      codec::encode_subscribe(s, kV5, out);
      return;
    }
    case PacketType::Suback: {
      codec::Suback s;
      if (malformed(codec::decode_suback(h, body, kV5, s, scratch))) return;
      if (step_ != Step::AwaitSuback || s.packet_id != kSubscribeId) return unexpected();
      if (s.reasons.size() != 1) return fail(fmt::format("SUBACK with {} reason codes (1 expected)", s.reasons.size()));
      if (s.reasons[0] != Reason::GrantedQos1)
        return fail("SUBACK " + hex(s.reasons[0]) +
                    (s.reasons[0] < Reason::UnspecifiedError ? " (0x01 expected)" : ""));
      step_ = Step::AwaitPingresp;
      codec::encode_pingreq(out);
      return;
    }
    case PacketType::Pingresp: {
      if (malformed(codec::decode_empty(h, body))) return;
      if (step_ != Step::AwaitPingresp) return unexpected();
      step_ = Step::AwaitEcho;
      codec::Publish p;
      p.qos = 1;
      p.topic = topic_;
      p.packet_id = kPublishId;
      p.payload = nonce_;
      codec::encode_publish(p, kV5, out);
      return;
    }
    case PacketType::Puback: {
      codec::Ack a;
      if (malformed(codec::decode_ack(h, body, kV5, a, scratch))) return;
      if (step_ != Step::AwaitEcho || puback_received_ || a.packet_id != kPublishId) return unexpected();
      // 0x10 (no matching subscribers) means the probe's own subscription did not match.
      if (a.reason != Reason::Success) return fail("PUBACK " + hex(a.reason));
      puback_received_ = true;
      after_echo_and_puback(out);
      return;
    }
    case PacketType::Publish: {
      codec::Publish p;
      if (malformed(codec::decode_publish(h, body, kV5, p, scratch))) return;
      // Another client's message on the topic may reach the subscription before its SUBACK; before
      // the CONNACK nothing may arrive.
      if (step_ == Step::AwaitConnack) return unexpected();
      if (p.qos == 2) return fail("PUBLISH at QoS 2 (subscribed at QoS 1)");
      if (p.qos == 1) {
        codec::Ack ack;
        ack.type = PacketType::Puback;
        ack.packet_id = p.packet_id;
        codec::encode_ack(ack, kV5, out);
      }
      bool ours =
          step_ == Step::AwaitEcho && !echo_received_ && p.topic == topic_ && std::ranges::equal(p.payload, nonce_);
      if (!ours) return;  // a retained or another client's message on the topic
      if (p.qos != 1) return fail("PUBLISH back at QoS 0 (1 expected)");
      echo_received_ = true;
      after_echo_and_puback(out);
      return;
    }
    case PacketType::Unsuback: {
      codec::Unsuback u;
      if (malformed(codec::decode_unsuback(h, body, kV5, u, scratch))) return;
      if (step_ != Step::AwaitUnsuback || u.packet_id != kUnsubscribeId) return unexpected();
      if (u.reasons.size() != 1 || u.reasons[0] != Reason::Success)
        return fail("UNSUBACK " + (u.reasons.empty() ? std::string("without a reason code") : hex(u.reasons[0])));
      step_ = Step::Done;
      codec::Disconnect d;
      codec::encode_disconnect(d, kV5, out);
      verdict_ = Verdict::Passed;
      return;
    }
    case PacketType::Disconnect: {
      codec::Disconnect d;
      if (malformed(codec::decode_disconnect(h, body, kV5, d, scratch))) return;
      return fail("DISCONNECT " + hex(d.reason) + " from the broker while waiting for " + waiting_for());
    }
    default:
      return unexpected();
  }
}

void SelfCheckProbe::after_echo_and_puback(std::vector<std::byte>& out) {
  if (!puback_received_ || !echo_received_) return;
  step_ = Step::AwaitUnsuback;
  std::string_view filter = topic_;
  codec::Unsubscribe u;
  u.packet_id = kUnsubscribeId;
  u.filters = std::span<const std::string_view>(&filter, 1);
  codec::encode_unsubscribe(u, kV5, out);
}

}  // namespace mqttd::ops
