#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/transport.hpp"
#include "codec/encode.hpp"
#include "codec/utf8.hpp"
#include "statestore/topics.hpp"

namespace mqttd {

using codec::PacketType;
using codec::ProtocolVersion;
using codec::Reason;

namespace {

bool is_v5(ProtocolVersion v) { return v == ProtocolVersion::v5; }

}  // namespace

ClientConnection::ClientConnection(ConnectionHost& host, Transport& transport)
    : host_(host),
      transport_(transport),
      id_(host.add_connection(*this)),
      connect_phase_(std::make_unique<ConnectPhase>()),
      last_receive_(host.now()),
      sender_(host) {
  connect_phase_->opened_at = host.now();
  host_.schedule_check(*this, next_deadline(host_.now()));  // the CONNECT timeout
}

ClientConnection::~ClientConnection() { finish_close(); }

namespace {
const std::string kNone;
}  // namespace

const std::string& ClientConnection::client_id() const {
  if (session_) return session_->client_id;
  return connect_phase_ ? connect_phase_->client_id : kNone;
}

const std::string& ClientConnection::principal_identity() const {
  if (connect_phase_) return connect_phase_->principal_identity;
  return session_ ? session_->principal_identity : kNone;
}

// ---------------------------------------------------------------- input

std::uint64_t ClientConnection::endpoint_id() const { return transport_.endpoint_id(); }

std::span<std::byte> ClientConnection::read_buffer() { return framer_.read_buffer(host_.shared_read_buffer()); }

void ClientConnection::commit_read(std::size_t n) {
  last_receive_ = host_.now();
  host_.metrics.bytes_in.add(n);
  process_and_keep(framer_.commit_read(host_.shared_read_buffer(), n));
}

void ClientConnection::on_bytes(codec::Bytes input) {
  last_receive_ = host_.now();
  host_.metrics.bytes_in.add(input.size());
  process_and_keep(framer_.append(input));
}

void ClientConnection::process_and_keep(codec::Bytes data) {
  process(data);
  framer_.keep(data);
}

void ClientConnection::process(codec::Bytes& data) {
  in_process_ = true;
  host_.begin_work_unit();
  struct Reset {
    bool& flag;
    ConnectionHost& host;
    ~Reset() {
      flag = false;
      host.release_large_scratch();
    }
  } reset{in_process_, host_};
  while (!data.empty() && state_ != State::Closing && state_ != State::Attaching) {
    codec::FixedHeader h;
    auto status = codec::parse_fixed_header(data, h);
    if (status == codec::FrameStatus::Malformed) {
      protocol_violation(Reason::MalformedPacket, "malformed fixed header");
      return;
    }
    if (state_ == State::AwaitingConnect && std::to_integer<unsigned>(data[0]) >> 4 != 1) {
      log_close("first packet is not CONNECT");
      close();
      return;
    }
    if (status == codec::FrameStatus::NeedMore) return;
    std::size_t total = h.header_size + std::size_t{h.remaining_length};
    if (state_ == State::AwaitingConnect && total > host_.settings().max_pre_connect_packet_bytes)
      return refuse_oversized_connect(data, total);
    if (total > host_.settings().max_packet_size_bytes) {
      protocol_violation(Reason::PacketTooLarge, "packet exceeds the maximum packet size");
      return;
    }
    if (data.size() < total) {
      framer_.expect(total);
      return;
    }
    framer_.expect(0);
    // A unit of work is a run of state store requests and the acknowledgements between them: any
    // other packet may do much more (a SUBSCRIBE's retained messages), so what follows it reads
    // the clock again (a PUBLISH elsewhere than the state store starts one after it is routed).
    if (h.type != PacketType::Publish && h.type != PacketType::Puback) host_.begin_work_unit();
    handle_packet(h, data.subspan(h.header_size, h.remaining_length));
    data = data.subspan(total);
  }
}

bool ClientConnection::reading_paused() const { return state_ == State::Attaching || sender_.output_full(); }

void ClientConnection::handle_packet(const codec::FixedHeader& h, codec::Bytes body) {
  if (state_ == State::AwaitingConnect) {
    handle_connect(h, body);
    return;
  }
  switch (h.type) {
    case PacketType::Connect:
      protocol_violation(Reason::ProtocolError, "second CONNECT");
      return;
    case PacketType::Publish:
      handle_publish(h, body);
      return;
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      handle_ack(h, body);
      return;
    case PacketType::Subscribe:
      handle_subscribe(h, body);
      return;
    case PacketType::Unsubscribe:
      handle_unsubscribe(h, body);
      return;
    case PacketType::Pingreq:
      if (auto st = codec::decode_empty(h, body); !st.ok()) return protocol_violation(st.reason, st.detail);
      write_packet([](codec::Buffer& b) { codec::encode_pingresp(b); });
      return;
    case PacketType::Disconnect:
      handle_disconnect(h, body);
      return;
    case PacketType::Auth:
      handle_auth(h, body);
      return;
    default:
      protocol_violation(Reason::ProtocolError, "packet type not sent by clients");
      return;
  }
}

// ---------------------------------------------------------------- PUBLISH and acknowledgements

void ClientConnection::handle_publish(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Publish p;
  auto& scratch = host_.scratch();
  if (auto st = codec::decode_publish(h, body, version_, p, scratch); !st.ok()) return refuse_packet(st);
  const auto& settings = host_.settings();
  std::string_view topic = p.topic;
  if (auto alias = p.properties.topic_alias) {
    if (*alias == 0 || *alias > settings.topic_alias_maximum)
      return protocol_violation(Reason::TopicAliasInvalid, "topic alias out of range");
    if (!topic_aliases_) topic_aliases_ = std::make_unique<std::string[]>(settings.topic_alias_maximum);
    std::string& slot = topic_aliases_[*alias - 1];
    if (topic.empty()) {
      if (slot.empty()) return protocol_violation(Reason::ProtocolError, "unknown topic alias");
      topic = slot;
    } else if (slot.capacity() > 1024 && topic.size() <= 1024) {
      slot = std::string(topic);  // a long topic replaced: its memory is not kept for the connection's life
    } else {
      slot.assign(topic);
    }
  }
  if (!codec::valid_topic_name(topic)) return protocol_violation(Reason::TopicNameInvalid, "invalid topic name");
  if (codec::more_levels_than(topic, settings.max_topic_levels)) {
    host_.limit_reached(Limit::TopicLevels, client_id(), "PUBLISH topic");
    return protocol_violation(Reason::TopicNameInvalid, "topic has more levels than allowed");
  }
  if (!p.properties.subscription_identifiers.empty())
    return protocol_violation(Reason::ProtocolError, "subscription identifier in PUBLISH");

  auto acknowledge = [&](Reason reason) {
    if (p.qos == 0) return;
    codec::Ack ack;
    ack.type = p.qos == 1 ? PacketType::Puback : PacketType::Pubrec;
    ack.packet_id = p.packet_id;
    ack.reason = reason;
    write_packet([&](codec::Buffer& b) { codec::encode_ack(ack, version_, b); });
  };
  if (p.properties.payload_format_indicator.value_or(0) == 1 && !codec::valid_utf8(codec::as_string(p.payload))) {
    if (p.qos == 0) return protocol_violation(Reason::PayloadFormatInvalid, "payload is not UTF-8");
    return acknowledge(Reason::PayloadFormatInvalid);
  }
  // Clients may not publish under the state store's notification namespace (a notification
  // could be forged); the request topic is the state store's.
  if (!may_publish(topic) || statestore::is_reserved_topic(topic)) {
    // v5: PUBACK/PUBREC 0x87. 3.1.1 has no way to say it: a normal acknowledgement, and the
    // message is dropped (as the source broker does). QoS 0: dropped.
    spdlog::debug("event=publish_denied client_id={} topic=\"{}\"", logged_client_id(client_id()), topic);
    host_.metrics.drop(DropReason::NotAuthorized);
    if (p.qos == 2 && !is_v5(version_)) held().inbound_qos2.insert(p.packet_id);  // PUBREL still follows
    return acknowledge(is_v5(version_) ? Reason::NotAuthorized : Reason::Success);
  }
  if (p.qos == 2) {
    if (held().inbound_qos2.contains(p.packet_id)) return acknowledge(Reason::Success);  // a resend: once only
    if (held().inbound_qos2.size() >= settings.receive_maximum)
      return protocol_violation(Reason::ReceiveMaximumExceeded, "too many unreleased QoS 2 messages");
  }

  if (topic == statestore::kRequestTopic) {
    auto reason = handle_state_store_request(p);
    if (!reason) return;
    if (p.qos == 2) held().inbound_qos2.insert(p.packet_id);
    return acknowledge(*reason);
  }

  // Forward the publisher's properties except the ones recomputed per receiver.
  codec::Bytes forward = p.raw_properties;
  bool strip = p.properties.topic_alias || p.properties.message_expiry_interval;
  codec::Buffer* stripped = nullptr;
  if (strip) {
    stripped = &host_.encode_scratch();
    codec::for_each_raw_property(p.raw_properties, [&](codec::PropertyId id, codec::Bytes raw) {
      if (id == codec::PropertyId::TopicAlias || id == codec::PropertyId::MessageExpiryInterval) return;
      stripped->insert(stripped->end(), raw.begin(), raw.end());
    });
    forward = *stripped;
  }
  MessageFields f;
  f.topic = topic;
  f.payload = p.payload;
  f.forward_properties = forward;
  f.qos = p.qos;
  f.retain = p.retain;
  f.origin = session_.get();
  std::optional<std::uint32_t> expiry = p.properties.message_expiry_interval;
  if (settings.max_message_expiry_seconds)
    expiry = std::min(expiry.value_or(*settings.max_message_expiry_seconds), *settings.max_message_expiry_seconds);
  if (expiry) f.expires_at = host_.now() + std::chrono::seconds(*expiry);
  MessageRef msg = Message::create(f);
  host_.metrics.messages_in[p.qos].increment();
  std::size_t receivers = host_.publish(msg, client_id());
  host_.begin_work_unit();  // a fan-out may have taken a while
  if (receivers == ConnectionHost::kRetainRefused) {
    // The retained store is full: v5 says so (0x97 Quota exceeded); 3.1.1 cannot, so it gets an
    // ordinary acknowledgement and the message is dropped, as a denied publish is.
    if (p.qos == 2 && !is_v5(version_)) held().inbound_qos2.insert(p.packet_id);  // PUBREL still follows
    return acknowledge(is_v5(version_) ? Reason::QuotaExceeded : Reason::Success);
  }
  if (p.qos == 2) held().inbound_qos2.insert(p.packet_id);
  acknowledge(receivers == 0 ? Reason::NoMatchingSubscribers : Reason::Success);
}

void ClientConnection::handle_ack(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Ack a;
  if (auto st = codec::decode_ack(h, body, version_, a, host_.scratch()); !st.ok()) return refuse_packet(st);
  // Looked up without creating the holdings: a stray acknowledgement costs an idle session nothing.
  SessionHoldings* holdings = session_->holdings_if_any(host_.index());
  InflightMessage* m = holdings ? holdings->inflight.find(a.packet_id) : nullptr;
  // An acknowledgement of the wrong kind for a packet id in flight (PUBACK for a QoS 2 message,
  // PUBCOMP before PUBREC, PUBREC for QoS 1): 3.1.1 has no reason codes, it is a protocol
  // violation [MQTT-4.8.0-1]; a v5 one is ignored. Unknown ids are late duplicates: ignored.
  auto wrong_kind = [&] {
    if (!is_v5(version_)) protocol_violation(Reason::ProtocolError, "acknowledgement of the wrong type");
  };
  switch (a.type) {
    case PacketType::Puback: {
      if (!m) return;  // a late or duplicate acknowledgement
      if (m->state != InflightMessage::State::AwaitingPuback) return wrong_kind();
      holdings->inflight.erase(a.packet_id);
      pump_queue();
      return;
    }
    case PacketType::Pubrec: {
      codec::Ack rel;
      rel.type = PacketType::Pubrel;
      rel.packet_id = a.packet_id;
      if (!m) {
        rel.reason = Reason::PacketIdentifierNotFound;
      } else if (m->state == InflightMessage::State::AwaitingPubcomp) {
        // PUBREC again (our PUBREL crossed it, or was lost with a connection): PUBREL again, 0x00.
      } else if (m->state != InflightMessage::State::AwaitingPubrec) {
        return wrong_kind();
      } else if (static_cast<unsigned>(a.reason) >= 0x80) {
        holdings->inflight.erase(a.packet_id);
        pump_queue();
        return;
      } else {
        m->state = InflightMessage::State::AwaitingPubcomp;
        holdings->inflight.release_message(a.packet_id);  // delivered; only the identifier remains
      }
      write_packet([&](codec::Buffer& b) { codec::encode_ack(rel, version_, b); });
      return;
    }
    case PacketType::Pubrel: {
      codec::Ack comp;
      comp.type = PacketType::Pubcomp;
      comp.packet_id = a.packet_id;
      if (!holdings || holdings->inbound_qos2.erase(a.packet_id) == 0) comp.reason = Reason::PacketIdentifierNotFound;
      write_packet([&](codec::Buffer& b) { codec::encode_ack(comp, version_, b); });
      return;
    }
    case PacketType::Pubcomp: {
      if (!m) return;
      if (m->state != InflightMessage::State::AwaitingPubcomp) return wrong_kind();
      holdings->inflight.erase(a.packet_id);
      pump_queue();
      return;
    }
    default:
      return;
  }
}

// ---------------------------------------------------------------- DISCONNECT / AUTH

void ClientConnection::handle_disconnect(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Disconnect d;
  if (auto st = codec::decode_disconnect(h, body, version_, d, host_.scratch()); !st.ok()) return refuse_packet(st);
  if (auto expiry = d.properties.session_expiry_interval) {
    if (session_expiry_was_zero_ && *expiry != 0)
      return protocol_violation(Reason::ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT");
    const auto& settings = host_.settings();
    session_expiry_ =
        settings.max_session_expiry_seconds ? std::min(*expiry, *settings.max_session_expiry_seconds) : *expiry;
    session_->expiry_interval = session_expiry_;
  }
  if (d.reason != Reason::DisconnectWithWill) will_discarded_ = true;
  log_close("client sent DISCONNECT");
  close();
}

void ClientConnection::handle_auth(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Auth a;
  if (auto st = codec::decode_auth(h, body, version_, a, host_.scratch()); !st.ok()) return refuse_packet(st);
  if (state_ != State::Connected) return protocol_violation(Reason::ProtocolError, "AUTH before the CONNACK");
  reauthenticate(a);
}

// ---------------------------------------------------------------- output

void ClientConnection::request_flush() { host_.request_flush(*this); }

void ClientConnection::consume_written(std::size_t n) {
  sender_.output().consume(n);
  host_.metrics.bytes_out.add(n);
}

void ClientConnection::flush_output() { transport_.flush(); }

void ClientConnection::send(Delivery&& d) {
  // A connection that is closing would lose what it writes: QoS 1/2 wait in the session for the
  // next connection (under the queue's limit), QoS 0 is dropped as for any offline session.
  if (state_ == State::Closing) {
    if (d.qos == 0) {
      host_.metrics.drop(DropReason::SessionEnded);
    } else {
      host_.enqueue(*session_, std::move(d));
    }
    return;
  }
  if (sender_.send(*session_, std::move(d))) request_flush();
}

void ClientConnection::send_now(const MessageRef& message, bool retain, const SubscriptionIds& subscription_ids) {
  if (state_ == State::Closing) {
    host_.metrics.drop(DropReason::SessionEnded);
    return;
  }
  if (sender_.send_now(message, retain, subscription_ids)) request_flush();
}

void ClientConnection::pump_queue() {
  if (!session_ || state_ != State::Connected) return;
  if (sender_.pump(*session_)) request_flush();
}

void ClientConnection::on_output_drained() {
  pump_queue();
  // Written: the output's buffers go back to the worker's pool (an idle client holds none).
  sender_.output().give_buffers_to(host_.output_buffers());
}

// ---------------------------------------------------------------- closing

// Every server DISCONNECT carries a Reason String: it is allowed whatever Request Problem
// Information says (MQTT 5 section 3.1.2.11.7 exempts DISCONNECT), it tells the client why, and
// some clients (paho-mqtt 1.6) read the reason code only when properties follow it.
void ClientConnection::write_disconnect(Reason reason, std::string_view why) {
  if (state_ != State::Connected || !is_v5(version_)) return;
  codec::Disconnect d;
  d.reason = reason;
  d.properties.reason_string = why.empty() ? codec::reason_name(reason) : why;
  write_packet([&](codec::Buffer& b) { codec::encode_disconnect(d, version_, b); }, &d.properties.reason_string);
}

void ClientConnection::count_bound(const codec::DecodeStatus& st, std::string_view who) {
  if (st.bound == codec::DecodeBound::UserProperties)
    host_.limit_reached(Limit::UserProperties, who, st.detail);
  else if (st.bound == codec::DecodeBound::TopicFilters)
    host_.limit_reached(Limit::FiltersPerSubscribe, who, st.detail);
}

void ClientConnection::refuse_packet(const codec::DecodeStatus& st) {
  count_bound(st, client_id());
  protocol_violation(st.reason, st.detail);
}

void ClientConnection::protocol_violation(Reason reason, std::string_view why) {
  if (state_ == State::Closing) return;
  log_close(why);
  write_disconnect(reason, why);
  close();
}

void ClientConnection::disconnect(Reason reason, std::string_view why) {
  if (state_ == State::Closing) return;
  write_disconnect(reason, why);
  spdlog::info("event=disconnect client_id={} peer={} reason=\"{}\"", logged_client_id(client_id()), transport_.peer(),
               codec::reason_name(reason));
  close();
}

void ClientConnection::publish_will_now() {
  if (!will_ || will_discarded_ || !connected()) return;
  host_.publish_will(will_, will_authority());
  will_discarded_ = true;
}

void ClientConnection::taken_over(bool session_ends) {
  spdlog::info("event=session_taken_over client_id={} peer={}", logged_client_id(client_id()), transport_.peer());
  if (will_ && !will_discarded_ && (session_ends || will_delay_ == 0)) host_.publish_will(will_, will_authority());
  will_discarded_ = true;
  write_disconnect(Reason::SessionTakenOver, "another connection took over this client id");
  if (session_) {
    session_->connection = nullptr;
    session_->online.store(false, std::memory_order_relaxed);
    session_.reset();
  }
  close();
}

void ClientConnection::superseded() {
  log_close("a newer connection with the same client id took the session");
  close();
}

void ClientConnection::close() {
  if (state_ == State::Closing) return;
  state_ = State::Closing;
  transport_.close();
}

void ClientConnection::on_transport_closed() { finish_close(); }

void ClientConnection::finish_close() {
  if (finished_) return;
  finished_ = true;
  state_ = State::Closing;
  if (connect_phase_ && connect_phase_->authentication_abandoned)
    connect_phase_->authentication_abandoned->store(true, std::memory_order_release);
  host_.remove_connection(*this);
  host_.connection_closed();
  host_.count_port_event(endpoint_id(), PortEvent::Closed);
  if (state_store_registrations_) host_.state_store_connection_closed(id_);
  if (!session_) return;
  if (session_->connection != this) return;
  if (will_ && !will_discarded_) {
    if (will_delay_ == 0 || session_expiry_ == 0) {
      host_.publish_will(will_, will_authority());
    } else {
      held().pending_will = PendingWill{will_, will_authority(),
                                        host_.now() + std::chrono::seconds(std::min(will_delay_, session_expiry_))};
    }
  }
  host_.session_disconnected(session_);
  session_.reset();
}

Clock::time_point ClientConnection::tick() {
  const Clock::time_point now = host_.now();
  // The CONNECT timeout runs until the client is connected: it also bounds a pending
  // authentication and a session handover, so neither can hold a connection forever.
  if ((state_ == State::AwaitingConnect || state_ == State::Attaching) &&
      now - connect_phase_->opened_at > host_.settings().connect_timeout) {
    host_.limit_reached(Limit::ConnectTimeout, transport_.peer(),
                        state_ == State::AwaitingConnect ? "no CONNECT" : "CONNECT not completed");
    log_close(state_ == State::AwaitingConnect ? "no CONNECT in time" : "CONNECT not completed in time");
    close();
    return Clock::time_point::max();
  }
  if (authority_ && authority_->credentials_expire && state_ != State::Closing &&
      host_.wall_now() >= *authority_->credentials_expire) {
    // As the source broker does: the connection is closed, with no DISCONNECT.
    log_close(fmt::format("credentials expired ({})",
                          authority_->security->authenticator->method_name(authority_->method_index)));
    close();
    return Clock::time_point::max();
  }
  if (state_ == State::Connected && keep_alive_ != 0 && now > keep_alive_deadline()) {
    disconnect(Reason::KeepAliveTimeout, "keep alive timeout");
    return Clock::time_point::max();
  }
  return next_deadline(now);
}

// last_receive_ comes from the worker's tick clock, up to one tick early: allowing one tick more
// never disconnects a client before one and a half keep-alive periods (MQTT 3.1.2.10).
Clock::time_point ClientConnection::keep_alive_deadline() const {
  return last_receive_ + std::chrono::milliseconds(keep_alive_ * 1500) + ConnectionHost::kTickInterval;
}

Clock::time_point ClientConnection::next_deadline(Clock::time_point now) const {
  if (state_ == State::Closing) return Clock::time_point::max();
  auto next = Clock::time_point::max();
  if (state_ == State::AwaitingConnect || state_ == State::Attaching)
    next = connect_phase_->opened_at + host_.settings().connect_timeout + std::chrono::nanoseconds(1);
  if (state_ == State::Connected && keep_alive_ != 0)
    next = std::min(next, keep_alive_deadline() + std::chrono::nanoseconds(1));
  if (authority_ && authority_->credentials_expire) {
    auto left = *authority_->credentials_expire - host_.wall_now();
    next = std::min(next, now + std::chrono::duration_cast<Clock::duration>(std::max(left, decltype(left)::zero())));
  }
  return next;
}

void ClientConnection::log_close(std::string_view why) {
  spdlog::info("event=close client_id={} peer={} reason=\"{}\"", logged_client_id(client_id()), transport_.peer(), why);
}

}  // namespace mqttd
