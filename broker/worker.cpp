#include "broker/worker.hpp"
#include "broker/logged_client_id.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "broker/authentication_pool.hpp"
#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_registry.hpp"
#include "broker/state_store_shard.hpp"
#include "broker/transport.hpp"

namespace mqttd {

Worker::Worker(Broker& broker, unsigned index)
    : ConnectionHost(index, broker.settings(), Clock::now(), std::chrono::system_clock::now()),
      broker_(broker),
      io_(1),
      ticker_(io_),
      wheel_(kWheelSlots),
      wheel_start_(now()),
      state_store_(std::make_unique<StateStoreShard>(*this, broker.state_store_quota())) {}

Worker::~Worker() { join(); }

void Worker::set_worker_count(std::size_t n) { outbox_.resize(n); }

void Worker::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
    // On this thread, as the loop ends: the poller's transports close with every worker alive.
    extension_.reset();
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

// ---------------------------------------------------------------- connections

std::uint64_t Worker::add_connection(ClientConnection& c) { return connections_.add(c, broker_.next_connection_id()); }

void Worker::schedule_check(ClientConnection& c, Clock::time_point when) {
  if (when == Clock::time_point::max()) return;
  auto ticks = when <= wheel_start_
                   ? 0
                   : static_cast<std::uint64_t>((when - wheel_start_ + kTickInterval - std::chrono::nanoseconds(1)) /
                                                kTickInterval);
  ticks = std::clamp(ticks, wheel_tick_ + 1, wheel_tick_ + kWheelSlots - 1);
  // Already filed for this tick or an earlier one still to come: that check files it again.
  if (c.check_tick_ > wheel_tick_ && c.check_tick_ <= ticks) return;
  c.check_tick_ = static_cast<std::uint32_t>(ticks);  // 2^32 ticks of 250 ms: 34 years
  wheel_[ticks % kWheelSlots].push_back(c.id());
}

void Worker::remove_connection(ClientConnection& c) {
  connections_.remove(c.id());
  if (c.flush_scheduled) std::erase(to_flush_, &c);
}

ClientConnection* Worker::find_connection(std::uint64_t id) {
  return connections_.find(id, [](const ClientConnection& c) { return c.id(); });
}

void Worker::request_flush(ClientConnection& c) {
  if (!c.flush_scheduled) {
    c.flush_scheduled = true;
    to_flush_.push_back(&c);
  }
  schedule_flush();
}

void Worker::schedule_flush() {
  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(io_, [this] { flush(); });
  }
}

// Runs once per turn of the event loop in which something was queued: cross-worker deliveries
// go out in one batch per target, and each connection with output gets one write.
void Worker::flush() {
  flush_posted_ = false;
  for (std::size_t w = 0; w < outbox_.size(); ++w) {
    auto& batch = outbox_[w];
    if (batch.empty()) continue;
    Worker& target = broker_.worker(w);
    bool wake;
    std::size_t dropped = 0;
    {
      std::lock_guard lock(target.inbox_mutex_);
      // What the inbox holds: each delivery, and each message once per run of its deliveries
      // (one publish() queues them together). QoS 0 stops at kMaxInboxDeliveryBytes; QoS 1 and 2
      // go on to kMaxInboxReliableBytes, so that a QoS 0 flood cannot make other clients lose
      // acknowledged messages. An empty inbox takes one delivery whatever its size, and the
      // further deliveries of a message already taken are judged without its bytes (they are paid
      // for): a message larger than the bound reaches each of its subscribers there.
      std::size_t bytes = target.inbox_delivery_bytes_;
      const Message* counted = nullptr;
      std::size_t counted_size = 0;
      const bool inbox_was_empty = target.inbox_deliveries_.empty();
      std::size_t kept = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const Message* m = batch[i].delivery.message.get();
        const bool paid = m && m == counted;
        std::size_t cost = sizeof(RemoteDelivery) + (m && !paid ? m->stored_size() : 0);
        std::size_t limit = batch[i].delivery.qos == 0 ? kMaxInboxDeliveryBytes : kMaxInboxReliableBytes;
        std::size_t judged = paid ? bytes - counted_size : bytes;
        if (bytes != 0 && judged + cost > limit) {
          ++dropped;
          continue;
        }
        bytes += cost;
        if (!paid) {
          counted = m;
          counted_size = m ? m->stored_size() : 0;
        }
        if (kept != i) batch[kept] = std::move(batch[i]);
        ++kept;
      }
      batch.resize(kept);
      target.inbox_delivery_bytes_ = bytes;
      if (inbox_was_empty) {
        target.inbox_deliveries_.swap(batch);
      } else {
        for (auto& d : batch) target.inbox_deliveries_.push_back(std::move(d));
      }
      wake = kept > 0 && !target.inbox_wake_posted_;
      if (wake) target.inbox_wake_posted_ = true;
    }
    if (dropped > 0) {
      // The target worker is that far behind: these deliveries are dropped (as a full session
      // queue drops), rather than held without bound.
      for (std::size_t i = 0; i < dropped; ++i) metrics.drop(DropReason::WorkerBacklog);
      limit_reached(Limit::WorkerBacklog, fmt::format("worker {}", index()),
                    fmt::format("{} deliveries for worker {} dropped: its inbox is at its bound ({} bytes for "
                                "QoS 0, {} for QoS 1 and 2)",
                                dropped, w, kMaxInboxDeliveryBytes, kMaxInboxReliableBytes));
    }
    batch.clear();
    if (wake) boost::asio::post(target.io_, [&target] { target.drain_inbox(); });
  }
  // Flushing can schedule more flushes (a drained connection pulls from its session queue), so
  // iterate over the current batch only.
  std::vector<ClientConnection*> batch;
  batch.swap(to_flush_);
  for (auto* c : batch) c->flush_scheduled = false;
  // Transports close asynchronously, so no connection of the batch is destroyed in this loop.
  for (auto* c : batch) c->flush_output();
}

