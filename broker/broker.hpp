// The broker as the daemon sees it: a fixed pool of workers, each with its own event loop.
// Listeners hand each accepted connection to one worker for its whole life.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/limits.hpp"
#include "broker/port_metrics.hpp"
#include "broker/settings.hpp"

namespace boost::asio {
class io_context;
}

namespace mqttd {
namespace metrics {
class PrometheusWriter;
}

class ClientConnection;
class Transport;
class Worker;
class WorkerExtension;
class SessionRegistry;
class RetainedStore;
namespace statestore {
class Quota;
}
struct PortSecurity;
class AuthenticationPool;

struct BrokerStats {
  std::uint64_t connections = 0;
  std::uint64_t sessions = 0;
  std::uint64_t retained_messages = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_dropped = 0;
  std::uint64_t offline_sessions = 0;
  std::uint64_t queued_bytes = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Limit::Count)> limit_hits{};
  std::array<std::uint64_t, static_cast<std::size_t>(SecurityEvent::Count)> security_events{};
  std::uint64_t limit(Limit l) const { return limit_hits[static_cast<std::size_t>(l)]; }
  std::uint64_t event(SecurityEvent e) const { return security_events[static_cast<std::size_t>(e)]; }
};

class Broker {
 public:
  explicit Broker(BrokerSettings settings);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Starts the worker threads. The caller's thread is free to run other event loops.
  void start();
  // Sends v5 clients DISCONNECT 0x8B (Server shutting down), closes every connection, flushes
  // what can be flushed within `grace`, and joins the workers.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  std::size_t worker_count() const;
  boost::asio::io_context& io_context(std::size_t worker);
  // The per-worker state of the layer above (the listener's epoll poller), kept by the worker.
  // Call on that worker's thread.
  WorkerExtension* worker_extension(std::size_t worker);
  void set_worker_extension(std::size_t worker, std::unique_ptr<WorkerExtension> extension);
  // The worker that should take the next connection (round robin).
  std::size_t next_worker();
  // Counts a new connection against max_connections; false if the limit is reached.
  bool admit_connection();
  // Counts a new connection from `address` (an IPv6 /64 with its last 8 bytes zero, or IPv4 as
  // an IPv4-mapped IPv6 address) in the
  // current one-second window; false beyond max_connections_per_address_per_second (0: always
  // true, nothing counted). Any thread; called once per accepted connection.
  bool admit_address(const std::array<std::uint8_t, 16>& address);
  // Creates the protocol engine for a transport on `worker`'s thread. Call from that thread.
  std::unique_ptr<ClientConnection> open_connection(std::size_t worker, Transport& transport);

  // Sends DISCONNECT 0x8B (Server shutting down) to every connection accepted by the port
  // `endpoint_id` and closes them; returns at once. Any thread.
  void close_endpoint(std::uint64_t endpoint_id);

  // The authentication and authorization of a port (null: none). A CONNECT reads it once.
  void set_port_security(std::uint64_t endpoint_id, std::shared_ptr<const PortSecurity> security);
  std::shared_ptr<const PortSecurity> port_security(std::uint64_t endpoint_id) const;
  // Applies the port's current security to its connected clients: those whose permissions
  // changed get DISCONNECT 0x98 (Administrative action); the others stay. Returns at once.
  void reauthorize_endpoint(std::uint64_t endpoint_id);

  const BrokerSettings& settings() const { return settings_; }
  // A bound was hit (any thread): counted, and logged at most once a second per limit with the
  // number of hits since the last line. `who` names the client or address, `detail` the value.
  void limit_reached(Limit limit, std::string_view who, std::string_view detail);
  // A security event (any thread): counted; the caller logs it.
  void count_event(SecurityEvent event);
  BrokerStats stats() const;

  // --- for the workers ---
  Worker& worker(std::size_t i) { return *workers_[i]; }
  SessionRegistry& sessions() { return *sessions_; }
  RetainedStore& retained() { return *retained_; }
  // The state store's key and byte bounds, shared by every worker's shard.
  statestore::Quota& state_store_quota() { return *state_store_quota_; }
  AuthenticationPool& authentication_pool() { return *authentication_pool_; }
  PortMetrics& port_metrics() { return port_metrics_; }
  // Appends every metric of the broker, its workers and its ports (docs/operations.md "Metrics").
  // Any thread; it reads the workers' counters without stopping them.
  void write_metrics(metrics::PrometheusWriter& out) const;
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  // Advanced after each subscription change is queued on every worker (Worker::change_subscriptions).
  std::atomic<std::uint64_t> index_epoch{0};
  // Sessions kept with no connection, over every worker (bounded by max_offline_sessions).
  std::atomic<std::uint64_t> offline_sessions{0};
  std::uint64_t next_connection_id() { return connection_ids_.fetch_add(1, std::memory_order_relaxed); }

 private:
  BrokerSettings settings_;
  // Before the workers, so that it outlives their shards (which give their keys back to it).
  std::unique_ptr<statestore::Quota> state_store_quota_;
  // Before the workers: a transport still closing when they end counts its close here.
  PortMetrics port_metrics_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<SessionRegistry> sessions_;
  std::unique_ptr<RetainedStore> retained_;
  std::unique_ptr<AuthenticationPool> authentication_pool_;
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<std::uint64_t> connection_ids_{1};
  std::atomic<std::size_t> next_worker_{0};
  // New connections per address in the current second. Cleared when the second changes, and at
  // most kMaxRateAddresses addresses: beyond them, addresses new in this second are not counted,
  // so its memory stays bounded whatever the number of sources.
  static constexpr std::size_t kMaxRateAddresses = 65'536;
  struct AddressHash {
    std::size_t operator()(const std::array<std::uint8_t, 16>& a) const noexcept;
  };
  std::mutex rate_mutex_;
  std::int64_t rate_window_ = 0;
  std::unordered_map<std::array<std::uint8_t, 16>, std::uint32_t, AddressHash> rate_counts_;
  mutable std::mutex security_mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<const PortSecurity>> security_;
  bool started_ = false;
  struct LimitCounter {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> logged_hits{0};
    std::atomic<std::int64_t> last_log_ms{-1000000};
  };
  std::array<LimitCounter, static_cast<std::size_t>(Limit::Count)> limits_;
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(SecurityEvent::Count)> events_{};
};

}  // namespace mqttd
