// The write side of one connection: the bytes queued for the client and the flow control of
// deliveries to it. QoS 0 messages are written at once (dropped while the output is over its
// bound); QoS 1 and 2 messages go in flight while the client's Receive Maximum (or the 3.1.1
// window), the output bound and the session's in-flight bytes allow, and wait in the session's
// queue otherwise (the host's enqueue() applies the one queue-drop policy). No packet larger
// than the client's Maximum Packet Size is written [MQTT-3.1.2-24].
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "broker/connection_host.hpp"
#include "broker/output_queue.hpp"
#include "codec/types.hpp"

namespace mqttd {

class OutboundAliases;
class Session;
struct Delivery;
struct SessionHoldings;
class SubscriptionIds;

class OutboundSender {
 public:
  explicit OutboundSender(ConnectionHost& host);
  ~OutboundSender();
  OutboundSender(const OutboundSender&) = delete;
  OutboundSender& operator=(const OutboundSender&) = delete;

  // What the client said in its CONNECT (3.1.1: only the version).
  void negotiate(codec::ProtocolVersion version, std::uint16_t receive_maximum, std::uint32_t maximum_packet_size,
                 std::uint16_t topic_alias_maximum);
  codec::ProtocolVersion version() const { return version_; }

  OutputQueue& output() { return output_; }
  const OutputQueue& output() const { return output_; }
  // True while the output holds as much as it may: reading pauses and QoS 0 messages are dropped.
  bool output_full() const;

  // Encodes one packet with `encode` into the host's scratch buffer and queues it. A packet over
  // the client's Maximum Packet Size goes without its Reason String (`drop_reason` removes it)
  // when that makes it fit [MQTT-3.2.2-19], [MQTT-3.14.2-3], and is discarded otherwise, as if
  // sent [MQTT-3.1.2-25]. True if queued.
  template <typename Fn>
  bool write_packet(Fn&& encode, std::optional<std::string_view>* drop_reason = nullptr);

  // A delivery to the connected client of `s`. True if something was written.
  bool send(Session& s, Delivery&& d);
  // A QoS 0 message, written now unless the output is full (then dropped). True if written.
  bool send_now(const MessageRef& message, bool retain, const SubscriptionIds& subscription_ids);
  // Sends what the session's queue holds while the window allows. True if something was written.
  bool pump(Session& s);
  // A resumed session: in-flight messages again (DUP) and PUBRELs, then the queue.
  void resend(Session& s);

 private:
  // False if no packet identifier was free (the delivery is queued again).
  bool send_inflight(SessionHoldings& h, Delivery&& d);
  // False if the message exceeds the client's Maximum Packet Size (nothing is written).
  bool write_publish(const Delivery& d, std::uint16_t packet_id, bool dup);
  bool write_publish(const MessageRef& message, std::uint8_t qos, bool retain, const SubscriptionIds& ids,
                     std::uint16_t packet_id, bool dup);
  bool inflight_bytes_full(const SessionHoldings& h, const Delivery& d) const;
  std::uint16_t send_window() const;
  bool fits(std::size_t size) const { return size <= maximum_packet_size_; }
  void discarded(const codec::Buffer& packet) const;

  ConnectionHost& host_;
  OutputQueue output_;
  std::unique_ptr<OutboundAliases> aliases_;  // set when the client takes topic aliases
  std::uint32_t maximum_packet_size_ = codec::kMaxVarint + 5;
  std::uint16_t receive_maximum_ = 65535;
  codec::ProtocolVersion version_ = codec::ProtocolVersion::v5;
};

template <typename Fn>
bool OutboundSender::write_packet(Fn&& encode, std::optional<std::string_view>* drop_reason) {
  codec::Buffer& b = host_.encode_scratch();
  encode(b);
  if (!fits(b.size()) && drop_reason && drop_reason->has_value()) {
    drop_reason->reset();
    b.clear();
    encode(b);
  }
  bool queued = fits(b.size());
  if (queued) {
    output_.take_buffers_from(host_.output_buffers());
    std::memcpy(output_.append(b.size()), b.data(), b.size());
  } else {
    discarded(b);
  }
  host_.release_large_scratch();
  return queued;
}

}  // namespace mqttd