void Worker::shutdown_connections(std::uint64_t endpoint_id) {
  std::vector<ClientConnection*> chosen;
  for (auto* c : connections_.all())
    if (endpoint_id == 0 || c->endpoint_id() == endpoint_id) chosen.push_back(c);
  auto why = endpoint_id == 0 ? "server shutting down" : "listener port closed";
  for (auto* c : chosen) c->disconnect(codec::Reason::ServerShuttingDown, why);
}

void Worker::publish_wills_at_shutdown() {
  for (auto* c : connections_.all()) c->publish_will_now();
  for (auto& [raw, session] : offline_)
    if (PendingWill will = session->take_pending_will(index())) publish_will(will.message, will.authority);
}

void Worker::reauthorize_connections(std::uint64_t endpoint_id) {
  std::vector<ClientConnection*> chosen;
  for (auto* c : connections_.all())
    if (c->endpoint_id() == endpoint_id) chosen.push_back(c);
  for (auto* c : chosen) c->reauthorize();
}

// ---------------------------------------------------------------- cross-thread

void Worker::post_task(std::function<void(Worker&)> task) {
  bool wake;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_tasks_.push_back(std::move(task));
    wake = !inbox_wake_posted_;
    inbox_wake_posted_ = true;
  }
  if (wake) boost::asio::post(io_, [this] { drain_inbox(); });
}

void Worker::drain_inbox() {
  {
    std::lock_guard lock(inbox_mutex_);
    drained_tasks_.swap(inbox_tasks_);
    drained_deliveries_.swap(inbox_deliveries_);
    inbox_delivery_bytes_ = 0;
    inbox_wake_posted_ = false;
  }
  // A unit of work per 64 tasks: a task's state store request then sees the clock as read at most
  // 64 requests earlier, however many other workers queued.
  for (std::size_t i = 0; i < drained_tasks_.size(); ++i) {
    if (i % 64 == 0) begin_work_unit();
    drained_tasks_[i](*this);
  }
  drained_tasks_.clear();
  for (auto& rd : drained_deliveries_) deliver(rd.session, std::move(rd.delivery));
  drained_deliveries_.clear();
}

// ---------------------------------------------------------------- ticks

void Worker::schedule_tick() {
  ticker_.expires_after(kTickInterval);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // How late the tick runs is how long the event loop was busy with other work.
    auto late = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ticker_.expiry()).count();
    metrics.loop_lag.observe_micros(static_cast<std::uint64_t>(std::max<std::int64_t>(late, 0)), kLoopLagBoundsMicros);
    metrics.subscriptions.store(index_tree_.subscription_count(), std::memory_order_relaxed);
    tick();
    schedule_tick();
  });
}

void Worker::tick() { tick_at(Clock::now(), std::chrono::system_clock::now()); }

