#include "broker/outbound_sender.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "broker/outbound_aliases.hpp"
#include "broker/session.hpp"
#include "codec/encode.hpp"
#include "codec/wire.hpp"

namespace mqttd {

OutboundSender::OutboundSender(ConnectionHost& host) : host_(host) {}

OutboundSender::~OutboundSender() = default;

void OutboundSender::negotiate(codec::ProtocolVersion version, std::uint16_t receive_maximum,
                               std::uint32_t maximum_packet_size, std::uint16_t topic_alias_maximum) {
  version_ = version;
  receive_maximum_ = receive_maximum;
  maximum_packet_size_ = maximum_packet_size;
  // The client takes topic aliases from us: the topics it receives most go by alias.
  if (version == codec::ProtocolVersion::v5 && topic_alias_maximum > 0)
    aliases_ = std::make_unique<OutboundAliases>(topic_alias_maximum);
}

void OutboundSender::discarded(const codec::Buffer& packet) const {
  spdlog::debug("event=packet_discarded type={} size={} client_maximum_packet_size={}",
                std::to_integer<unsigned>(packet.data()[0]) >> 4, packet.size(), maximum_packet_size_);
}

bool OutboundSender::output_full() const {
  return output_.pending_bytes() >= host_.settings().max_pending_output_bytes;
}

// Messages sent and not yet acknowledged stay in the session (offline too): their bytes are
// bounded like a queue's, so a client that never acknowledges holds at most
// max_queued_bytes_per_session in flight (one message always fits, so nothing stalls forever).
bool OutboundSender::inflight_bytes_full(const SessionHoldings& h, const Delivery& d) const {
  return !h.inflight.empty() &&
         h.inflight.bytes() + DeliveryQueue<Delivery>::cost(d) > host_.settings().max_queued_bytes_per_session;
}

std::uint16_t OutboundSender::send_window() const {
  return version_ == codec::ProtocolVersion::v5 ? receive_maximum_ : host_.settings().v311_inflight_window;
}

bool OutboundSender::send(Session& s, Delivery&& d) {
  if (d.qos == 0) {
    if (output_full()) {
      host_.metrics.drop(DropReason::QueueFull);
      return false;
    }
    return write_publish(d, 0, false);
  }
  SessionHoldings& h = s.holdings(host_.index());
  if (!h.queue.empty() || h.inflight.size() >= send_window() || output_full() || inflight_bytes_full(h, d)) {
    host_.enqueue(s, std::move(d));
    return false;
  }
  return send_inflight(h, std::move(d));
}

bool OutboundSender::send_inflight(SessionHoldings& h, Delivery&& d) {
  InflightMessage* m = h.inflight.insert(std::move(d));  // `d` is left as it was if full
  if (!m) {
    h.queue.push_front(std::move(d));
    return false;
  }
  if (!write_publish(m->delivery, m->packet_id, false)) {
    // Too large for this client: dropped as if delivered (MQTT 5 section 3.1.2.25).
    h.inflight.erase(m->packet_id);
    return true;
  }
  m->state = m->delivery.qos == 1 ? InflightMessage::State::AwaitingPuback : InflightMessage::State::AwaitingPubrec;
  return true;
}

bool OutboundSender::pump(Session& s) {
  SessionHoldings* h = s.holdings_if_any(host_.index());
  if (!h) return false;
  bool wrote = false;
  auto& queue = h->queue;
  while (!queue.empty() && h->inflight.size() < send_window() && !output_full() &&
         !inflight_bytes_full(*h, queue.front())) {
    Delivery d = queue.take_front();
    if (d.message->expired(host_.now())) {
      host_.metrics.drop(DropReason::Expired);
      continue;
    }
    // Queued under the permissions the session had then; the client may have fewer now.
    if (!d.message->directed() && !s.may_receive(d.message->topic())) {
      host_.metrics.drop(DropReason::NotAuthorized);
      continue;
    }
    if (!send_inflight(*h, std::move(d))) break;
    wrote = true;
  }
  return wrote;
}

void OutboundSender::resend(Session& s) {
  SessionHoldings* h = s.holdings_if_any(host_.index());
  if (!h) return;
  // A state store notification still queued was for the connection that registered, which has
  // ended (registrations end with it): dropped. One already sent is resent below like any QoS 1
  // message of the session [MQTT-4.4.0-1].
  if (std::any_of(h->queue.begin(), h->queue.end(), [](const Delivery& d) { return d.message->directed(); }))
    h->queue.extract_if([](const Delivery& d) { return d.message->directed(); },
                        [&](Delivery&&) { host_.metrics.drop(DropReason::SessionEnded); });
  // Held under the permissions the session had when they were sent; the client may have fewer
  // now (a policy change while it was away): what it may no longer receive is dropped.
  h->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (m.state != InflightMessage::State::AwaitingPubcomp && !m.delivery.message->directed() &&
        !s.may_receive(m.delivery.message->topic())) {
      host_.metrics.drop(DropReason::NotAuthorized);
      h->inflight.erase(m.packet_id);
    }
  });
  h->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (m.state == InflightMessage::State::AwaitingPubcomp) {
      codec::Ack rel;
      rel.type = codec::PacketType::Pubrel;
      rel.packet_id = m.packet_id;
      write_packet([&](codec::Buffer& b) { codec::encode_ack(rel, version_, b); });
    } else {
      write_publish(m.delivery, m.packet_id, true);
    }
  });
  pump(s);
}

