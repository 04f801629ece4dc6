// The MQTT protocol engine of one network connection: bytes in, packets decoded and acted
// upon, bytes out into an OutputQueue. It does no I/O and reads no clock: its Transport moves
// the bytes, and everything else it needs comes from its ConnectionHost (a Worker in the
// daemon, a fake in the engine's unit tests).
//
// The engine's parts, one file each: client_connection.cpp (input, dispatch, PUBLISH and
// acknowledgements, closing, timers), connection_connect.cpp (CONNECT, CONNACK, attaching the
// session), connection_security.cpp (authentication, authorization, reauthorization),
// connection_subscriptions.cpp (SUBSCRIBE, UNSUBSCRIBE), with PacketFramer (the read side) and
// OutboundSender (the write side and flow control).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "broker/connection_host.hpp"
#include "broker/outbound_sender.hpp"
#include "broker/packet_framer.hpp"
#include "broker/port_security.hpp"
#include "broker/session.hpp"
#include "codec/decode.hpp"

namespace mqttd {

class Transport;

class ClientConnection {
 public:
  // At most this many re-authentications (AUTH 0x19, or 0x18 after a transient failure) per
  // window: beyond, DISCONNECT 0x96 (Message rate too high) and limit=reauthentication_rate.
  static constexpr unsigned kMaxReauthentications = 5;
  static constexpr auto kReauthenticationWindow = std::chrono::seconds(10);

  // Files itself with the host, which gives its id.
  ClientConnection(ConnectionHost& host, Transport& transport);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  std::uint64_t id() const { return id_; }
  std::uint64_t endpoint_id() const;
  const std::string& client_id() const;

  // --- input, from the transport ---
  // Where the transport should read next (PacketFramer::read_buffer).
  std::span<std::byte> read_buffer();
  // `n` bytes were read into the span returned by read_buffer().
  void commit_read(std::size_t n);
  // Bytes from a transport that frames its own reads (WebSocket, TLS).
  void on_bytes(codec::Bytes data);
  // The network connection is gone (closed by either side).
  void on_transport_closed();
  // Everything queued has been written: the session may send what it holds back.
  void on_output_drained();
  // True while input must not be read: the client is not reading its own acknowledgements, or
  // its session is still being taken over from another worker.
  bool reading_paused() const;

  OutputQueue& output() { return sender_.output(); }
  // For /metrics, from the transport (TLS handshakes).
  void count_port_event(PortEvent event) { host_.count_port_event(endpoint_id(), event); }
  // The transport wrote the first `n` queued bytes: drops them from the queue and counts them.
  void consume_written(std::size_t n);
  // Asks the transport to write what is queued.
  void flush_output();

  // --- called by the host ---
  void send(Delivery&& delivery);
  // A QoS 0 message written now (or dropped while the output is full), without a Delivery.
  void send_now(const MessageRef& message, bool retain, const SubscriptionIds& subscription_ids);
  // Runs the connection's timers as of the host's now(); returns when they are next due
  // (Clock::time_point::max(): none).
  Clock::time_point tick();
  Clock::time_point next_deadline(Clock::time_point now) const;
  // Publishes the will now, whatever its delay, and not again at close (the broker stops).
  void publish_will_now();
  // Server-initiated disconnect: a v5 DISCONNECT with `reason`, then close.
  void disconnect(codec::Reason reason, std::string_view why = {});
  // The port's authentication or authorization changed: keep the client if its permissions are
  // the same under the new settings, else DISCONNECT 0x98 (Administrative action).
  void reauthorize();
  // Another connection took this session. The will is published now if `session_ends` or the
  // will has no delay, else dropped (the client is back before the delay).
  void taken_over(bool session_ends);
  // The handover of the session lost a race against a newer CONNECT with the same client id.
  void superseded();
  void attach(SessionPtr session, bool session_present);
  // The answer of a check submitted to the host (ConnectionHost::submit_authentication): a
  // password, a token, a custom server.
  void on_authenticated(authn::Result result);
  // The answer to the client's re-authentication (AUTH 0x19).
  void on_reauthenticated(authn::Result result);
  const SessionPtr& session() const { return session_; }
  // Who authenticated (method, username, certificate subject); empty on a port that admits
  // everyone. A session resumed under another identity starts fresh.
  const std::string& principal_identity() const;
  bool connected() const { return state_ == State::Connected; }
  // The peer shut its side down while input is paused and nothing of it is left unread (the
  // transport checked the socket). True if that means the client left: it is waiting for its
  // CONNECT to be decided and sent nothing behind it, so the only answer it could still read is
  // a CONNACK, and the broker would close on reading the end of its stream anyway. Then its
  // password check is skipped and the transport closes. False when the data it sent must still
  // be processed (the transport then reads the end of the stream when input resumes).
  bool peer_left_while_paused() const { return state_ == State::Attaching && !framer_.has_pending(); }

 private:
  enum class State : std::uint8_t { AwaitingConnect, Attaching, Connected, Closing };