void Worker::tick_at(Clock::time_point now_point, std::chrono::system_clock::time_point wall_now) {
  set_time(now_point, wall_now);
  const Clock::time_point at = now();
  // Expired retained messages leave the store (not only skipped when matched), so that they stop
  // counting against its bounds. One worker is enough: the store is shared.
  if (index() == 0) broker_.retained().purge_expired(at);
  state_store_->expire();
  auto target = at <= wheel_start_ ? 0 : static_cast<std::uint64_t>((at - wheel_start_) / kTickInterval);
  // Every bucket from the last tick run to now (after a long stall, each bucket once).
  std::uint64_t from = std::max(wheel_tick_ + 1, target >= kWheelSlots ? target - kWheelSlots + 1 : 0);
  std::vector<std::uint64_t> due;
  for (std::uint64_t t = from; t <= target; ++t) {
    due.clear();
    due.swap(wheel_[t % kWheelSlots]);
    wheel_tick_ = t;
    for (auto id : due) {
      ClientConnection* c = find_connection(id);
      if (!c || c->check_tick_ % kWheelSlots != t % kWheelSlots) continue;  // gone, or filed elsewhere since
      if (c->check_tick_ > target) {
        wheel_[t % kWheelSlots].push_back(id);  // a later round (filed after a stall): not yet
        continue;
      }
      ++connection_checks_;
      c->check_tick_ = 0;
      schedule_check(*c, c->tick());
    }
  }
  wheel_tick_ = std::max(wheel_tick_, target);

  std::vector<SessionPtr> expired;
  for (auto& [raw, s] : offline_) {
    if (SessionHoldings* h = s->holdings_if_any(index()); h && h->pending_will && at >= h->pending_will.due) {
      PendingWill will = s->take_pending_will(index());
      publish_will(will.message, will.authority);
    }
    if (s->expiry_interval != 0xFFFFFFFF && at >= s->disconnected_at + std::chrono::seconds(s->expiry_interval))
      expired.push_back(s);
  }
  for (auto& s : expired) {
    if (broker_.sessions().remove_if_unclaimed(s, s->attached_generation)) end_session(s);
  }
}

// ---------------------------------------------------------------- ConnectionHost

void Worker::connection_closed() { broker_.connection_closed(); }

void Worker::count_port_event(std::uint64_t endpoint_id, PortEvent event) {
  broker_.port_metrics().count(endpoint_id, event);
}

std::shared_ptr<const PortSecurity> Worker::port_security(std::uint64_t endpoint_id) {
  return broker_.port_security(endpoint_id);
}

void Worker::limit_reached(Limit limit, std::string_view who, std::string_view detail) {
  broker_.limit_reached(limit, who, detail);
}

void Worker::count_event(SecurityEvent event) { broker_.count_event(event); }

void Worker::match_retained(std::string_view filter, std::vector<MessageRef>& out) {
  broker_.retained().match(filter, now(), out);
}

// A check that may cost a scrypt or wait for a remote service: it starts on the broker's
// authentication thread (a password is hashed there; a token review or a custom server's answer
// arrives on the HTTP client's thread), and its answer comes back to this worker as a task, which
// finds the connection by id (it may have left).
bool Worker::submit_authentication(AuthenticationRequest request) {
  auto job = std::make_shared<AuthenticationRequest>(std::move(request));
  auto abandoned = job->abandoned;
  return broker_.authentication_pool().submit(
      [job, worker = this] {
        const bool reauthentication = job->reauthenticate_with.has_value();
        auto deliver = [worker, connection = job->connection_id, reauthentication](authn::Result result) {
          worker->post_task(
              [connection, reauthentication, result = std::make_shared<authn::Result>(std::move(result))](Worker& w) {
                ClientConnection* c = w.find_connection(connection);
                if (!c) return;
                if (reauthentication)
                  c->on_reauthenticated(std::move(*result));
                else
                  c->on_authenticated(std::move(*result));
              });
        };
        if (reauthentication)
          job->authenticator->reauthenticate_async(*job->reauthenticate_with, std::move(job->credentials),
                                                   std::move(deliver));
        else
          job->authenticator->authenticate_async(std::move(job->credentials), std::move(deliver),
                                                 /*may_block=*/true);
      },
      abandoned,
      [job, worker = this] {
        worker->broker().count_event(SecurityEvent::AuthenticationSkipped);
        spdlog::debug("event=authentication_skipped client_id={} peer={} reason=\"the client left before its check\"",
                      logged_client_id(job->credentials.client_id), job->peer);
      });
}

std::size_t Worker::inbox_depth() {
  std::lock_guard lock(inbox_mutex_);
  return inbox_deliveries_.size() + inbox_tasks_.size();
}

}  // namespace mqttd
