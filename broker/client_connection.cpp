#include "broker/client_connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "broker/authentication_pool.hpp"
#include "broker/broker.hpp"
#include "codec/encode.hpp"
#include "codec/utf8.hpp"
#include "codec/wire.hpp"
#include "broker/outbound_aliases.hpp"
#include "broker/retained_store.hpp"
#include "broker/transport.hpp"
#include "broker/worker.hpp"

namespace mqttd {

using codec::PacketType;
using codec::ProtocolVersion;
using codec::Reason;

namespace {

// A connection's own read buffer grows by at least this much at a time.
constexpr std::size_t kMinReadChunk = 16 * 1024;
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

ClientConnection::ClientConnection(Worker& worker, Transport& transport, std::uint64_t id)
    : worker_(worker), transport_(transport), id_(id), opened_at_(worker.now()), last_receive_(worker.now()) {
  worker_.add_connection(this);
}

ClientConnection::~ClientConnection() { finish_close(); }

const std::string& ClientConnection::client_id() const { return session_ ? session_->client_id : pending_client_id_; }

// ---------------------------------------------------------------- input

std::uint64_t ClientConnection::endpoint_id() const { return transport_.endpoint_id(); }

std::span<std::byte> ClientConnection::read_buffer() {
  if (partial_size_ == 0) {
    reading_shared_buffer_ = true;
    return worker_.shared_read_buffer();
  }
  reading_shared_buffer_ = false;
  // The buffer grows with the bytes that arrived (at most doubling), never to the size a packet
  // announces: a client that announces 16 MiB and sends 10 bytes holds a few KiB, not 16 MiB.
  // While the fixed header itself is incomplete (needed_ unknown), read a chunk.
  std::size_t missing = needed_ > partial_size_ ? needed_ - partial_size_ : kMinReadChunk;
  std::size_t want = std::max<std::size_t>(std::min(missing, std::max(partial_size_, kMinReadChunk)), 1);
  if (partial_.size() < partial_size_ + want) partial_.resize(partial_size_ + want);
  return {partial_.data() + partial_size_, partial_.size() - partial_size_};
}

void ClientConnection::commit_read(std::size_t n) {
  last_receive_ = worker_.now();
  if (reading_shared_buffer_) {
    codec::Bytes data(worker_.shared_read_buffer().data(), n);
    process(data);
    save_partial(data);
    return;
  }
  partial_size_ += n;
  codec::Bytes data(partial_.data(), partial_size_);
  process(data);
  save_partial(data);
}

void ClientConnection::on_bytes(codec::Bytes input) {
  last_receive_ = worker_.now();
  if (partial_size_ == 0) {
    process(input);
    save_partial(input);
    return;
  }
  if (partial_.size() < partial_size_ + input.size()) partial_.resize(partial_size_ + input.size());
  std::memcpy(partial_.data() + partial_size_, input.data(), input.size());
  partial_size_ += input.size();
  codec::Bytes data(partial_.data(), partial_size_);
  process(data);
  save_partial(data);
}

// Keeps the unprocessed tail `rest` (which may already lie inside partial_) for the next read.
void ClientConnection::save_partial(codec::Bytes rest) {
  if (rest.empty()) {
    partial_size_ = 0;
    // An idle connection holds no read buffer.
    if (!partial_.empty()) std::vector<std::byte>().swap(partial_);
    return;
  }
  if (partial_.empty() || rest.data() < partial_.data() || rest.data() >= partial_.data() + partial_.size()) {
    partial_.assign(rest.begin(), rest.end());
  } else if (rest.data() != partial_.data()) {
    std::memmove(partial_.data(), rest.data(), rest.size());
  }
  partial_size_ = rest.size();
}

void ClientConnection::process(codec::Bytes& data) {
  in_process_ = true;
  struct Reset {
    bool& flag;
    Worker& worker;
    ~Reset() {
      flag = false;
      worker.release_large_scratch();
    }
  } reset{in_process_, worker_};
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
    if (state_ == State::AwaitingConnect && total > worker_.broker().settings().max_pre_connect_packet_bytes)
      return refuse_oversized_connect(data, total);
    if (total > worker_.broker().settings().max_packet_size_bytes) {
      protocol_violation(Reason::PacketTooLarge, "packet exceeds the maximum packet size");
      return;
    }
    if (data.size() < total) {
      needed_ = total;
      return;
    }
    needed_ = 0;
    handle_packet(h, data.subspan(h.header_size, h.remaining_length));
    data = data.subspan(total);
  }
}

// A CONNECT larger than the pre-CONNECT bound: nothing of it is buffered. A v5 client (its
// protocol level is readable once 9 bytes of the variable header arrived) gets CONNACK 0x95; a
// 3.1.1 client has no such code and is closed.
void ClientConnection::refuse_oversized_connect(codec::Bytes data, std::size_t total) {
  worker_.broker().limit_reached(Limit::PreConnectPacketSize, transport_.peer(), fmt::format("{} bytes", total));
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

bool ClientConnection::reading_paused() const { return state_ == State::Attaching || output_full(); }

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

// ---------------------------------------------------------------- CONNECT

void ClientConnection::handle_connect(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Connect c;
  c.version = static_cast<codec::ProtocolVersion>(0);  // set by the decoder once the level is read
  auto st = codec::decode_connect(h, body, c, worker_.scratch());
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
    std::byte* out = output_.append(4);
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

  const auto& settings = worker_.broker().settings();
  bool v5 = is_v5(version_);
  if (c.will && codec::more_levels_than(c.will_topic, settings.max_topic_levels)) {
    worker_.broker().limit_reached(Limit::TopicLevels, c.client_id, "will topic");
    // v5: CONNACK 0x90, "the Will Topic Name is not malformed, but is not accepted by this
    // Server" (MQTT 5 section 3.2.2.2). 3.1.1 has no code for it: closed, as for a will topic
    // the decoder refuses.
    return refuse_connect(v5 ? Reason::TopicNameInvalid : Reason::MalformedPacket,
                          "will topic has more levels than allowed");
  }
  std::string client_id(c.client_id);
  bool assigned = false;
  if (client_id.empty()) {
    if (!v5 && !c.clean_start)
      return refuse_connect(Reason::ClientIdentifierNotValid, "empty client id needs a clean session");
    client_id = assign_client_id();
    assigned = true;
  }
  if (c.properties.authentication_method)
    return refuse_connect(Reason::BadAuthenticationMethod, "no enhanced authentication method is configured");

  keep_alive_ = c.keep_alive;
  bool keep_alive_changed = false;
  if (v5 && settings.max_keep_alive_seconds && (keep_alive_ == 0 || keep_alive_ > *settings.max_keep_alive_seconds)) {
    keep_alive_ = *settings.max_keep_alive_seconds;
    keep_alive_changed = true;
  }
  clean_start_ = c.clean_start;
  bool expiry_changed = false;
  if (v5) {
    session_expiry_ = c.properties.session_expiry_interval.value_or(0);
    client_receive_maximum_ = c.properties.receive_maximum.value_or(65535);
    client_maximum_packet_size_ = c.properties.maximum_packet_size.value_or(codec::kMaxVarint + 5);
    // The client takes topic aliases from us: the topics it receives most go by alias.
    if (c.properties.topic_alias_maximum.value_or(0) > 0)
      outbound_aliases_ = std::make_unique<OutboundAliases>(*c.properties.topic_alias_maximum);
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
  if (settings.max_receive_maximum)
    client_receive_maximum_ = std::min(client_receive_maximum_, *settings.max_receive_maximum);

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
    codec::Buffer& props = worker_.encode_scratch();
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
    if (expiry) f.expires_at = worker_.now() + std::chrono::seconds(*expiry);
    will_ = Message::create(f);
    will_delay_ = wp.will_delay_interval.value_or(0);
  }

  pending_client_id_ = client_id;
  state_ = State::Attaching;  // reading waits until the session is attached (or the client refused)
  // Kept for the CONNACK, which attach() sends once the session is here.
  connack_assigned_ = assigned;
  connack_keep_alive_changed_ = keep_alive_changed;
  connack_expiry_changed_ = expiry_changed;
  authenticate(c);
}

void ClientConnection::authenticate(const codec::Connect& c) {
  security_ = worker_.broker().port_security(endpoint_id());
  if (!security_ || !security_->authenticator) return worker_.connect(*this, pending_client_id_, clean_start_);
  authn::Credentials credentials;
  credentials.client_id = pending_client_id_;
  credentials.username = c.username;
  if (c.password) credentials.password = codec::as_string(*c.password);
  credentials.certificate = transport_.peer_certificate();
  auto authenticator = security_->authenticator;
  if (!authenticator->may_be_slow(credentials)) return admit(authenticator->authenticate(credentials));

  // A password check costs a scrypt: done on the authentication thread, with copies of the
  // credentials (the read buffer is reused, and the client may leave before the answer).
  struct Job {
    std::string client_id;
    std::optional<std::string> username;
    std::optional<std::string> password;
  };
  auto job = std::make_shared<Job>();
  job->client_id = pending_client_id_;
  if (credentials.username) job->username.emplace(*credentials.username);
  if (credentials.password) job->password.emplace(*credentials.password);
  Worker* worker = &worker_;
  std::uint64_t connection = id_;
  authentication_abandoned_ = std::make_shared<std::atomic<bool>>(false);
  std::string peer = transport_.peer();
  bool queued = worker_.broker().authentication_pool().submit(
      [job, authenticator, worker, connection] {
        authn::Credentials copy;
        copy.client_id = job->client_id;
        if (job->username) copy.username = *job->username;
        if (job->password) copy.password = *job->password;
        auto result = std::make_shared<authn::Result>(authenticator->authenticate(copy));
        worker->post([connection, result](Worker& w) {
          if (ClientConnection* c = w.find_connection(connection)) c->admit(std::move(*result));
        });
      },
      authentication_abandoned_,
      [job, worker, peer] {
        worker->broker().count_event(SecurityEvent::AuthenticationSkipped);
        spdlog::debug("event=authentication_skipped client_id={} peer={} reason=\"the client left before its check\"",
                      job->client_id, peer);
      });
  if (!queued) refuse_connect(Reason::ServerBusy, "too many authentications in progress");
}

void ClientConnection::admit(authn::Result result) {
  if (state_ != State::Attaching) return;  // the client left while it was being authenticated
  const std::string& client_id = pending_client_id_;
  if (result.outcome != authn::Result::Outcome::Accepted) {
    spdlog::info("event=authentication_failed client_id={} peer={} method={} reason=\"{}\"", client_id,
                 transport_.peer(), result.method.empty() ? "none" : result.method, result.detail);
    bool bad_password = result.outcome == authn::Result::Outcome::BadCredentials;
    return refuse_connect(bad_password ? Reason::BadUserNameOrPassword : Reason::NotAuthorized,
                          bad_password ? "bad user name or password" : "not authorized");
  }
  credentials_expire_ = result.expires;
  principal_ = std::make_shared<const authz::Principal>(std::move(result.principal));
  const authn::PeerCertificate* certificate = transport_.peer_certificate();
  // Length-prefixed fields, so that no choice of username or subject can imitate another
  // identity; the BrokerAuthentication's name, so that another resource's user of the same name
  // is someone else; every subject of the verified chain, so that another CA's leaf with the same
  // subject is someone else.
  principal_identity_.clear();
  auto field = [this](std::string_view v) { principal_identity_ += fmt::format("{}:{};", v.size(), v); };
  field(security_->authenticator->resource().name);
  field(result.method);
  field(principal_->username.value_or(""));
  if (certificate)
    for (const auto& subject : certificate->subjects) field(subject);
  if (security_->policy) {
    permissions_ = security_->policy->bind(*principal_);
    if (!permissions_->may_connect()) {
      spdlog::info("event=connect_denied client_id={} peer={} username={} policy={}", client_id, transport_.peer(),
                   principal_->username.value_or(""), security_->policy->name());
      return refuse_connect(Reason::NotAuthorized, "not authorized to connect");
    }
    if (will_ && !permissions_->may_publish(will_->topic())) {
      spdlog::info("event=connect_denied client_id={} peer={} reason=\"will topic not authorized\"", client_id,
                   transport_.peer());
      return refuse_connect(Reason::NotAuthorized, "not authorized to publish the will topic");
    }
  }
  spdlog::debug("event=authenticated client_id={} peer={} method={} username={} attributes={}", client_id,
                transport_.peer(), result.method, principal_->username.value_or(""), principal_->attributes.size());
  worker_.connect(*this, pending_client_id_, clean_start_);
}

bool ClientConnection::may_publish(std::string_view topic) {
  if (!permissions_) return true;
  if (!permissions_->cache_decisions()) return permissions_->may_publish(topic);
  if (auto known = publish_decisions_.find(*permissions_, topic)) return *known;
  bool allowed = permissions_->may_publish(topic);
  publish_decisions_.store(*permissions_, topic, allowed);
  return allowed;
}

void ClientConnection::reauthorize() {
  if (state_ == State::Closing) return;
  auto next = worker_.broker().port_security(endpoint_id());
  if (!principal_) {
    // Admitted while the port did not authenticate, or still being authenticated under the old
    // settings (admit() will use those): it may stay only if the port still admits everyone.
    bool was_open = !security_ || !security_->authenticator;
    bool now_open = !next || !next->authenticator;
    if (was_open && now_open) {
      security_ = std::move(next);
      return;
    }
    return disconnect(Reason::AdministrativeAction, "authentication settings changed");
  }
  // The same BrokerAuthentication (a reloaded password file is the same resource): the client
  // authenticated as it would now.
  bool authenticator_same = next && next->authenticator && security_ && security_->authenticator &&
                            next->authenticator->resource() == security_->authenticator->resource();
  if (!authenticator_same) {
    disconnect(Reason::AdministrativeAction, "authentication settings changed");
    return;
  }
  std::shared_ptr<const authz::Permissions> permissions = next->policy ? next->policy->bind(*principal_) : nullptr;
  bool same = (!permissions && !permissions_) || (permissions && permissions_ && *permissions == *permissions_);
  if (!same) {
    spdlog::info("event=permissions_changed client_id={} peer={}", client_id(), transport_.peer());
    disconnect(Reason::AdministrativeAction, "authorization policy changed");
    return;
  }
  security_ = std::move(next);
  permissions_ = std::move(permissions);
  publish_decisions_.clear();
  if (session_) session_->set_permissions(permissions_);
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
  session_->pending_will = PendingWill{};  // back within the will delay: no will
  session_->set_permissions(permissions_);
  session_->principal_identity = principal_identity_;
  state_ = State::Connected;
  worker_.schedule_check(*this, next_deadline(worker_.now()));  // keep alive, credential expiry

  const auto& settings = worker_.broker().settings();
  codec::Connack ack;
  ack.session_present = session_present;
  ack.reason = Reason::Success;
  if (is_v5(version_)) {
    if (connack_assigned_) ack.properties.assigned_client_identifier = session_->client_id;
    if (connack_keep_alive_changed_) ack.properties.server_keep_alive = keep_alive_;
    if (connack_expiry_changed_) ack.properties.session_expiry_interval = session_expiry_;
    ack.properties.receive_maximum = settings.receive_maximum;
    // 268,435,456 (256 MiB, the High profile) is one past what clients such as paho accept.
    ack.properties.maximum_packet_size = std::min<std::uint32_t>(settings.max_packet_size_bytes, 268'435'455);
    ack.properties.topic_alias_maximum = settings.topic_alias_maximum;
  }
  write_packet([&](codec::Buffer& b) { codec::encode_connack(ack, version_, b); });
  spdlog::debug("event=connected client_id={} peer={} protocol={} session_present={} keep_alive={}",
                session_->client_id, transport_.peer(), is_v5(version_) ? 5 : 4, session_present, keep_alive_);
  resend_session_state();
  if (!in_process_ && partial_size_ > 0) {
    // Packets that arrived behind the CONNECT waited for the session; handle them now.
    codec::Bytes data(partial_.data(), partial_size_);
    process(data);
    save_partial(data);
  }
  transport_.resume_reading();
}

void ClientConnection::refuse_connect(Reason reason, std::string_view why) {
  log_close(why);
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

// ---------------------------------------------------------------- PUBLISH and acknowledgements

void ClientConnection::handle_publish(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Publish p;
  auto& scratch = worker_.scratch();
  if (auto st = codec::decode_publish(h, body, version_, p, scratch); !st.ok()) return refuse_packet(st);
  const auto& settings = worker_.broker().settings();
  std::string_view topic = p.topic;
  if (auto alias = p.properties.topic_alias) {
    if (*alias == 0 || *alias > settings.topic_alias_maximum)
      return protocol_violation(Reason::TopicAliasInvalid, "topic alias out of range");
    if (topic_aliases_.size() < settings.topic_alias_maximum) topic_aliases_.resize(settings.topic_alias_maximum);
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
    worker_.broker().limit_reached(Limit::TopicLevels, client_id(), "PUBLISH topic");
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
  if (!may_publish(topic)) {
    // v5: PUBACK/PUBREC 0x87. 3.1.1 has no way to say it: a normal acknowledgement, and the
    // message is dropped (as the source broker does). QoS 0: dropped.
    spdlog::debug("event=publish_denied client_id={} topic=\"{}\"", client_id(), topic);
    worker_.messages_dropped.increment();
    if (p.qos == 2 && !is_v5(version_)) session_->inbound_qos2.insert(p.packet_id);  // PUBREL still follows
    return acknowledge(is_v5(version_) ? Reason::NotAuthorized : Reason::Success);
  }
  if (p.qos == 2) {
    if (session_->inbound_qos2.contains(p.packet_id)) return acknowledge(Reason::Success);  // a resend: once only
    if (session_->inbound_qos2.size() >= settings.receive_maximum)
      return protocol_violation(Reason::ReceiveMaximumExceeded, "too many unreleased QoS 2 messages");
  }

  // Forward the publisher's properties except the ones recomputed per receiver.
  codec::Bytes forward = p.raw_properties;
  bool strip = p.properties.topic_alias || p.properties.message_expiry_interval;
  codec::Buffer* stripped = nullptr;
  if (strip) {
    stripped = &worker_.encode_scratch();
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
  if (expiry) f.expires_at = worker_.now() + std::chrono::seconds(*expiry);
  MessageRef msg = Message::create(f);
  worker_.messages_received.increment();
  std::size_t receivers = worker_.publish(msg, client_id());
  if (receivers == Worker::kRetainRefused) {
    // The retained store is full: v5 says so (0x97 Quota exceeded); 3.1.1 cannot, so it gets an
    // ordinary acknowledgement and the message is dropped, as a denied publish is.
    if (p.qos == 2 && !is_v5(version_)) session_->inbound_qos2.insert(p.packet_id);  // PUBREL still follows
    return acknowledge(is_v5(version_) ? Reason::QuotaExceeded : Reason::Success);
  }
  if (p.qos == 2) session_->inbound_qos2.insert(p.packet_id);
  acknowledge(receivers == 0 ? Reason::NoMatchingSubscribers : Reason::Success);
}

void ClientConnection::handle_ack(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Ack a;
  if (auto st = codec::decode_ack(h, body, version_, a, worker_.scratch()); !st.ok()) return refuse_packet(st);
  auto& inflight = session_->inflight;
  InflightMessage* m = inflight.find(a.packet_id);
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
      inflight.erase(a.packet_id);
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
        inflight.erase(a.packet_id);
        pump_queue();
        return;
      } else {
        m->state = InflightMessage::State::AwaitingPubcomp;
        inflight.release_message(a.packet_id);  // delivered; only the identifier remains
      }
      write_packet([&](codec::Buffer& b) { codec::encode_ack(rel, version_, b); });
      return;
    }
    case PacketType::Pubrel: {
      codec::Ack comp;
      comp.type = PacketType::Pubcomp;
      comp.packet_id = a.packet_id;
      if (session_->inbound_qos2.erase(a.packet_id) == 0) comp.reason = Reason::PacketIdentifierNotFound;
      write_packet([&](codec::Buffer& b) { codec::encode_ack(comp, version_, b); });
      return;
    }
    case PacketType::Pubcomp: {
      if (!m) return;
      if (m->state != InflightMessage::State::AwaitingPubcomp) return wrong_kind();
      inflight.erase(a.packet_id);
      pump_queue();
      return;
    }
    default:
      return;
  }
}

// ---------------------------------------------------------------- SUBSCRIBE / UNSUBSCRIBE

void ClientConnection::handle_subscribe(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Subscribe s;
  if (auto st = codec::decode_subscribe(h, body, version_, s, worker_.scratch()); !st.ok()) return refuse_packet(st);
  bool v5 = is_v5(version_);
  const auto& settings = worker_.broker().settings();
  std::uint32_t identifier =
      s.properties.subscription_identifiers.empty() ? 0 : s.properties.subscription_identifiers[0];

  struct RetainedRequest {
    std::string filter;
    SubscriptionOptions options;
  };
  std::vector<Reason> reasons;
  std::vector<IndexChange> changes;
  std::vector<RetainedRequest> retained;
  for (const auto& t : s.topics) {
    codec::SharedFilter shared;
    bool is_shared = codec::is_shared_filter(t.filter);
    bool valid = is_shared ? codec::parse_shared_filter(t.filter, shared) : codec::valid_topic_filter(t.filter);
    if (!valid) {
      reasons.push_back(v5 ? Reason::TopicFilterInvalid : Reason::UnspecifiedError);
      continue;
    }
    // The filter the index will hold: its levels are what matching walks.
    if (codec::more_levels_than(is_shared ? shared.filter : t.filter, settings.max_topic_levels)) {
      worker_.broker().limit_reached(Limit::TopicLevels, client_id(), "SUBSCRIBE filter");
      reasons.push_back(v5 ? Reason::TopicFilterInvalid : Reason::UnspecifiedError);
      continue;
    }
    if (is_shared && t.no_local) return protocol_violation(Reason::ProtocolError, "No Local on a shared subscription");
    if (permissions_ &&
        permissions_->subscribe_coverage(is_shared ? shared.filter : t.filter) == authz::Permissions::Coverage::None) {
      spdlog::debug("event=subscribe_denied client_id={} filter=\"{}\"", client_id(), t.filter);
      reasons.push_back(v5 ? Reason::NotAuthorized : Reason::UnspecifiedError);  // 0x87, or 0x80 in 3.1.1
      continue;
    }
    SubscriptionOptions opts;
    opts.qos = t.qos;
    opts.no_local = t.no_local;
    opts.retain_as_published = t.retain_as_published;
    opts.retain_handling = t.retain_handling;
    opts.identifier = identifier;
    auto it = session_->subscriptions.find(t.filter);
    bool inserted = it == session_->subscriptions.end();
    if (inserted) {
      // Replacing a subscription is always allowed; a new one only below the bound.
      if (session_->subscriptions.size() >= settings.max_subscriptions_per_session) {
        worker_.broker().limit_reached(Limit::SubscriptionsPerSession, client_id(), "SUBSCRIBE");
        reasons.push_back(v5 ? Reason::QuotaExceeded : Reason::UnspecifiedError);
        continue;
      }
      it = session_->subscriptions.try_emplace(std::string(t.filter)).first;
    }
    it->second.options = opts;
    IndexChange ch;
    ch.add = true;
    ch.options = opts;
    if (is_shared) {
      if (!it->second.shared_filter) it->second.shared_filter = std::make_shared<const std::string>(t.filter);
      ch.filter = shared.filter;
      ch.share_name = shared.group;
      ch.share_filter = it->second.shared_filter;
    } else {
      ch.filter = t.filter;
      if (t.retain_handling == 0 || (t.retain_handling == 1 && inserted))
        retained.push_back(RetainedRequest{std::string(t.filter), opts});
    }
    changes.push_back(std::move(ch));
    reasons.push_back(static_cast<Reason>(t.qos));
  }
  std::uint16_t packet_id = s.packet_id;
  std::uint64_t connection = id_;
  SessionPtr session = session_;
  auto done = [connection, session, packet_id, reasons = std::move(reasons),
               retained = std::move(retained)](Worker& w) {
    ClientConnection* c = w.find_connection(connection);
    if (!c || c->session_ != session || !c->connected()) return;
    codec::Suback ack;
    ack.packet_id = packet_id;
    ack.reasons = reasons;
    c->write_packet([&](codec::Buffer& b) { codec::encode_suback(ack, c->version_, b); });
    std::vector<MessageRef> messages;
    for (const auto& r : retained) {
      messages.clear();
      w.broker().retained().match(r.filter, w.now(), messages);
      for (auto& m : messages) {
        if (!c->session_->may_receive(m->topic())) continue;
        Delivery d;
        d.qos = std::min(m->qos(), r.options.qos);
        d.retain = true;
        d.subscription_ids.add(r.options.identifier);
        d.message = std::move(m);
        c->send(std::move(d));
      }
    }
  };
  worker_.change_subscriptions(session_, std::move(changes), std::move(done));
}

void ClientConnection::handle_unsubscribe(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Unsubscribe u;
  if (auto st = codec::decode_unsubscribe(h, body, version_, u, worker_.scratch()); !st.ok()) return refuse_packet(st);
  std::vector<Reason> reasons;
  std::vector<IndexChange> changes;
  const auto& settings = worker_.broker().settings();
  for (auto filter : u.filters) {
    auto it = session_->subscriptions.find(filter);
    if (it == session_->subscriptions.end()) {
      // Not subscribed: a filter deeper than the bound never could be, so it is invalid.
      if (codec::more_levels_than(filter, settings.max_topic_levels)) {
        worker_.broker().limit_reached(Limit::TopicLevels, client_id(), "UNSUBSCRIBE filter");
        reasons.push_back(Reason::TopicFilterInvalid);
        continue;
      }
      reasons.push_back(Reason::NoSubscriptionExisted);
      continue;
    }
    session_->subscriptions.erase(it);
    changes.push_back(IndexChange::removal(filter));
    reasons.push_back(Reason::Success);
  }
  std::uint16_t packet_id = u.packet_id;
  std::uint64_t connection = id_;
  SessionPtr session = session_;
  auto done = [connection, session, packet_id, reasons = std::move(reasons)](Worker& w) {
    ClientConnection* c = w.find_connection(connection);
    if (!c || c->session_ != session || !c->connected()) return;
    codec::Unsuback ack;
    ack.packet_id = packet_id;
    ack.reasons = reasons;
    c->write_packet([&](codec::Buffer& b) { codec::encode_unsuback(ack, c->version_, b); });
  };
  if (changes.empty()) {
    done(worker_);
  } else {
    worker_.change_subscriptions(session_, std::move(changes), std::move(done));
  }
}

// ---------------------------------------------------------------- DISCONNECT / AUTH

void ClientConnection::handle_disconnect(const codec::FixedHeader& h, codec::Bytes body) {
  codec::Disconnect d;
  if (auto st = codec::decode_disconnect(h, body, version_, d, worker_.scratch()); !st.ok()) return refuse_packet(st);
  if (auto expiry = d.properties.session_expiry_interval) {
    if (session_expiry_was_zero_ && *expiry != 0)
      return protocol_violation(Reason::ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT");
    const auto& settings = worker_.broker().settings();
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
  if (auto st = codec::decode_auth(h, body, version_, a, worker_.scratch()); !st.ok()) return refuse_packet(st);
  protocol_violation(Reason::ProtocolError, "AUTH without enhanced authentication");
}

// ---------------------------------------------------------------- output

// No packet larger than the client's Maximum Packet Size [MQTT-3.1.2-24]. A packet with a Reason
// String (`drop_reason` removes it) goes without it when that makes it fit [MQTT-3.2.2-19],
// [MQTT-3.14.2-3]; one that still does not fit is discarded as if sent [MQTT-3.1.2-25].
template <typename Fn>
void ClientConnection::write_packet(Fn&& encode, std::optional<std::string_view>* drop_reason) {
  codec::Buffer& b = worker_.encode_scratch();
  encode(b);
  if (b.size() > client_maximum_packet_size_ && drop_reason && drop_reason->has_value()) {
    drop_reason->reset();
    b.clear();
    encode(b);
  }
  if (b.size() > client_maximum_packet_size_) {
    spdlog::debug("event=packet_discarded client_id={} type={} size={} client_maximum_packet_size={}", client_id(),
                  std::to_integer<unsigned>(b.data()[0]) >> 4, b.size(), client_maximum_packet_size_);
  } else {
    std::memcpy(output_.append(b.size()), b.data(), b.size());
  }
  worker_.release_large_scratch();
  request_flush();
}

void ClientConnection::request_flush() { worker_.schedule_flush(this); }

void ClientConnection::flush_output() { transport_.flush(); }

// Messages sent and not yet acknowledged stay in the session (offline too): their bytes are
// bounded like a queue's, so a client that never acknowledges holds at most
// max_queued_bytes_per_session in flight (one message always fits, so nothing stalls forever).
bool ClientConnection::inflight_bytes_full(const Delivery& d) const {
  const auto& inflight = session_->inflight;
  return !inflight.empty() &&
         inflight.bytes() + DeliveryQueue<Delivery>::cost(d) > worker_.broker().settings().max_queued_bytes_per_session;
}

bool ClientConnection::output_full() const {
  return output_.pending_bytes() >= worker_.broker().settings().max_pending_output_bytes;
}

std::uint16_t ClientConnection::send_window() const {
  return is_v5(version_) ? client_receive_maximum_ : worker_.broker().settings().v311_inflight_window;
}

void ClientConnection::send(Delivery&& d) {
  // A connection that is closing would lose what it writes: QoS 1/2 wait in the session for the
  // next connection (under the queue's limit), QoS 0 is dropped as for any offline session.
  if (state_ == State::Closing) {
    if (d.qos == 0) {
      worker_.messages_dropped.increment();
    } else {
      enqueue(std::move(d));
    }
    return;
  }
  if (d.qos == 0) {
    if (output_full()) {
      worker_.messages_dropped.increment();
      return;
    }
    if (write_publish(d, 0, false)) request_flush();
    return;
  }
  if (!session_->queue.empty() || session_->inflight.size() >= send_window() || output_full() ||
      inflight_bytes_full(d)) {
    enqueue(std::move(d));
    return;
  }
  send_inflight(std::move(d));
}

void ClientConnection::enqueue(Delivery&& d) { worker_.enqueue(*session_, std::move(d)); }

bool ClientConnection::send_inflight(Delivery&& d) {
  InflightMessage* m = session_->inflight.insert(std::move(d));  // `d` is left as it was if full
  if (!m) {
    session_->queue.push_front(std::move(d));
    return false;
  }
  if (!write_publish(m->delivery, m->packet_id, false)) {
    // Too large for this client: dropped as if delivered (MQTT 5 section 3.1.2.25).
    session_->inflight.erase(m->packet_id);
    return true;
  }
  m->state = m->delivery.qos == 1 ? InflightMessage::State::AwaitingPuback : InflightMessage::State::AwaitingPubrec;
  request_flush();
  return true;
}

bool ClientConnection::write_publish(const Delivery& d, std::uint16_t packet_id, bool dup) {
  const Message& m = *d.message;
  bool v5 = is_v5(version_);
  std::size_t props = 0;
  std::uint32_t expiry = 0;
  if (v5) {
    props = m.forward_properties().size();
    if (m.expires()) {
      expiry = m.remaining_expiry_seconds(worker_.now());
      props += 5;
    }
    for (std::size_t i = 0; i < d.subscription_ids.size(); ++i) props += 1 + codec::varint_size(d.subscription_ids[i]);
  }
  std::string_view topic = m.topic();
  OutboundAliases::Choice alias;
  if (v5 && outbound_aliases_) {
    alias = outbound_aliases_->choose(topic);
    props += 3;
    if (alias.established) topic = {};
  }
  std::size_t remaining = 2 + topic.size() + (d.qos ? 2 : 0) + m.payload().size() +
                          (v5 ? codec::varint_size(static_cast<std::uint32_t>(props)) + props : 0);
  std::size_t total = codec::packet_size(remaining);
  if (total > client_maximum_packet_size_ || remaining > codec::kMaxVarint) {
    worker_.messages_dropped.increment();
    return false;
  }
  codec::Writer w(output_.append(total - m.payload().size()));
  w.u8(static_cast<std::uint8_t>(0x30 | (dup ? 0x08 : 0) | (d.qos << 1) | (d.retain ? 1 : 0)));
  w.varint(static_cast<std::uint32_t>(remaining));
  w.string(topic);
  if (d.qos) w.u16(packet_id);
  if (v5) {
    w.varint(static_cast<std::uint32_t>(props));
    w.raw(m.forward_properties());
    if (alias.alias) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::TopicAlias));
      w.u16(alias.alias);
      outbound_aliases_->commit(m.topic(), alias);
    }
    if (m.expires()) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::MessageExpiryInterval));
      w.u32(expiry);
    }
    for (std::size_t i = 0; i < d.subscription_ids.size(); ++i) {
      w.u8(static_cast<std::uint8_t>(codec::PropertyId::SubscriptionIdentifier));
      w.varint(d.subscription_ids[i]);
    }
  }
  output_.append_payload(d.message, m.payload());
  worker_.messages_sent.increment();
  return true;
}