  // Handles the whole packets at the front of `data`, which is left with what remains.
  void process(codec::Bytes& data);
  void process_and_keep(codec::Bytes data);
  void handle_packet(const codec::FixedHeader& h, codec::Bytes body);
  void handle_connect(const codec::FixedHeader& h, codec::Bytes body);
  void handle_publish(const codec::FixedHeader& h, codec::Bytes body);
  void handle_ack(const codec::FixedHeader& h, codec::Bytes body);
  void handle_subscribe(const codec::FixedHeader& h, codec::Bytes body);
  void handle_unsubscribe(const codec::FixedHeader& h, codec::Bytes body);
  void handle_disconnect(const codec::FixedHeader& h, codec::Bytes body);
  void handle_auth(const codec::FixedHeader& h, codec::Bytes body);
  void reauthenticate(const codec::Auth& a);
  std::string identity_of(const authn::Result& result) const;
  void send_auth(codec::Reason reason);
  // Authenticates the CONNECT on this port's settings, inline or on the authentication thread,
  // then admit() authorizes it and claims its session, or refuses it.
  void authenticate(const codec::Connect& c);
  bool may_publish(std::string_view topic);
  // A PUBLISH to the state store's request topic (connection_state_store.cpp): checked, answered
  // here when it cannot run, else handed to its key's shard. Returns the reason to acknowledge
  // with; nullopt when the connection was closed (a reserved Response Topic).
  std::optional<codec::Reason> handle_state_store_request(const codec::Publish& p);

  void refuse_connect(codec::Reason reason, std::string_view why);
  void refuse_oversized_connect(codec::Bytes data, std::size_t total);
  void write_disconnect(codec::Reason reason, std::string_view why);
  void protocol_violation(codec::Reason reason, std::string_view why);
  // A packet the decoder refused: counted if it exceeded a bound, then protocol_violation().
  void refuse_packet(const codec::DecodeStatus& st);
  void count_bound(const codec::DecodeStatus& st, std::string_view who);
  void close();
  void finish_close();
  void handle_will_on_close();
  void pump_queue();
  void request_flush();
  // The session's holdings (created on first use), as the owner: this connection's host.
  SessionHoldings& held() { return session_->holdings(host_.index()); }
  void log_close(std::string_view why);
  Clock::time_point keep_alive_deadline() const;
  WillAuthority will_authority() const {
    if (!authority_) return WillAuthority{endpoint_id(), nullptr, nullptr};
    return WillAuthority{endpoint_id(), authority_->security, authority_->principal};
  }
  // The client's permissions (null: its port does not authorize).
  const std::shared_ptr<const authz::Permissions>& permissions() const;

  template <typename Fn>
  void write_packet(Fn&& encode, std::optional<std::string_view>* drop_reason = nullptr) {
    sender_.write_packet(encode, drop_reason);
    request_flush();
  }

  ConnectionHost& host_;
  Transport& transport_;
  const std::uint64_t id_;
  SessionPtr session_;
  // What only the CONNECT needs: allocated with the connection, freed once it is connected, so
  // that an idle connected client does not carry it.
  struct ConnectPhase {
    Clock::time_point opened_at;
    std::string client_id;           // until the session is attached
    std::string principal_identity;  // compared by the session handover
    // Set when the connection closes while its password check waits, which then skips the check.
    std::shared_ptr<std::atomic<bool>> authentication_abandoned;
    // Kept for the CONNACK, which attach() sends once the session is here.
    bool assigned_client_id = false;
    bool keep_alive_changed = false;
    bool expiry_changed = false;
  };
  std::unique_ptr<ConnectPhase> connect_phase_;

  Clock::time_point last_receive_;
  // Who the client is and what it may do, allocated only when its port authenticates (a port that
  // admits everyone needs none of it).
  struct Authority {
    std::shared_ptr<const PortSecurity> security;           // the port's, at CONNECT or the last reauthorization
    std::shared_ptr<const authz::Principal> principal;      // once authenticated
    std::shared_ptr<const authz::Permissions> permissions;  // when the port also authorizes
    authz::DecisionCache publish_decisions;
    // When the client's credentials stop being valid (its certificate's notAfter, its token's
    // exp, a custom server's expiry): then it is closed.
    std::optional<std::chrono::system_clock::time_point> credentials_expire;
    // The CONNECT's enhanced authentication method (K8S-SAT, or one a custom server serves): the
    // CONNACK and every AUTH carry it, and re-authentication must use it (MQTT 4.12).
    std::string enhanced_method;
    std::size_t method_index = 0;   // the authenticator's method that admitted the client
    bool reauthenticating = false;  // an AUTH 0x19 waits for its answer
    // Re-authentications begun in the window starting at reauthentication_window: each may cost
    // a question to a remote service (and a place in the shared authentication queue), so a
    // client that loops on AUTH (0x19, 0x18 after a transient failure, 0x19...) is bounded.
    Clock::time_point reauthentication_window{};
    unsigned reauthentications_in_window = 0;
  };
  std::unique_ptr<Authority> authority_;
  MessageRef will_;
  // Once the client sent a KEYNOTIFY: its registrations over every shard (bounded per
  // connection); they end when it closes. A pointer to a pointer, so an idle client pays 8 bytes.
  std::unique_ptr<std::shared_ptr<std::atomic<std::uint32_t>>> state_store_registrations_;
  std::unique_ptr<std::string[]> topic_aliases_;  // the client's, inbound; topic_alias_maximum slots

  PacketFramer framer_;
  OutboundSender sender_;

  // The small fields together, so that they pack (an idle connection's size counts).
  std::uint32_t session_expiry_ = 0;
  std::uint32_t will_delay_ = 0;
  std::uint16_t keep_alive_ = 0;
  State state_ = State::AwaitingConnect;
  codec::ProtocolVersion version_ = codec::ProtocolVersion::v5;
  bool session_expiry_was_zero_ = true;
  bool clean_start_ = true;
  bool request_problem_information_ = true;
  bool will_discarded_ = false;
  bool finished_ = false;
  bool in_process_ = false;

 public:
  // The host's timer wheel: the tick at which this connection's live entry is due (0: none).
  std::uint32_t check_tick_ = 0;
  bool flush_scheduled = false;  // in the worker's list of connections to flush
};

}  // namespace mqttd
