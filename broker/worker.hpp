// One worker thread: its event loop, its replica of the subscription index, the connections it
// owns, and the queue through which other workers hand it deliveries and tasks. Internal to
// broker/; listeners see only Broker.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/connection_host.hpp"
#include "broker/connection_table.hpp"
#include "broker/session.hpp"
#include "broker/subscription_index.hpp"
#include "broker/worker_extension.hpp"

namespace mqttd {

class Broker;
class ClientConnection;
class StateStoreShard;

class Worker final : public ConnectionHost {
 public:
  Worker(Broker& broker, unsigned index);
  ~Worker();

  // Called once by the broker when every worker exists.
  void set_worker_count(std::size_t n);
  void start();
  void join();
  boost::asio::io_context& io() { return io_; }
  // The listener's per-worker state (its epoll poller); worker thread only.
  WorkerExtension* extension() const { return extension_.get(); }
  void set_extension(std::unique_ptr<WorkerExtension> extension) { extension_ = std::move(extension); }
  Broker& broker() { return broker_; }

  // --- connections (worker thread only) ---
  std::uint64_t add_connection(ClientConnection& c) override;
  void remove_connection(ClientConnection& c) override;
  // Connection timers (CONNECT timeout, keep alive, credential expiry) sit in a timer wheel of
  // kWheelSlots buckets, one per tick: a connection is checked when its bucket comes round (at
  // most kWheelSlots ticks ahead) and filed again for its next deadline, which may have moved
  // (a keep-alive deadline moves with every packet, so it is not re-filed per packet). An idle
  // connection with a 60 s keep alive is looked at about once a minute, not four times a second.
  void schedule_check(ClientConnection& c, Clock::time_point when) override;
  // The timers as of `now` and `wall_now` (tick() reads the clocks; tests pass their own).
  void tick_at(Clock::time_point now,
               std::chrono::system_clock::time_point wall_now = std::chrono::system_clock::now());
  std::uint64_t connection_checks() const { return connection_checks_; }
  ClientConnection* find_connection(std::uint64_t id) override;
  void request_flush(ClientConnection& c) override;
  void connection_closed() override;
  void count_port_event(std::uint64_t endpoint_id, PortEvent event) override;
  // Sends DISCONNECT 0x8B to the connections of one port (`endpoint_id`), or to all (0), and closes them.
  void shutdown_connections(std::uint64_t endpoint_id = 0);
  // The broker stops: publishes the wills of this worker's connections and offline sessions now.
  void publish_wills_at_shutdown();
  // Re-applies the port's security to the connections of one port (Broker::reauthorize_endpoint).
  void reauthorize_connections(std::uint64_t endpoint_id);
  std::size_t connection_count() const { return connections_.size(); }

  // --- sessions ---
  // Claims the session for a CONNECT on this worker and takes it over from wherever it is.
  void claim_session(ClientConnection& c, const std::string& client_id, bool clean_start) override;
  // The connection of `s` closed; the session stays (offline) or ends.
  void session_disconnected(const SessionPtr& s) override;
  // Applies changes to every replica, then runs `done` on the session's owner worker.
  void change_subscriptions(const SessionPtr& s, std::vector<IndexChange> changes,
                            std::function<void(ConnectionHost&)> done) override;
  void end_session(const SessionPtr& s);
  void clear_session(const SessionPtr& s);
  // Queues a delivery in the session's queue under the queue bounds (length, bytes per session,
  // bytes in total); when one is hit, subscriberQueueLimit.strategy decides: None drops the new
  // message, DropOldest drops the oldest until it fits. The one queue-drop policy.
  void enqueue(Session& s, Delivery&& d) override;
  // Publishes a will if its client may still publish it under its port's current security.
  void publish_will(const MessageRef& will, const WillAuthority& authority) override;

  // --- security and counting (ConnectionHost) ---
  std::shared_ptr<const PortSecurity> port_security(std::uint64_t endpoint_id) override;
  bool submit_authentication(AuthenticationRequest request) override;
  void limit_reached(Limit limit, std::string_view who, std::string_view detail) override;
  void count_event(SecurityEvent event) override;

  // --- routing (worker thread only) ---
  // Stores a retained message and delivers to every matching subscription. Returns the number
  // of sessions it was delivered to, or kRetainRefused when the message is retained and the
  // retained store's bounds refused it: then it is neither stored nor delivered, and the limit is
  // counted against `publisher` (a client id, for the log).
  std::size_t publish(const MessageRef& msg, std::string_view publisher = {}) override;
  void match_retained(std::string_view filter, std::vector<MessageRef>& out) override;
  void deliver(const SessionPtr& s, Delivery&& d);
  // A state store notification (QoS 1, `directed`), for the connection that registered: sent only
  // if that connection is still the session's and connected, else dropped.
  void deliver_directed(const SessionPtr& s, const MessageRef& message, std::uint64_t connection_id);
  // Sends a shared-subscription message to another member of its group than `leaving`.
  bool redistribute(const Session* leaving, Delivery& d);
  void redistribute_shared(const SessionPtr& s, bool continues);

