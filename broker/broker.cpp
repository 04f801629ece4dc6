#include "broker/broker.hpp"
#include "broker/logged_client_id.hpp"

#include "statestore/memory_backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cstring>
#include <future>
#include <thread>

#include "broker/authentication_pool.hpp"
#include "broker/client_connection.hpp"
#include "broker/retained_store.hpp"
#include "broker/session.hpp"
#include "broker/session_registry.hpp"
#include "broker/worker.hpp"

namespace mqttd {

Broker::Broker(BrokerSettings settings)
    : settings_(std::move(settings)),
      state_store_quota_(
          std::make_unique<statestore::Quota>(settings_.state_store_max_keys, settings_.state_store_max_bytes)),
      sessions_(std::make_unique<SessionRegistry>()),
      retained_(std::make_unique<RetainedStore>(settings_.max_retained_messages, settings_.max_retained_bytes)),
      authentication_pool_(std::make_unique<AuthenticationPool>()) {
  unsigned n = settings_.workers ? settings_.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
  for (auto& w : workers_) w->set_worker_count(n);
  const auto& persistence = settings_.state_store_persistence;
  if (persistence.configured)
    spdlog::warn(
        "event=statestore_in_memory mode={} message=\"persistence is configured, but mqttd has no durable backend yet: "
        "state store keys are kept in memory and do not survive a restart\"",
        persistence.mode == StateStorePersistence::Mode::All      ? "All"
        : persistence.mode == StateStorePersistence::Mode::Custom ? "Custom"
                                                                  : "None");
  spdlog::info("event=statestore_ready shards={} max_keys={} max_bytes={} backend=memory", n,
               settings_.state_store_max_keys, settings_.state_store_max_bytes);
}

Broker::~Broker() { stop(std::chrono::milliseconds(0)); }

void Broker::start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) w->start();
  spdlog::info("event=broker_started workers={} max_packet_size={} max_connections={}", workers_.size(),
               settings_.max_packet_size_bytes, settings_.max_connections);
}

