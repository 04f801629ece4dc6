// The connection engine: CONNECT (what the client asks, what the broker's settings allow), the
// CONNACK once the session is attached, and refusing a CONNECT in the form its client reads.
#include <spdlog/spdlog.h>

#include <random>

#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"
#include "broker/transport.hpp"
#include "codec/encode.hpp"
#include "codec/utf8.hpp"
#include "statestore/topics.hpp"

namespace mqttd {

using codec::ProtocolVersion;
using codec::Reason;

namespace {

constexpr std::uint32_t kDefaultV311SessionExpiry = 7 * 24 * 3600;

std::string assign_client_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "mqttd-";
  std::uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) id += kHex[(a >> (i * 4)) & 0xF];
  for (int i = 0; i < 8; ++i) id += kHex[(b >> (i * 4)) & 0xF];
  return id;
}

bool is_v5(ProtocolVersion v) { return v == ProtocolVersion::v5; }

}  // namespace

// A CONNECT larger than the pre-CONNECT bound: nothing of it is buffered. A v5 client (its
// protocol level is readable once 9 bytes of the variable header arrived) gets CONNACK 0x95; a
// 3.1.1 client has no such code and is closed.
void ClientConnection::refuse_oversized_connect(codec::Bytes data, std::size_t total) {
  host_.limit_reached(Limit::PreConnectPacketSize, transport_.peer(), fmt::format("{} bytes", total));
  codec::FixedHeader h;
  codec::Bytes header = data;
  std::size_t level_at = 0;
  if (codec::parse_fixed_header(header, h) != codec::FrameStatus::Malformed) level_at = h.header_size + 6;
  bool v5 = level_at != 0 && data.size() > level_at && std::to_integer<unsigned>(data[level_at]) == 5;
  version_ = v5 ? ProtocolVersion::v5 : ProtocolVersion::v311;
  if (v5) {
    refuse_connect(Reason::PacketTooLarge, "CONNECT exceeds the maximum size before authentication");
  } else {
    log_close("CONNECT exceeds the maximum size before authentication");
    close();
  }
}