void ClientConnection::resend_session_state() {
  // Held under the permissions the session had when they were sent; the client may have fewer
  // now (a policy change while it was away): what it may no longer receive is dropped.
  session_->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (m.state != InflightMessage::State::AwaitingPubcomp && !session_->may_receive(m.delivery.message->topic())) {
      worker_.messages_dropped.increment();
      session_->inflight.erase(m.packet_id);
    }
  });
  session_->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (m.state == InflightMessage::State::AwaitingPubcomp) {
      codec::Ack rel;
      rel.type = PacketType::Pubrel;
      rel.packet_id = m.packet_id;
      write_packet([&](codec::Buffer& b) { codec::encode_ack(rel, version_, b); });
    } else {
      write_publish(m.delivery, m.packet_id, true);
    }
  });
  request_flush();
  pump_queue();
}

void ClientConnection::pump_queue() {
  if (!session_ || state_ != State::Connected) return;
  auto& queue = session_->queue;
  while (!queue.empty() && session_->inflight.size() < send_window() && !output_full() &&
         !inflight_bytes_full(queue.front())) {
    Delivery d = queue.take_front();
    if (d.message->expired(worker_.now())) continue;
    // Queued under the permissions the session had then; the client may have fewer now.
    if (!session_->may_receive(d.message->topic())) continue;
    if (!send_inflight(std::move(d))) break;
  }
}