void Broker::stop(std::chrono::milliseconds grace) {
  if (!started_) return;
  started_ = false;
  const auto phase_deadline = std::chrono::steady_clock::now() + grace + std::chrono::milliseconds(100);
  // Runs `task` on every worker and waits for all of them (at most until the grace runs out).
  auto on_every_worker = [&](auto task) {
    std::vector<std::future<void>> done;
    for (auto& w : workers_) {
      auto promise = std::make_shared<std::promise<void>>();
      done.push_back(promise->get_future());
      boost::asio::post(w->io(), [worker = w.get(), promise, task] {
        task(*worker);
        promise->set_value();
      });
    }
    for (auto& f : done) f.wait_until(phase_deadline);
  };
  // Every session ends with the process, so every will is due now, delayed ones included
  // [MQTT-3.1.3-9]. They go out while every subscriber is still connected: the wills first, then
  // two rounds on every worker, so that the deliveries a worker batched for another (its outbox,
  // flushed at the end of its turn) reach that worker's inbox and are written before the
  // DISCONNECTs below.
  on_every_worker([](Worker& w) { w.publish_wills_at_shutdown(); });
  on_every_worker([](Worker&) {});
  on_every_worker([](Worker&) {});
  on_every_worker([](Worker& w) {
    w.shutdown_connections();
    if (auto* e = w.extension()) e->shutdown();  // sockets still before their connection (PROXY headers)
  });
  // Give the transports a moment to write the DISCONNECT packets and the clients to close: a
  // lingering socket closed early would reset, and the reset discards the DISCONNECT.
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Asks every worker; a worker that does not answer before the deadline counts as open sockets.
  // Each round has counters of its own, shared with its tasks: a late answer to an earlier round
  // never counts in a later one.
  struct Round {
    std::atomic<std::size_t> open_sockets{0};
    std::atomic<std::size_t> answered{0};
  };
  auto count_sockets = [&]() -> std::size_t {
    auto round = std::make_shared<Round>();
    for (auto& w : workers_)
      boost::asio::post(w->io(), [worker = w.get(), round] {
        if (auto* e = worker->extension()) round->open_sockets += e->open_sockets();
        ++round->answered;
      });
    while (round->answered.load() < workers_.size() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return round->answered.load() < workers_.size() ? 1 : round->open_sockets.load();
  };
  while ((connections_.load() > 0 || count_sockets() > 0) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (auto& w : workers_) w->join();
  spdlog::info("event=broker_stopped");
}

std::size_t Broker::worker_count() const { return workers_.size(); }

boost::asio::io_context& Broker::io_context(std::size_t worker) { return workers_[worker]->io(); }

WorkerExtension* Broker::worker_extension(std::size_t worker) { return workers_[worker]->extension(); }

void Broker::set_worker_extension(std::size_t worker, std::unique_ptr<WorkerExtension> extension) {
  workers_[worker]->set_extension(std::move(extension));
}

std::size_t Broker::next_worker() { return next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size(); }

bool Broker::admit_connection() {
  if (connections_.fetch_add(1, std::memory_order_relaxed) >= settings_.max_connections) {
    connections_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

std::size_t Broker::AddressHash::operator()(const std::array<std::uint8_t, 16>& a) const noexcept {
  std::uint64_t hi, lo;
  std::memcpy(&hi, a.data(), 8);
  std::memcpy(&lo, a.data() + 8, 8);
  return std::hash<std::uint64_t>{}(hi * 0x9E3779B97F4A7C15ull ^ lo);
}

bool Broker::admit_address(const std::array<std::uint8_t, 16>& address) {
  const std::uint32_t limit = settings_.max_connections_per_address_per_second;
  if (limit == 0) return true;
  std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::lock_guard lock(rate_mutex_);
  if (second != rate_window_) {
    rate_window_ = second;
    rate_counts_.clear();
  }
  auto it = rate_counts_.find(address);
  if (it == rate_counts_.end()) {
    if (rate_counts_.size() >= kMaxRateAddresses) return true;  // the table is full: not counted this second
    rate_counts_.emplace(address, 1);
    return true;
  }
  if (it->second >= limit) return false;
  ++it->second;
  return true;
}

std::unique_ptr<ClientConnection> Broker::open_connection(std::size_t worker, Transport& transport) {
  return std::make_unique<ClientConnection>(*workers_[worker], transport);
}

void Broker::set_port_security(std::uint64_t endpoint_id, std::shared_ptr<const PortSecurity> security) {
  std::lock_guard lock(security_mutex_);
  if (security) {
    security_[endpoint_id] = std::move(security);
  } else {
    security_.erase(endpoint_id);
  }
}

std::shared_ptr<const PortSecurity> Broker::port_security(std::uint64_t endpoint_id) const {
  std::lock_guard lock(security_mutex_);
  auto it = security_.find(endpoint_id);
  return it == security_.end() ? nullptr : it->second;
}

void Broker::reauthorize_endpoint(std::uint64_t endpoint_id) {
  for (auto& w : workers_) w->post_task([endpoint_id](Worker& worker) { worker.reauthorize_connections(endpoint_id); });
}

void Broker::close_endpoint(std::uint64_t endpoint_id) {
  for (auto& w : workers_) w->post_task([endpoint_id](Worker& worker) { worker.shutdown_connections(endpoint_id); });
}

void Broker::limit_reached(Limit limit, std::string_view who, std::string_view detail) {
  auto& c = limits_[static_cast<std::size_t>(limit)];
  std::uint64_t hits = c.hits.fetch_add(1, std::memory_order_relaxed) + 1;
  std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
  std::int64_t last = c.last_log_ms.load(std::memory_order_relaxed);
  if (now - last < 1000 || !c.last_log_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  std::uint64_t since = hits - c.logged_hits.exchange(hits, std::memory_order_relaxed);
  spdlog::warn("event=limit_reached limit={} who=\"{}\" detail=\"{}\" hits_since_last_log={} hits_total={}",
               limit_name(limit), logged_client_id(who), detail, since, hits);
}

void Broker::count_event(SecurityEvent event) {
  events_[static_cast<std::size_t>(event)].fetch_add(1, std::memory_order_relaxed);
}

BrokerStats Broker::stats() const {
  BrokerStats s;
  s.connections = connections_.load(std::memory_order_relaxed);
  s.sessions = sessions_->size();
  s.retained_messages = retained_->size();
  s.offline_sessions = offline_sessions.load(std::memory_order_relaxed);
  s.queued_bytes = DeliveryQueue<Delivery>::total_bytes();
  for (std::size_t i = 0; i < limits_.size(); ++i) s.limit_hits[i] = limits_[i].hits.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < events_.size(); ++i) s.security_events[i] = events_[i].load(std::memory_order_relaxed);
  for (const auto& w : workers_) {
    for (const auto& c : w->metrics.messages_in) s.messages_received += c.get();
    for (const auto& c : w->metrics.messages_out) s.messages_sent += c.get();
    for (const auto& c : w->metrics.drops) s.messages_dropped += c.get();
  }
  return s;
}

}  // namespace mqttd