  // --- the state store (ConnectionHost) ---
  bool state_store_request(const StateStoreCall& call) override;
  void state_store_connection_closed(std::uint64_t connection_id) override;
  StateStoreShard& state_store() { return *state_store_; }
  // An empty shard in place of this one (worker thread, or a worker that is not running): for the
  // fuzz target, whose inputs must not see each other's keys.
  void reset_state_store();
  // Bytes of requests posted to this worker's shard and not yet run (any thread adds, this one
  // subtracts): beyond kMaxStateStoreBacklog, requests for this shard are refused (PUBACK 0x97)
  // rather than queued without bound.
  static constexpr std::uint64_t kMaxStateStoreBacklog = 32ull << 20;
  // Deliveries from other workers waiting in this worker's inbox, in bytes (each delivery, and
  // each message once per batch): a worker slower than its producers (a flood from clients of
  // other workers) would otherwise hold every message they route to it.
  static constexpr std::size_t kMaxInboxDeliveryBytes = 64u << 20;   // QoS 0 stops here
  static constexpr std::size_t kMaxInboxReliableBytes = 256u << 20;  // QoS 1 and 2 here
  std::atomic<std::uint64_t> state_store_backlog{0};

  // --- cross-thread (any thread) ---
  // Runs `task` on this worker's thread (batched with the other posts of the same turn).
  void post_task(std::function<void(Worker&)> task);

 private:
  struct RemoteDelivery {
    SessionPtr session;
    Delivery delivery;
  };
  struct Match {
    const Subscriber* subscriber;
    const SharedGroup* group;
  };

  void deliver_here(const SessionPtr& s, Delivery&& d);
  void handover(SessionPtr s, std::uint64_t generation, unsigned to, std::uint64_t connection, bool clean_start,
                std::string identity);
  void attach(SessionPtr s, std::uint64_t generation, std::uint64_t connection, bool fresh,
              const std::string& identity);
  void apply(const SessionPtr& s, const std::vector<IndexChange>& changes);
  struct IndexBarrier;
  // Cross-thread: another worker's subscription change, to apply on this replica.
  void post_index_change(const SessionPtr& s, std::shared_ptr<IndexBarrier> barrier);
  // Applies the queued changes of other workers (before matching, when the epoch moved).
  void apply_pending_index_changes();
  // A member of the group that may receive `topic` (online ones first), other than `exclude`.
  const Subscriber* choose_member(SharedGroup& g, const Session* exclude, std::string_view topic);
  void add_offline(const SessionPtr& s);
  void remove_offline(Session* s);
  void drain_inbox();

 public:
  // Deliveries and tasks waiting in the inbox (any thread; takes the inbox's lock).
  std::size_t inbox_depth();

 private:
  // Posts flush() once per turn of the event loop.
  void schedule_flush();
  void flush();
  void tick();
  void schedule_tick();

  Broker& broker_;
  boost::asio::io_context io_;
  boost::asio::steady_timer ticker_;
  std::thread thread_;

  SubscriptionIndex index_tree_;
  ConnectionTable connections_;
  static constexpr std::uint64_t kWheelSlots = 256;  // 64 s of 250 ms ticks
  std::vector<std::vector<std::uint64_t>> wheel_;    // connection ids; stale entries are skipped
  Clock::time_point wheel_start_;
  std::uint64_t wheel_tick_ = 0;  // the last tick run, counted from wheel_start_
  std::uint64_t connection_checks_ = 0;
  std::unordered_map<Session*, SessionPtr> offline_;  // sessions owned here with no connection
  std::vector<ClientConnection*> to_flush_;
  bool flush_posted_ = false;
  std::vector<std::vector<RemoteDelivery>> outbox_;  // per target worker
  std::vector<Match> matches_;                       // scratch for publish()

  struct PendingIndexChange {
    SessionPtr session;
    std::shared_ptr<IndexBarrier> barrier;
  };
  std::mutex index_mutex_;
  std::vector<PendingIndexChange> pending_index_;  // guarded by index_mutex_
  std::uint64_t index_epoch_seen_ = 0;

  std::mutex inbox_mutex_;
  std::vector<RemoteDelivery> inbox_deliveries_;
  // What inbox_deliveries_ holds (each delivery, each message once per batch); guarded by
  // inbox_mutex_. Past its bounds, producers drop what they would add (flush()).
  std::size_t inbox_delivery_bytes_ = 0;
  std::vector<std::function<void(Worker&)>> inbox_tasks_;
  bool inbox_wake_posted_ = false;
  std::vector<RemoteDelivery> drained_deliveries_;
  std::vector<std::function<void(Worker&)>> drained_tasks_;

  std::unique_ptr<StateStoreShard> state_store_;  // the keys whose hash falls here

  // Last, so destroyed first: what it owns (transports and their connections) calls back into
  // this worker when it goes.
  std::unique_ptr<WorkerExtension> extension_;
};

}  // namespace mqttd
