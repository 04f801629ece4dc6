// A ConnectionHost with no threads and no Broker, and a transport that keeps bytes in memory:
// the connection engine driven by byte vectors. The host records what the engine asks of it
// (publications, wills, session claims, subscription changes, password checks, limits) and
// answers as the test says; time moves only when the test sets it.
#pragma once

#include <sys/uio.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/client_connection.hpp"
#include "broker/connection_host.hpp"
#include "broker/session.hpp"
#include "broker/transport.hpp"
#include "codec/decode.hpp"
#include "codec/encode.hpp"

namespace mqttd::test {

// Holds the settings before ConnectionHost, which keeps a reference to them, is constructed.
struct FakeHostSettings {
  BrokerSettings owned_settings;
};

class FakeHost final : private FakeHostSettings, public ConnectionHost {
 public:
  explicit FakeHost(BrokerSettings s = {})
      : FakeHostSettings{std::move(s)},
        ConnectionHost(0, owned_settings, Clock::time_point{} + std::chrono::hours(1),
                       std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 50)) {}

  // --- what the test controls ---
  void advance(Clock::duration d) { set_time(now() + d, wall_now() + d); }
  // Claims are answered at once unless held; held claims wait for attach_held().
  bool hold_claims = false;
  // Subscription changes complete at once unless held; held ones wait for complete_subscriptions().
  bool hold_subscription_changes = false;
  // What publish() answers: the number of receivers, or kRetainRefused.
  std::size_t publish_answer = 1;
  bool accept_authentications = true;
  std::map<std::uint64_t, std::shared_ptr<const PortSecurity>> security;
  std::vector<MessageRef> retained;

  // --- what the engine asked ---
  struct Published {
    MessageRef message;
    std::string publisher;
  };
  std::vector<Published> published;
  std::vector<MessageRef> wills;
  struct Claim {
    std::uint64_t connection_id;  // looked up again: the client may have left since
    std::string client_id;
    bool clean_start;
  };
  std::vector<Claim> claims;
  std::vector<SessionPtr> disconnected_sessions;
  std::vector<std::vector<IndexChange>> subscription_changes;
  std::vector<AuthenticationRequest> authentications;
  std::vector<Limit> limits;
  std::vector<SecurityEvent> events;
  std::map<ClientConnection*, Clock::time_point> checks;  // the last deadline asked per connection
  std::size_t enqueued = 0;
  std::size_t closed_connections = 0;

  // Runs each connection's timers whose deadline has come, as a worker's tick would.
  void run_due_checks() {
    auto due = checks;
    for (auto& [c, when] : due) {
      if (when > now() || !connections_.count(c->id())) continue;
      checks.erase(c);
      schedule_check(*c, c->tick());
    }
  }
  // Writes the output of every connection that asked (the worker does this once per loop turn).
  void flush() {
    auto batch = std::move(to_flush_);
    to_flush_.clear();
    for (auto* c : batch) {
      c->flush_scheduled = false;
      if (connections_.count(c->id())) c->flush_output();
    }
  }
  void attach_held(std::size_t claim, bool session_present = false) {
    auto& cl = claims.at(claim);
    if (ClientConnection* c = find_connection(cl.connection_id))
      c->attach(session_for(cl.client_id, !session_present), session_present);
  }
  void complete_subscriptions() {
    auto done = std::move(completions_);
    completions_.clear();
    for (auto& d : done) d(*this);
  }
  void answer_authentication(std::size_t i, authn::Result result) {
    const auto& request = authentications.at(i);
    if (ClientConnection* c = find_connection(request.connection_id)) {
      if (request.reauthenticate_with)
        c->on_reauthenticated(std::move(result));
      else
        c->on_authenticated(std::move(result));
    }
  }
  SessionPtr session(const std::string& client_id) {
    return sessions_.count(client_id) ? sessions_[client_id] : nullptr;
  }