void ClientConnection::on_output_drained() { pump_queue(); }

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
    worker_.broker().limit_reached(Limit::UserProperties, who, st.detail);
  else if (st.bound == codec::DecodeBound::TopicFilters)
    worker_.broker().limit_reached(Limit::FiltersPerSubscribe, who, st.detail);
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
  spdlog::info("event=disconnect client_id={} peer={} reason=\"{}\"", client_id(), transport_.peer(),
               codec::reason_name(reason));
  close();
}

void ClientConnection::taken_over(bool session_ends) {
  spdlog::info("event=session_taken_over client_id={} peer={}", client_id(), transport_.peer());
  if (will_ && !will_discarded_ && (session_ends || will_delay_ == 0)) worker_.publish_will(will_, will_authority());
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
  if (authentication_abandoned_) authentication_abandoned_->store(true, std::memory_order_release);
  worker_.remove_connection(this);
  worker_.broker().connection_closed();
  if (!session_) return;
  if (session_->connection != this) return;
  if (will_ && !will_discarded_) {
    if (will_delay_ == 0 || session_expiry_ == 0) {
      worker_.publish_will(will_, will_authority());
    } else {
      session_->pending_will = PendingWill{
          will_, will_authority(), worker_.now() + std::chrono::seconds(std::min(will_delay_, session_expiry_))};
    }
  }
  worker_.session_disconnected(session_);
  session_.reset();
}