bool OutboundSender::write_publish(const Delivery& d, std::uint16_t packet_id, bool dup) {
  return write_publish(d.message, d.qos, d.retain, d.subscription_ids, packet_id, dup);
}

bool OutboundSender::send_now(const MessageRef& message, bool retain, const SubscriptionIds& subscription_ids) {
  if (output_full()) {
    host_.metrics.drop(DropReason::QueueFull);
    return false;
  }
  return write_publish(message, 0, retain, subscription_ids, 0, false);
}

bool OutboundSender::write_publish(const MessageRef& message, std::uint8_t qos, bool retain,
                                   const SubscriptionIds& subscription_ids, std::uint16_t packet_id, bool dup) {
  const Message& m = *message;
  bool v5 = version_ == codec::ProtocolVersion::v5;
  std::size_t props = 0;
  std::uint32_t expiry = 0;
  if (v5) {
    props = m.forward_properties().size();
    if (m.expires()) {
      expiry = m.remaining_expiry_seconds(host_.now());
      props += 5;
    }
    for (std::size_t i = 0; i < subscription_ids.size(); ++i) props += 1 + codec::varint_size(subscription_ids[i]);
  }
  std::string_view topic = m.topic();
  OutboundAliases::Choice alias;
  if (v5 && aliases_) {
    alias = aliases_->choose(topic);
    props += 3;
    if (alias.established) topic = {};
  }
  std::size_t remaining = 2 + topic.size() + (qos ? 2 : 0) + m.payload().size() +
                          (v5 ? codec::varint_size(static_cast<std::uint32_t>(props)) + props : 0);
  std::size_t total = codec::packet_size(remaining);
  if (!fits(total) || remaining > codec::kMaxVarint) {
    host_.metrics.drop(DropReason::TooLarge);
    return false;
  }
  output_.take_buffers_from(host_.output_buffers());
  const std::size_t header_size = total - m.payload().size();
  std::byte* const header = output_.append(header_size);
  codec::Writer w(header);
  w.u8(static_cast<std::uint8_t>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)));
  w.varint(static_cast<std::uint32_t>(remaining));
  w.string(topic);
  if (qos) w.u16(packet_id);
  if (v5) {
    w.varint(static_cast<std::uint32_t>(props));
    w.raw(m.forward_properties());
    if (alias.alias) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::TopicAlias));
      w.u16(alias.alias);
      aliases_->commit(m.topic(), alias);
    }
    if (m.expires()) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::MessageExpiryInterval));
      w.u32(expiry);
    }
    for (std::size_t i = 0; i < subscription_ids.size(); ++i) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::SubscriptionIdentifier));
      w.varint(subscription_ids[i]);
    }
  }
  // The queue's buffer is not zeroed when it grows, and it held other clients' packets: a header
  // that wrote fewer bytes than it counted would send what was there before. Never expected; if
  // it ever happens, stop rather than leak.
  if (w.position() != header + header_size) [[unlikely]] {
    std::fprintf(stderr, "mqttd: PUBLISH header of %zu bytes counted as %zu\n",
                 static_cast<std::size_t>(w.position() - header), header_size);
    std::abort();
  }
  output_.append_payload(message, m.payload());
  host_.metrics.messages_out[qos].increment();
  return true;
}

}  // namespace mqttd