void ClientConnection::handle_connect(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Connect c;
  c.version = static_cast<codec::ProtocolVersion>(0);  // set by the decoder once the level is read
  auto st = codec::decode_connect(h, body, c, host_.scratch());
  if (!st.ok() && st.reason != Reason::UnsupportedProtocolVersion && c.version != codec::ProtocolVersion::v311 &&
      c.version != codec::ProtocolVersion::v5) {
    // Not MQTT (another protocol name, or cut before the level): no answer in a format the
    // client may not read; closed [MQTT-3.1.2-1], [MQTT-3.1.4-1].
    log_close(st.detail);
    close();
    return;
  }
  version_ = c.version;
  if (st.reason == Reason::UnsupportedProtocolVersion) {
    // Answer in the 3.1.1 format, which every version's client can read (MQTT 5 section 3.1.2.2).
    std::byte* out = sender_.output().append(4);
    out[0] = std::byte{0x20};
    out[1] = std::byte{0x02};
    out[2] = std::byte{0x00};
    out[3] = std::byte{0x01};
    log_close(st.detail);
    close();
    return;
  }
  if (!st.ok()) {
    count_bound(st, c.client_id.empty() ? std::string_view(transport_.peer()) : c.client_id);
    return refuse_connect(st.reason, st.detail);
  }

  const auto& settings = host_.settings();
  bool v5 = is_v5(version_);
  if (c.will && codec::more_levels_than(c.will_topic, settings.max_topic_levels)) {
    host_.limit_reached(Limit::TopicLevels, c.client_id, "will topic");
    // v5: CONNACK 0x90, "the Will Topic Name is not malformed, but is not accepted by this
    // Server" (MQTT 5 section 3.2.2.2). 3.1.1 has no code for it: closed, as for a will topic
    // the decoder refuses.
    return refuse_connect(v5 ? Reason::TopicNameInvalid : Reason::MalformedPacket,
                          "will topic has more levels than allowed");
  }
  // A will may not be a state store request or notification (a notification could be forged, and
  // the request topic is served by the state store, never delivered): refused as a will topic
  // this server does not accept (v5 0x90; 3.1.1 has no code for it: Not authorized, 0x05).
  if (c.will && (c.will_topic == statestore::kRequestTopic || statestore::is_reserved_topic(c.will_topic)))
    return refuse_connect(v5 ? Reason::TopicNameInvalid : Reason::NotAuthorized, "will topic is the state store's");
  std::string client_id(c.client_id);
  bool assigned = false;
  if (client_id.empty()) {
    if (!v5 && !c.clean_start)
      return refuse_connect(Reason::ClientIdentifierNotValid, "empty client id needs a clean session");
    client_id = assign_client_id();
    assigned = true;
  }

  keep_alive_ = c.keep_alive;
  bool keep_alive_changed = false;
  if (v5 && settings.max_keep_alive_seconds && (keep_alive_ == 0 || keep_alive_ > *settings.max_keep_alive_seconds)) {
    keep_alive_ = *settings.max_keep_alive_seconds;
    keep_alive_changed = true;
  }
  clean_start_ = c.clean_start;
  bool expiry_changed = false;
  std::uint16_t receive_maximum = 65535, topic_alias_maximum = 0;
  std::uint32_t maximum_packet_size = codec::kMaxVarint + 5;
  if (v5) {
    session_expiry_ = c.properties.session_expiry_interval.value_or(0);
    receive_maximum = c.properties.receive_maximum.value_or(65535);
    maximum_packet_size = c.properties.maximum_packet_size.value_or(codec::kMaxVarint + 5);
    topic_alias_maximum = c.properties.topic_alias_maximum.value_or(0);
    request_problem_information_ = c.properties.request_problem_information.value_or(1) == 1;
  } else {
    // MQTT 3.1.1 has no session expiry: a persistent session lasts maxSessionExpirySeconds (as
    // the source broker does), or a week when that is not set, so that abandoned client ids
    // cannot pile up sessions forever.
    session_expiry_ = c.clean_start ? 0 : settings.max_session_expiry_seconds.value_or(kDefaultV311SessionExpiry);
  }
  if (settings.max_session_expiry_seconds && session_expiry_ > *settings.max_session_expiry_seconds) {
    session_expiry_ = *settings.max_session_expiry_seconds;
    expiry_changed = v5;
  }
  session_expiry_was_zero_ = session_expiry_ == 0;
  if (settings.max_receive_maximum) receive_maximum = std::min(receive_maximum, *settings.max_receive_maximum);
  sender_.negotiate(version_, receive_maximum, maximum_packet_size, topic_alias_maximum);

  if (c.will) {
    // The will's forwarded properties are encoded once now; Will Delay and Message Expiry are
    // applied by the broker, not forwarded as they are.
    codec::Properties fwd;
    const auto& wp = c.will_properties;
    fwd.payload_format_indicator = wp.payload_format_indicator;
    fwd.content_type = wp.content_type;
    fwd.response_topic = wp.response_topic;
    fwd.correlation_data = wp.correlation_data;
    fwd.user_properties = wp.user_properties;
    codec::Buffer& props = host_.encode_scratch();
    props.resize(codec::properties_size(fwd));
    codec::encode_property_contents(fwd, props.data());
    MessageFields f;
    f.topic = c.will_topic;
    f.payload = c.will_payload;
    f.forward_properties = props;
    f.qos = c.will_qos;
    f.retain = c.will_retain;
    std::optional<std::uint32_t> expiry = wp.message_expiry_interval;
    if (settings.max_message_expiry_seconds)
      expiry = std::min(expiry.value_or(*settings.max_message_expiry_seconds), *settings.max_message_expiry_seconds);
    if (expiry) f.expires_at = host_.now() + std::chrono::seconds(*expiry);
    will_ = Message::create(f);
    will_delay_ = wp.will_delay_interval.value_or(0);
  }

  connect_phase_->client_id = client_id;
  state_ = State::Attaching;  // reading waits until the session is attached (or the client refused)
  // Kept for the CONNACK, which attach() sends once the session is here.
  connect_phase_->assigned_client_id = assigned;
  connect_phase_->keep_alive_changed = keep_alive_changed;
  connect_phase_->expiry_changed = expiry_changed;
  authenticate(c);
}

