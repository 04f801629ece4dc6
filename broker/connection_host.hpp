// What the connection engine (ClientConnection) needs from its surroundings, and nothing more:
// the time, the broker's settings, scratch buffers, publishing, claiming a session, changing
// subscriptions, authenticating, counting and flushing. A Worker is the host in the daemon; the
// engine's unit tests use a fake host with no threads and no Broker (tests/support/fake_host.hpp).
//
// The engine never reads a clock: now() and wall_now() are what the host last set (a worker
// sets them at each tick), so a test moves time by setting them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "authn/authenticator.hpp"
#include "broker/limits.hpp"
#include "broker/message.hpp"
#include "broker/output_queue.hpp"
#include "broker/port_metrics.hpp"
#include "broker/port_security.hpp"
#include "broker/settings.hpp"
#include "broker/state_store_call.hpp"
#include "broker/subscription_index.hpp"
#include "broker/worker_metrics.hpp"
#include "codec/decode.hpp"
#include "codec/encode.hpp"

namespace mqttd {

class ClientConnection;
class Session;
struct Delivery;
struct WillAuthority;
using SessionPtr = std::shared_ptr<Session>;

// A change to the subscription index, applied on every worker.
struct IndexChange {
  // The change that removes the subscription stored under `filter` (plain or "$share/...").
  static IndexChange removal(std::string_view filter);

  bool add = true;
  std::string filter;      // without the "$share/<name>/" prefix
  std::string share_name;  // empty for plain subscriptions
  std::shared_ptr<const std::string> share_filter;
  SubscriptionOptions options;
};

// A check to run away from the connection's thread (a password's scrypt, a question to a remote
// service). The credentials are copies (the
// read buffer is reused, and the client may leave before the answer); `abandoned` is set by the
// connection when it closes first, and the check is then skipped.
struct AuthenticationRequest {
  std::uint64_t connection_id = 0;
  std::shared_ptr<const authn::Authenticator> authenticator;
  authn::OwnedCredentials credentials;
  std::string peer;
  std::shared_ptr<std::atomic<bool>> abandoned;
  // Set for a re-authentication (AUTH 0x19): the method that admitted the client; the answer goes
  // to ClientConnection::on_reauthenticated.
  std::optional<std::size_t> reauthenticate_with;
};

class ConnectionHost {
 public:
  // How often a worker checks its timers and advances now(), which therefore lags the clock by
  // up to this.
  static constexpr auto kTickInterval = std::chrono::milliseconds(250);

  // The result of publish() when the retained store's bounds refused a retained message: then
  // it is neither stored nor delivered.
  static constexpr std::size_t kRetainRefused = static_cast<std::size_t>(-1);

  // `index`: the worker this host is; a session's holdings are reachable only with its owner's index.
  ConnectionHost(unsigned index, const BrokerSettings& settings, Clock::time_point now,
                 std::chrono::system_clock::time_point wall_now);
  virtual ~ConnectionHost() = default;
  ConnectionHost(const ConnectionHost&) = delete;
  ConnectionHost& operator=(const ConnectionHost&) = delete;

  unsigned index() const { return index_; }

  // --- time and settings (no virtual call: read on every packet) ---
  Clock::time_point now() const { return now_; }
  std::chrono::system_clock::time_point wall_now() const { return wall_now_; }
  const BrokerSettings& settings() const { return settings_; }
  // Counts the units of work begun on this host: one read's packets, a few tasks from other
  // workers. What runs within one unit may share one reading of the clock (the state store reads
  // it once per unit instead of once per request).
  std::uint64_t work_unit() const { return work_unit_; }
  void begin_work_unit() { ++work_unit_; }

  // --- scratch buffers, shared by the connections of one host ---
  codec::DecodeScratch& scratch() { return scratch_; }
  // Where one packet is encoded before it is copied out (cleared by each call).
  codec::Buffer& encode_scratch() {
    encode_scratch_.clear();
    return encode_scratch_;
  }
  // After a packet that grew the scratch buffers beyond a small bound (64 entries, 64 KiB),
  // gives their memory back rather than hold the largest packet ever seen.
  void release_large_scratch() {
    scratch_.release_if_large();
    if (encode_scratch_.capacity() > 64 * 1024) codec::Buffer().swap(encode_scratch_);
  }
  // Where a connection with no partial packet reads (so an idle connection holds no buffer).
  std::span<std::byte> shared_read_buffer() { return read_buffer_; }
  // Where output queues take buffers when they write and give them back when drained.
  OutputBufferPool& output_buffers() { return output_buffers_; }