Clock::time_point ClientConnection::tick(Clock::time_point now) {
  // The CONNECT timeout runs until the client is connected: it also bounds a pending
  // authentication and a session handover, so neither can hold a connection forever.
  if ((state_ == State::AwaitingConnect || state_ == State::Attaching) &&
      now - opened_at_ > worker_.broker().settings().connect_timeout) {
    worker_.broker().limit_reached(Limit::ConnectTimeout, transport_.peer(),
                                   state_ == State::AwaitingConnect ? "no CONNECT" : "CONNECT not completed");
    log_close(state_ == State::AwaitingConnect ? "no CONNECT in time" : "CONNECT not completed in time");
    close();
    return Clock::time_point::max();
  }
  if (credentials_expire_ && state_ != State::Closing && std::chrono::system_clock::now() >= *credentials_expire_) {
    // As the source broker does: the connection is closed, with no DISCONNECT.
    log_close("client certificate expired");
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
  return last_receive_ + std::chrono::milliseconds(keep_alive_ * 1500) + Worker::kTickInterval;
}

Clock::time_point ClientConnection::next_deadline(Clock::time_point now) const {
  if (state_ == State::Closing) return Clock::time_point::max();
  auto next = Clock::time_point::max();
  if (state_ == State::AwaitingConnect || state_ == State::Attaching)
    next = opened_at_ + worker_.broker().settings().connect_timeout + std::chrono::nanoseconds(1);
  if (state_ == State::Connected && keep_alive_ != 0)
    next = std::min(next, keep_alive_deadline() + std::chrono::nanoseconds(1));
  if (credentials_expire_) {
    auto left = *credentials_expire_ - std::chrono::system_clock::now();
    next = std::min(next, now + std::chrono::duration_cast<Clock::duration>(std::max(left, decltype(left)::zero())));
  }
  return next;
}

void ClientConnection::log_close(std::string_view why) {
  spdlog::info("event=close client_id={} peer={} reason=\"{}\"", client_id(), transport_.peer(), why);
}

}  // namespace mqttd