  // --- ConnectionHost ---
  std::uint64_t add_connection(ClientConnection& c) override {
    connections_[++last_id_] = &c;
    return last_id_;
  }
  void remove_connection(ClientConnection& c) override {
    connections_.erase(c.id());
    checks.erase(&c);
    std::erase(to_flush_, &c);
  }
  ClientConnection* find_connection(std::uint64_t id) override {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second;
  }
  void schedule_check(ClientConnection& c, Clock::time_point when) override {
    if (when == Clock::time_point::max()) return;
    auto it = checks.find(&c);
    if (it == checks.end() || when < it->second) checks[&c] = when;
  }
  void request_flush(ClientConnection& c) override {
    if (c.flush_scheduled) return;
    c.flush_scheduled = true;
    to_flush_.push_back(&c);
  }
  void connection_closed() override { ++closed_connections; }
  void count_port_event(std::uint64_t, PortEvent) override {}
  std::shared_ptr<const PortSecurity> port_security(std::uint64_t endpoint_id) override {
    auto it = security.find(endpoint_id);
    return it == security.end() ? nullptr : it->second;
  }
  bool submit_authentication(AuthenticationRequest request) override {
    if (!accept_authentications) return false;
    authentications.push_back(std::move(request));
    return true;
  }
  void claim_session(ClientConnection& c, const std::string& client_id, bool clean_start) override {
    claims.push_back(Claim{c.id(), client_id, clean_start});
    if (hold_claims) return;
    auto existing = session(client_id);
    bool present = existing && !clean_start && !existing->ended && existing->expiry_interval != 0;
    if (existing && existing->connection) existing->connection->taken_over(!present);
    c.attach(session_for(client_id, !present), present);
  }
  void session_disconnected(const SessionPtr& s) override {
    s->connection = nullptr;
    s->online.store(false);
    disconnected_sessions.push_back(s);
    if (s->expiry_interval == 0) s->ended = true;
  }
  void change_subscriptions(const SessionPtr&, std::vector<IndexChange> changes,
                            std::function<void(ConnectionHost&)> done) override {
    subscription_changes.push_back(std::move(changes));
    if (!done) return;
    if (hold_subscription_changes) {
      completions_.push_back(std::move(done));
    } else {
      done(*this);
    }
  }
  void enqueue(Session& s, Delivery&& d) override {
    ++enqueued;
    s.holdings(index()).queue.push_back(std::move(d));
  }
  std::size_t publish(const MessageRef& msg, std::string_view publisher) override {
    if (publish_answer != kRetainRefused) published.push_back(Published{msg, std::string(publisher)});
    return publish_answer;
  }
  void publish_will(const MessageRef& will, const WillAuthority&) override { wills.push_back(will); }
  void match_retained(std::string_view filter, std::vector<MessageRef>& out) override {
    for (auto& m : retained)
      if (filter == "#" || m->topic() == filter) out.push_back(m);
  }
  void limit_reached(Limit limit, std::string_view, std::string_view) override { limits.push_back(limit); }
  void count_event(SecurityEvent event) override { events.push_back(event); }
  // The state store: what reached the shard (copied), and which connections' registrations ended.
  bool state_store_request(const StateStoreCall& call) override {
    state_store_calls.push_back(std::make_shared<OwnedStateStoreCall>(call));
    state_store_units.push_back(work_unit());
    return state_store_accepts;
  }
  bool state_store_accepts = true;
  void state_store_connection_closed(std::uint64_t connection_id) override {
    state_store_closed.push_back(connection_id);
  }
  std::vector<std::shared_ptr<OwnedStateStoreCall>> state_store_calls;
  std::vector<std::uint64_t> state_store_units;  // the unit of work each call came in
  std::vector<std::uint64_t> state_store_closed;

 private:
  SessionPtr session_for(const std::string& client_id, bool fresh) {
    auto& s = sessions_[client_id];
    if (!s || fresh) s = std::make_shared<Session>(client_id, 0);
    return s;
  }

  std::map<std::uint64_t, ClientConnection*> connections_;
  std::uint64_t last_id_ = 0;
  std::vector<ClientConnection*> to_flush_;
  std::vector<std::function<void(ConnectionHost&)>> completions_;
  std::map<std::string, SessionPtr> sessions_;
};

// One client of the engine: an in-memory transport that owns its ClientConnection, as the socket
// transports do.
class FakeClient final : public Transport {
 public:
  FakeClient(FakeHost& host, codec::ProtocolVersion version) : host_(host), version_(version) {
    connection_ = std::make_unique<ClientConnection>(host, *this);
  }
  ~FakeClient() override {
    if (connection_) finish_close();
  }

  // --- Transport ---
  void flush() override {
    auto& out = connection_->output();
    iovec iov[64];
    while (!out.empty()) {
      std::size_t n = out.gather(iov, 64), total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        auto* p = static_cast<const std::byte*>(iov[i].iov_base);
        wire_.insert(wire_.end(), p, p + iov[i].iov_len);
        total += iov[i].iov_len;
      }
      out.consume(total);
    }
    connection_->on_output_drained();
  }
  void close() override { close_requested_ = true; }
  void resume_reading() override { ++resumed_; }
  const std::string& peer() const override { return peer_; }

  // --- the test's side ---
  ClientConnection& engine() { return *connection_; }
  bool close_requested() const { return close_requested_; }
  int resumed() const { return resumed_; }
  // The transport went away (the client's reset, or the close the engine asked for done): the
  // output is written first when the engine asked for the close.
  void finish_close() {
    if (close_requested_) flush();
    connection_->on_transport_closed();
  }
  void send(codec::Bytes bytes) {
    connection_->on_bytes(bytes);
    host_.flush();
  }
  void send(const codec::Buffer& b) { send(codec::Bytes(b.data(), b.size())); }
  // Everything the broker wrote since the last call (after flushing what was asked).
  std::vector<std::byte> written() {
    host_.flush();
    auto out = std::move(wire_);
    wire_.clear();
    return out;
  }
  // The packets written since the last call, each as its bytes.
  std::vector<std::vector<std::byte>> packets() {
    std::vector<std::vector<std::byte>> out;
    auto bytes = written();
    codec::Bytes data(bytes);
    while (!data.empty()) {
      codec::FixedHeader h;
      if (codec::parse_fixed_header(data, h) != codec::FrameStatus::Complete) break;
      std::size_t total = h.header_size + h.remaining_length;
      out.emplace_back(data.begin(), data.begin() + total);
      data = data.subspan(total);
    }
    return out;
  }

  void connect(const std::string& client_id, bool clean = true, std::uint16_t keep_alive = 60,
               std::function<void(codec::Connect&)> adjust = {}) {
    codec::Connect c;
    c.version = version_;
    c.client_id = client_id;
    c.clean_start = clean;
    c.keep_alive = keep_alive;
    if (adjust) adjust(c);
    codec::Buffer b;
    codec::encode_connect(c, b);
    send(b);
  }

 private:
  FakeHost& host_;
  codec::ProtocolVersion version_;
  std::unique_ptr<ClientConnection> connection_;
  std::vector<std::byte> wire_;
  std::string peer_ = "fake:1";
  bool close_requested_ = false;
  int resumed_ = 0;
};

}  // namespace mqttd::test