  // This host's counters for /metrics (written by this host's thread only).
  WorkerMetrics metrics;

  // --- connections ---
  // Files a new connection and returns its id (unique in the process; find_connection() takes it).
  virtual std::uint64_t add_connection(ClientConnection& c) = 0;
  virtual void remove_connection(ClientConnection& c) = 0;
  // A connection of this host, by id; null once it closed. Deferred answers (authentication,
  // SUBACK after a subscription change) find their connection this way, never by a pointer.
  virtual ClientConnection* find_connection(std::uint64_t id) = 0;
  // Run c.tick() at `when` (or earlier).
  virtual void schedule_check(ClientConnection& c, Clock::time_point when) = 0;
  // c has output: have its transport write it (once per turn of the event loop).
  virtual void request_flush(ClientConnection& c) = 0;
  // The connection released its place against the broker's connection limit.
  virtual void connection_closed() = 0;
  // For /metrics: a port's connection closed, or its TLS handshake ended (PortMetrics).
  virtual void count_port_event(std::uint64_t endpoint_id, PortEvent event) = 0;

  // --- security ---
  // The port's authentication and authorization as they are now (null: the port admits everyone).
  virtual std::shared_ptr<const PortSecurity> port_security(std::uint64_t endpoint_id) = 0;
  // Runs the check elsewhere and, on this host's thread, hands the result to the connection
  // (ClientConnection::on_authenticated) if it is still there. False: too many checks waiting.
  virtual bool submit_authentication(AuthenticationRequest request) = 0;

  // --- sessions ---
  // Claims the session `client_id` for c; the host calls c.attach() (now or later) with it.
  virtual void claim_session(ClientConnection& c, const std::string& client_id, bool clean_start) = 0;
  // The connection of `s` closed; the session stays (offline) or ends.
  virtual void session_disconnected(const SessionPtr& s) = 0;
  // Applies the changes wherever subscriptions are matched, then runs `done` on this host's
  // thread (the SUBACK or UNSUBACK goes out only then).
  virtual void change_subscriptions(const SessionPtr& s, std::vector<IndexChange> changes,
                                    std::function<void(ConnectionHost&)> done) = 0;
  // Queues a delivery in the session's queue under the queue bounds and drop policy.
  virtual void enqueue(Session& s, Delivery&& d) = 0;

  // --- messages ---
  // Delivers to every matching subscription (and stores a retained message). Returns the number
  // of sessions it reached, or kRetainRefused. `publisher` names the client in logs.
  virtual std::size_t publish(const MessageRef& msg, std::string_view publisher) = 0;
  // Publishes a will if its client may still publish it under its port's current security.
  virtual void publish_will(const MessageRef& will, const WillAuthority& authority) = 0;
  // The retained messages matching `filter` (not expired as of now()).
  virtual void match_retained(std::string_view filter, std::vector<MessageRef>& out) = 0;

  // --- the state store ---
  // Runs the request on the worker that owns its key (at once when that is this host), which
  // publishes the answer. False: that worker has too many requests waiting (nothing was done).
  virtual bool state_store_request(const StateStoreCall& call) = 0;
  // A connection that registered for key changes (KEYNOTIFY) closed: its registrations end on
  // every shard.
  virtual void state_store_connection_closed(std::uint64_t connection_id) = 0;

  // --- counting ---
  virtual void limit_reached(Limit limit, std::string_view who, std::string_view detail) = 0;
  virtual void count_event(SecurityEvent event) = 0;

 protected:
  void set_time(Clock::time_point now, std::chrono::system_clock::time_point wall_now) {
    now_ = now;
    wall_now_ = wall_now;
  }

 private:
  const unsigned index_;
  const BrokerSettings& settings_;
  Clock::time_point now_;
  std::chrono::system_clock::time_point wall_now_;
  codec::DecodeScratch scratch_;
  codec::Buffer encode_scratch_;
  std::vector<std::byte> read_buffer_;
  std::uint64_t work_unit_ = 0;
  OutputBufferPool output_buffers_;
};

}  // namespace mqttd