void ClientConnection::attach(SessionPtr session, bool session_present) {
  if (state_ != State::Attaching) {
    // The client left while the session was on its way; leave it offline.
    session_ = std::move(session);
    session_->connection = this;
    return;
  }
  session_ = std::move(session);
  session_->connection = this;
  session_->online.store(true, std::memory_order_relaxed);
  session_->expiry_interval = session_expiry_;
  // Back within the will delay: no will.
  if (SessionHoldings* h = session_->holdings_if_any(host_.index())) h->pending_will = PendingWill{};
  session_->set_permissions(permissions());
  session_->principal_identity = connect_phase_->principal_identity;
  state_ = State::Connected;
  host_.schedule_check(*this, next_deadline(host_.now()));  // keep alive, credential expiry

  const auto& settings = host_.settings();
  codec::Connack ack;
  ack.session_present = session_present;
  ack.reason = Reason::Success;
  if (is_v5(version_)) {
    if (connect_phase_->assigned_client_id) ack.properties.assigned_client_identifier = session_->client_id;
    if (connect_phase_->keep_alive_changed) ack.properties.server_keep_alive = keep_alive_;
    if (connect_phase_->expiry_changed) ack.properties.session_expiry_interval = session_expiry_;
    ack.properties.receive_maximum = settings.receive_maximum;
    // 268,435,456 (256 MiB, the High profile) is one past what clients such as paho accept.
    ack.properties.maximum_packet_size = std::min<std::uint32_t>(settings.max_packet_size_bytes, 268'435'455);
    ack.properties.topic_alias_maximum = settings.topic_alias_maximum;
    // [MQTT-4.12.0-5]: a successful CONNACK carries the CONNECT's authentication method.
    if (authority_ && !authority_->enhanced_method.empty())
      ack.properties.authentication_method = authority_->enhanced_method;
  }
  write_packet([&](codec::Buffer& b) { codec::encode_connack(ack, version_, b); });
  host_.metrics.connacks[0].increment();
  connect_phase_.reset();  // the CONNECT is done: an idle client carries none of it
  spdlog::debug("event=connected client_id={} peer={} protocol={} session_present={} keep_alive={}",
                logged_client_id(session_->client_id), transport_.peer(), is_v5(version_) ? 5 : 4, session_present,
                keep_alive_);
  sender_.resend(*session_);
  request_flush();
  // Packets that arrived behind the CONNECT waited for the session; handle them now.
  if (!in_process_ && framer_.has_pending()) process_and_keep(framer_.pending());
  transport_.resume_reading();
}

void ClientConnection::refuse_connect(Reason reason, std::string_view why) {
  log_close(why);
  host_.metrics.connacks[static_cast<std::uint8_t>(reason)].increment();
  if (is_v5(version_)) {
    codec::Connack ack;
    ack.reason = reason;
    if (!why.empty()) ack.properties.reason_string = why;
    write_packet([&](codec::Buffer& b) { codec::encode_connack(ack, version_, b); }, &ack.properties.reason_string);
  } else if (reason != Reason::MalformedPacket && reason != Reason::ProtocolError) {
    codec::Connack ack;
    ack.reason = static_cast<Reason>(codec::to_311_connack(reason));
    write_packet([&](codec::Buffer& b) { codec::encode_connack(ack, version_, b); });
  }
  close();
}

}  // namespace mqttd
