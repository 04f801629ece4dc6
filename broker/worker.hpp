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

#include "codec/decode.hpp"
#include "codec/encode.hpp"
#include "broker/session.hpp"
#include "broker/subscription_index.hpp"

namespace mqttd {

class Broker;
class ClientConnection;

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

class Worker {
 public:
  // How often timers are checked; now() is read at each tick, so it lags the clock by up to this.
  static constexpr auto kTickInterval = std::chrono::milliseconds(250);

  Worker(Broker& broker, unsigned index);
  ~Worker();

  // Called once by the broker when every worker exists.
  void set_worker_count(std::size_t n);
  void start();
  void join();
  boost::asio::io_context& io() { return io_; }
  unsigned index() const { return index_; }
  Broker& broker() { return broker_; }
  Clock::time_point now() const { return now_; }
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
  std::span<std::byte> shared_read_buffer() { return read_buffer_; }

  // --- connections (worker thread only) ---
  void add_connection(ClientConnection* c);
  void remove_connection(ClientConnection* c);
  // Connection timers (CONNECT timeout, keep alive, credential expiry) sit in a timer wheel of
  // kWheelSlots buckets, one per tick: a connection is checked when its bucket comes round (at
  // most kWheelSlots ticks ahead) and filed again for its next deadline, which may have moved
  // (a keep-alive deadline moves with every packet, so it is not re-filed per packet). An idle
  // connection with a 60 s keep alive is looked at about once a minute, not four times a second.
  void schedule_check(ClientConnection& c, Clock::time_point when);
  // The timers as of `now` (tick() reads the clock; tests pass their own).
  void tick_at(Clock::time_point now);
  std::uint64_t connection_checks() const { return connection_checks_; }
  ClientConnection* find_connection(std::uint64_t id);
  void schedule_flush(ClientConnection* c);
  // Sends DISCONNECT 0x8B to the connections of one port (`endpoint_id`), or to all (0), and closes them.
  void shutdown_connections(std::uint64_t endpoint_id = 0);
  // Re-applies the port's security to the connections of one port (Broker::reauthorize_endpoint).
  void reauthorize_connections(std::uint64_t endpoint_id);
  std::size_t connection_count() const { return connections_.size(); }

  // --- sessions ---
  // Claims the session for a CONNECT on this worker and takes it over from wherever it is.
  void connect(ClientConnection& c, const std::string& client_id, bool clean_start);
  // The connection of `s` closed; the session stays (offline) or ends.
  void session_disconnected(const SessionPtr& s);
  // Applies changes to every replica, then runs `done` on the session's owner worker.
  void change_subscriptions(const SessionPtr& s, std::vector<IndexChange> changes, std::function<void(Worker&)> done);
  void end_session(const SessionPtr& s);
  void clear_session(const SessionPtr& s);
  // Queues a delivery in the session's queue under the queue bounds (length, bytes per session,
  // bytes in total); when one is hit, subscriberQueueLimit.strategy decides: None drops the new
  // message, DropOldest drops the oldest until it fits. The one queue-drop policy.
  void enqueue(Session& s, Delivery&& d);
  // Publishes a will if its client may still publish it under its port's current security.
  void publish_will(const MessageRef& will, const WillAuthority& authority);

  // --- routing (worker thread only) ---
  // Stores a retained message and delivers to every matching subscription. Returns the number
  // of sessions it was delivered to, or kRetainRefused when the message is retained and the
  // retained store's bounds refused it: then it is neither stored nor delivered, and the limit is
  // counted against `publisher` (a client id, for the log).
  static constexpr std::size_t kRetainRefused = static_cast<std::size_t>(-1);
  std::size_t publish(const MessageRef& msg, std::string_view publisher = {});
  void deliver(const SessionPtr& s, Delivery&& d);
  // Sends a shared-subscription message to another member of its group than `leaving`.
  bool redistribute(const Session* leaving, Delivery& d);
  void redistribute_shared(const SessionPtr& s, bool continues);

  // --- cross-thread (any thread) ---
  void post(std::function<void(Worker&)> task);

  // Written by this worker only, read by Broker::stats() from any thread: a relaxed load and
  // store (no locked instruction on the hot path) is enough for one writer.
  class Counter {
   public:
    void increment() { value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
    std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<std::uint64_t> value_{0};
  };
  Counter messages_received;
  Counter messages_sent;
  Counter messages_dropped;

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
  void queue_index_change(const SessionPtr& s, std::shared_ptr<IndexBarrier> barrier);
  // Applies the queued changes of other workers (before matching, when the epoch moved).
  void apply_pending_index_changes();
  // A member of the group that may receive `topic` (online ones first), other than `exclude`.
  const Subscriber* choose_member(SharedGroup& g, const Session* exclude, std::string_view topic);
  void add_offline(const SessionPtr& s);
  void remove_offline(Session* s);
  void drain_inbox();
  void flush();
  void tick();
  void schedule_tick();

  Broker& broker_;
  const unsigned index_;
  boost::asio::io_context io_;
  boost::asio::steady_timer ticker_;
  std::thread thread_;
  Clock::time_point now_;

  SubscriptionIndex index_tree_;
  std::unordered_map<std::uint64_t, ClientConnection*> connections_;
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
  codec::DecodeScratch scratch_;
  codec::Buffer encode_scratch_;
  std::vector<std::byte> read_buffer_;

  struct PendingIndexChange {
    SessionPtr session;
    std::shared_ptr<IndexBarrier> barrier;
  };
  std::mutex index_mutex_;
  std::vector<PendingIndexChange> pending_index_;  // guarded by index_mutex_
  std::uint64_t index_epoch_seen_ = 0;

  std::mutex inbox_mutex_;
  std::vector<RemoteDelivery> inbox_deliveries_;
  std::vector<std::function<void(Worker&)>> inbox_tasks_;
  bool inbox_wake_posted_ = false;
  std::vector<RemoteDelivery> drained_deliveries_;
  std::vector<std::function<void(Worker&)>> drained_tasks_;
};

}  // namespace mqttd
