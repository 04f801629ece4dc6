#include "broker/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "codec/utf8.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_registry.hpp"
#include "broker/transport.hpp"

namespace mqttd {

namespace {
constexpr std::size_t kReadBufferSize = 64 * 1024;
}  // namespace

Worker::Worker(Broker& broker, unsigned index)
    : broker_(broker),
      index_(index),
      io_(1),
      ticker_(io_),
      now_(Clock::now()),
      read_buffer_(kReadBufferSize),
      wheel_(kWheelSlots),
      wheel_start_(now_) {
  scratch_.max_user_properties = broker.settings().max_user_properties;
  scratch_.max_topic_filters = broker.settings().max_filters_per_subscribe;
}

Worker::~Worker() { join(); }

void Worker::set_worker_count(std::size_t n) { outbox_.resize(n); }

void Worker::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

// ---------------------------------------------------------------- connections

void Worker::add_connection(ClientConnection* c) {
  connections_.emplace(c->id(), c);
  schedule_check(*c, c->next_deadline(now_));
}

void Worker::schedule_check(ClientConnection& c, Clock::time_point when) {
  if (when == Clock::time_point::max()) return;
  auto ticks = when <= wheel_start_
                   ? 0
                   : static_cast<std::uint64_t>((when - wheel_start_ + kTickInterval - std::chrono::nanoseconds(1)) /
                                                kTickInterval);
  ticks = std::clamp(ticks, wheel_tick_ + 1, wheel_tick_ + kWheelSlots - 1);
  // Already filed for this tick or an earlier one still to come: that check files it again.
  if (c.check_tick_ > wheel_tick_ && c.check_tick_ <= ticks) return;
  c.check_tick_ = ticks;
  wheel_[ticks % kWheelSlots].push_back(c.id());
}

void Worker::remove_connection(ClientConnection* c) {
  connections_.erase(c->id());
  if (c->flush_scheduled) std::erase(to_flush_, c);
}

ClientConnection* Worker::find_connection(std::uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second;
}

void Worker::schedule_flush(ClientConnection* c) {
  if (c && !c->flush_scheduled) {
    c->flush_scheduled = true;
    to_flush_.push_back(c);
  }
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
    {
      std::lock_guard lock(target.inbox_mutex_);
      if (target.inbox_deliveries_.empty()) {
        target.inbox_deliveries_.swap(batch);
      } else {
        for (auto& d : batch) target.inbox_deliveries_.push_back(std::move(d));
      }
      wake = !target.inbox_wake_posted_;
      target.inbox_wake_posted_ = true;
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
  for (auto& [id, c] : connections_)
    if (endpoint_id == 0 || c->endpoint_id() == endpoint_id) chosen.push_back(c);
  auto why = endpoint_id == 0 ? "server shutting down" : "listener port closed";
  for (auto* c : chosen) c->disconnect(codec::Reason::ServerShuttingDown, why);
}

void Worker::reauthorize_connections(std::uint64_t endpoint_id) {
  std::vector<ClientConnection*> chosen;
  for (auto& [id, c] : connections_)
    if (c->endpoint_id() == endpoint_id) chosen.push_back(c);
  for (auto* c : chosen) c->reauthorize();
}

// ---------------------------------------------------------------- cross-thread

void Worker::post(std::function<void(Worker&)> task) {
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
    inbox_wake_posted_ = false;
  }
  for (auto& task : drained_tasks_) task(*this);
  drained_tasks_.clear();
  for (auto& rd : drained_deliveries_) deliver(rd.session, std::move(rd.delivery));
  drained_deliveries_.clear();
}

// ---------------------------------------------------------------- ticks

void Worker::schedule_tick() {
  ticker_.expires_after(kTickInterval);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    tick();
    schedule_tick();
  });
}

void Worker::tick() { tick_at(Clock::now()); }

void Worker::tick_at(Clock::time_point now) {
  now_ = now;
  // Expired retained messages leave the store (not only skipped when matched), so that they stop
  // counting against its bounds. One worker is enough: the store is shared.
  if (index_ == 0) broker_.retained().purge_expired(now_);
  auto target = now_ <= wheel_start_ ? 0 : static_cast<std::uint64_t>((now_ - wheel_start_) / kTickInterval);
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
      schedule_check(*c, c->tick(now_));
    }
  }
  wheel_tick_ = std::max(wheel_tick_, target);

  std::vector<SessionPtr> expired;
  for (auto& [raw, s] : offline_) {
    if (s->pending_will && now_ >= s->pending_will.due) {
      PendingWill will = std::move(s->pending_will);
      s->pending_will = PendingWill{};
      publish_will(will.message, will.authority);
    }
    if (s->expiry_interval != 0xFFFFFFFF && now_ >= s->disconnected_at + std::chrono::seconds(s->expiry_interval))
      expired.push_back(s);
  }
  for (auto& s : expired) {
    if (broker_.sessions().remove_if_unclaimed(s, s->attached_generation)) end_session(s);
  }
}

// ---------------------------------------------------------------- sessions

void Worker::connect(ClientConnection& c, const std::string& client_id, bool clean_start) {
  auto claim = broker_.sessions().claim(client_id, index_);
  if (!claim.existed) {
    claim.session->attached_generation = claim.generation;
    c.attach(claim.session, false);
    return;
  }
  handover(claim.session, claim.generation, index_, c.id(), clean_start, c.principal_identity());
}

// Runs on the session's owner (chasing it if it moved): detaches the old connection, then
// passes ownership to worker `to`.
void Worker::handover(SessionPtr s, std::uint64_t generation, unsigned to, std::uint64_t connection, bool clean_start,
                      std::string identity) {
  unsigned owner = s->owner.load(std::memory_order_acquire);
  if (owner != index_) {
    broker_.worker(owner).post([=, identity = std::move(identity)](Worker& w) mutable {
      w.handover(s, generation, to, connection, clean_start, std::move(identity));
    });
    return;
  }
  if (s->generation.load(std::memory_order_acquire) != generation) {
    // A newer CONNECT for the same client id claimed the session; it will take it from here.
    broker_.worker(to).post([connection](Worker& w) {
      if (auto* c = w.find_connection(connection)) c->superseded();
    });
    return;
  }
  // Someone else's client id: the session is not theirs to resume (its subscriptions and
  // messages were authorized for another principal). For its owner the session ends here, so
  // its will goes out as at any session end.
  // A session with expiry 0 ends with its connection (taken over now, or closed while this
  // claim was on its way): it is never resumed [MQTT-3.1.2-6], [MQTT-3.2.2-3].
  bool fresh = clean_start || s->expiry_interval == 0;
  if (!clean_start && s->principal_identity != identity) {
    spdlog::warn(
        "event=session_principal_changed client_id={} message=\"the session was created by another "
        "principal; starting a fresh one\"",
        s->client_id);
    broker_.count_event(SecurityEvent::SessionPrincipalChanged);
    fresh = true;
  }
  // A session that ends here ends its will's delay: the will of its last connection (waiting
  // for the delay while the session was offline) goes out now [MQTT-3.1.3-9]; a resumed session
  // withholds it (the client came back in time).
  if (fresh && s->pending_will) {
    PendingWill will = std::move(s->pending_will);
    s->pending_will = PendingWill{};
    publish_will(will.message, will.authority);
  }
  if (s->connection) s->connection->taken_over(fresh);
  remove_offline(s.get());
  if (to == index_) {
    attach(std::move(s), generation, connection, fresh, identity);
    return;
  }
  s->owner.store(to, std::memory_order_release);
  broker_.worker(to).post(
      [=, identity = std::move(identity)](Worker& w) { w.attach(s, generation, connection, fresh, identity); });
}

// `fresh`: Clean Start, or a session taken from another principal; it starts empty.
void Worker::attach(SessionPtr s, std::uint64_t generation, std::uint64_t connection, bool fresh,
                    const std::string& identity) {
  ClientConnection* c = find_connection(connection);
  bool current = s->generation.load(std::memory_order_acquire) == generation;
  if (!current) {
    if (c) c->superseded();
    // A newer claimant's handover will find the session here if it is still owned here. It may
    // not be: that handover can have reached this worker first (its claim landed between the
    // old owner's store of `owner` and its post of this attach) and moved the session on, or
    // ended it. Then the session is not this worker's to touch, nor to keep offline.
    if (s->owner.load(std::memory_order_acquire) == index_ && !s->ended && !s->connection) {
      s->disconnected_at = now_;
      add_offline(s);
    }
    return;
  }
  s->attached_generation = generation;
  // A stale attach may have filed it offline here meanwhile (the session went W1 -> W2 -> W1):
  // a session being attached is not offline.
  remove_offline(s.get());
  if (fresh) {
    // The session is the new principal's from here on (a later takeover compares with this).
    clear_session(s);
    s->principal_identity = identity;
  }
  if (!c) {
    // The client left while its session was on the way: it stays here, offline.
    session_disconnected(s);
    return;
  }
  c->attach(std::move(s), !fresh);
}

void Worker::add_offline(const SessionPtr& s) {
  if (!offline_.emplace(s.get(), s).second) return;
  broker_.offline_sessions.fetch_add(1, std::memory_order_relaxed);
}

void Worker::remove_offline(Session* s) {
  if (offline_.erase(s) == 0) return;
  broker_.offline_sessions.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::session_disconnected(const SessionPtr& s) {
  s->connection = nullptr;
  s->online.store(false, std::memory_order_relaxed);
  s->disconnected_at = now_;
  if (s->expiry_interval == 0) {
    if (broker_.sessions().remove_if_unclaimed(s, s->attached_generation)) {
      end_session(s);
      return;
    }
  }
  if (broker_.offline_sessions.load(std::memory_order_relaxed) >= broker_.settings().max_offline_sessions) {
    // One more offline session would pass the bound: this one ends now (as if its expiry were
    // 0), so the sessions already kept are not evicted by a flood of new client ids.
    broker_.limit_reached(Limit::OfflineSessions, s->client_id, "session ended at disconnect");
    if (broker_.sessions().remove_if_unclaimed(s, s->attached_generation)) {
      end_session(s);
      return;
    }
  }
  add_offline(s);
  // Unacknowledged shared-subscription messages go to another member of the group now rather
  // than wait for this one to come back; with no other member they wait here.
  redistribute_shared(s, true);
}

// Takes this session's shared-subscription messages and hands each to another member of its
// group: the queued ones, and the QoS 1 ones in flight (at least once: the client may have them).
// A QoS 2 message in flight was sent to this client: it is completed with this client when it
// returns, and never sent to another [MQTT-4.8.2-4], [MQTT-4.8.2-5]. With no other member, a
// message stays in this session if it `continues`, and is counted as dropped if it ends. A
// delivery to another member never touches this session's in-flight table (at most its queue,
// if the other member refuses and this one is chosen), so that table is walked while handing
// over; the queue is emptied of shared messages first.
void Worker::redistribute_shared(const SessionPtr& s, bool continues) {
  // In flight: handed over where another member can take it; otherwise it stays in flight, with
  // its packet identifier, to be resent (DUP) when the client returns [MQTT-4.4.0-1].
  std::vector<std::uint16_t> handed_over;
  s->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (!m.delivery.shared_filter || !m.delivery.message || m.delivery.qos == 2) return;
    if (redistribute(s.get(), m.delivery)) handed_over.push_back(m.packet_id);
  });
  for (auto id : handed_over) s->inflight.erase(id);
  std::vector<Delivery> queued;
  s->queue.extract_if([](const Delivery& d) { return d.shared_filter != nullptr; },
                      [&](Delivery&& d) { queued.push_back(std::move(d)); });
  for (auto& d : queued) {
    if (redistribute(s.get(), d)) continue;
    if (continues) {
      enqueue(*s, std::move(d));
    } else {
      messages_dropped.increment();
    }
  }
}

// The session is over: its will goes out, its subscriptions leave every replica, and messages
// held for shared subscriptions go to other members.
void Worker::end_session(const SessionPtr& s) {
  remove_offline(s.get());
  s->ended = true;
  if (s->pending_will) {
    PendingWill will = std::move(s->pending_will);
    s->pending_will = PendingWill{};
    publish_will(will.message, will.authority);
  }
  clear_session(s);
}

void Worker::publish_will(const MessageRef& will, const WillAuthority& authority) {
  auto now = broker_.port_security(authority.endpoint_id);
  const char* refused = nullptr;
  if (!authority.principal) {
    // Admitted by a port that authenticated nobody: the will goes out only if it still does.
    // (No registered security means a port that admits everyone, such as --listen.)
    if (now && now->authenticator) refused = "the port now requires authentication";
  } else if (!now || !now->authenticator || !authority.security || !authority.security->authenticator ||
             now->authenticator->resource() != authority.security->authenticator->resource()) {
    refused = "the port's authentication changed since CONNECT";
  } else if (now->policy) {
    auto permissions = now->policy->bind(*authority.principal);
    if (!permissions->may_connect() || !permissions->may_publish(will->topic()))
      refused = "the current policy does not allow it";
  }
  if (refused) {
    spdlog::info("event=will_refused client_id={} topic=\"{}\" reason=\"{}\"",
                 authority.principal ? authority.principal->client_id : "", will->topic(), refused);
    broker_.count_event(SecurityEvent::WillNotAuthorized);
    messages_dropped.increment();
    return;
  }
  publish(will, authority.principal ? std::string_view(authority.principal->client_id) : std::string_view{});
}

void Worker::enqueue(Session& s, Delivery&& d) {
  const auto& settings = broker_.settings();
  auto& queue = s.queue;
  const std::uint64_t size = DeliveryQueue<Delivery>::cost(d);
  auto over = [&]() -> std::optional<Limit> {
    if (queue.size() >= settings.subscriber_queue_length) return Limit::Count;  // the queue's length: not ours
    // An empty queue takes one message of any size the packet limits allowed: otherwise a message
    // above the per-session bound could never reach this subscriber, even with nothing queued.
    if (!queue.empty() && queue.bytes() + size > settings.max_queued_bytes_per_session)
      return Limit::QueuedBytesPerSession;
    if (DeliveryQueue<Delivery>::total_bytes() + size > settings.max_queued_bytes_total) return Limit::QueuedBytesTotal;
    return std::nullopt;
  };
  auto limit = over();
  if (!limit) {
    queue.push_back(std::move(d));
    return;
  }
  if (*limit != Limit::Count)
    broker_.limit_reached(
        *limit, s.client_id,
        settings.subscriber_queue_strategy == QueueStrategy::None ? "new message dropped" : "oldest messages dropped");
  // Dropping this session's oldest messages helps only if they are what is over the bound: a
  // message larger than the per-session bound, or a total held by other sessions, would empty
  // this queue and still not fit.
  bool evicting_helps =
      size <= settings.max_queued_bytes_per_session &&
      DeliveryQueue<Delivery>::total_bytes() - queue.bytes() + size <= settings.max_queued_bytes_total;
  if (settings.subscriber_queue_strategy == QueueStrategy::DropOldest && evicting_helps) {
    while (limit && !queue.empty()) {
      queue.take_front();
      messages_dropped.increment();
      ++s.dropped_messages;
      limit = over();
    }
    if (!limit) {
      queue.push_back(std::move(d));
      return;
    }
  }
  messages_dropped.increment();
  ++s.dropped_messages;
}

void Worker::clear_session(const SessionPtr& s) {
  if (!s->subscriptions.empty()) {
    std::vector<IndexChange> changes;
    for (auto& [filter, sub] : s->subscriptions) changes.push_back(IndexChange::removal(filter));
    s->subscriptions.clear();
    change_subscriptions(s, std::move(changes), nullptr);
  }
  redistribute_shared(s, false);
  s->inflight.clear();
  s->queue.clear();
  s->inbound_qos2.clear();
  s->pending_will = PendingWill{};
}

IndexChange IndexChange::removal(std::string_view filter) {
  IndexChange ch;
  ch.add = false;
  codec::SharedFilter shared;
  if (codec::parse_shared_filter(filter, shared)) {
    ch.filter = shared.filter;
    ch.share_name = shared.group;
  } else {
    ch.filter = filter;
  }
  return ch;
}

void Worker::apply(const SessionPtr& s, const std::vector<IndexChange>& changes) {
  for (const auto& ch : changes) {
    if (ch.add) {
      index_tree_.add(s, ch.filter, ch.options, ch.share_name, ch.share_filter);
    } else {
      index_tree_.remove(s.get(), ch.filter, ch.share_name);
    }
  }
}

// Every replica applies the change before `done` runs, so that once the client has its SUBACK,
// a message published on any worker finds the subscription. And before that, visibility: the
// change is queued on every other worker and then the broker's index epoch is advanced, so a
// worker that reads a PUBLISH after this SUBSCRIBE was read sees a new epoch and applies its
// queued changes before matching (apply_pending_index_changes); a posted wake-up applies them
// anyway when no PUBLISH comes.
struct Worker::IndexBarrier {
  std::atomic<std::size_t> remaining;
  std::vector<IndexChange> changes;
  std::function<void(Worker&)> done;
};

void Worker::change_subscriptions(const SessionPtr& s, std::vector<IndexChange> changes,
                                  std::function<void(Worker&)> done) {
  apply(s, changes);
  std::size_t others = broker_.worker_count() - 1;
  if (others == 0) {
    if (done) done(*this);
    return;
  }
  auto barrier = std::make_shared<IndexBarrier>();
  barrier->remaining = others;
  barrier->changes = std::move(changes);
  barrier->done = std::move(done);
  for (std::size_t w = 0; w < broker_.worker_count(); ++w) {
    if (w == index_) continue;
    broker_.worker(w).queue_index_change(s, barrier);
  }
  // After every queue holds the change: a worker that sees this epoch finds it there.
  broker_.index_epoch.fetch_add(1, std::memory_order_acq_rel);
}

void Worker::queue_index_change(const SessionPtr& s, std::shared_ptr<IndexBarrier> barrier) {
  bool wake;
  {
    std::lock_guard lock(index_mutex_);
    wake = pending_index_.empty();
    pending_index_.push_back(PendingIndexChange{s, std::move(barrier)});
  }
  if (wake) post([](Worker& w) { w.apply_pending_index_changes(); });
}

void Worker::apply_pending_index_changes() {
  // Read first: every change counted in this epoch was queued before it was counted.
  std::uint64_t epoch = broker_.index_epoch.load(std::memory_order_acquire);
  std::vector<PendingIndexChange> applying;
  {
    std::lock_guard lock(index_mutex_);
    applying.swap(pending_index_);
  }
  for (auto& [s, barrier] : applying) {
    apply(s, barrier->changes);
    if (barrier->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 && barrier->done) {
      unsigned owner = s->owner.load(std::memory_order_acquire);
      if (owner == index_) {
        barrier->done(*this);
      } else {
        broker_.worker(owner).post(barrier->done);
      }
    }
  }
  index_epoch_seen_ = epoch;
}

// ---------------------------------------------------------------- routing

std::size_t Worker::publish(const MessageRef& msg, std::string_view publisher) {
  // One load per message; it changes only when subscriptions do.
  if (broker_.index_epoch.load(std::memory_order_acquire) != index_epoch_seen_) apply_pending_index_changes();
  if (msg->retain()) {
    auto stored = broker_.retained().set(msg);
    if (stored == RetainedStore::SetResult::TooManyMessages || stored == RetainedStore::SetResult::TooManyBytes) {
      bool count = stored == RetainedStore::SetResult::TooManyMessages;
      const auto& s = broker_.settings();
      broker_.limit_reached(
          count ? Limit::RetainedMessages : Limit::RetainedBytes, publisher,
          count ? fmt::format("topic \"{}\": {} retained messages stored", msg->topic(), s.max_retained_messages)
                : fmt::format("topic \"{}\": {} bytes would exceed {}", msg->topic(), RetainedStore::cost(*msg),
                              s.max_retained_bytes));
      messages_dropped.increment();
      return kRetainRefused;
    }
  }
  matches_.clear();
  const Session* origin = static_cast<const Session*>(msg->origin());
  index_tree_.match(
      msg->topic(),
      [&](const Subscriber& sub) {
        if (sub.options.no_local && sub.session.get() == origin) return;
        matches_.push_back(Match{&sub, nullptr});
      },
      [&](SharedGroup& group) {
        if (const Subscriber* member = choose_member(group, nullptr, msg->topic()))
          matches_.push_back(Match{member, &group});
      });
  if (matches_.empty()) return 0;
  // One delivery per session for its plain subscriptions: the highest QoS granted, and every
  // subscription identifier (MQTT 5 section 3.3.4). Shared-group deliveries stay separate.
  if (matches_.size() > 1) {
    std::sort(matches_.begin(), matches_.end(), [](const Match& a, const Match& b) {
      if (a.subscriber->session.get() != b.subscriber->session.get())
        return a.subscriber->session.get() < b.subscriber->session.get();
      return a.group < b.group;
    });
  }
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < matches_.size();) {
    const Match& first = matches_[i];
    Delivery d;
    d.message = msg;
    d.qos = 0;
    std::size_t j = i;
    do {
      const auto& opts = matches_[j].subscriber->options;
      d.qos = std::max<std::uint8_t>(d.qos, std::min(msg->qos(), opts.qos));
      d.retain = d.retain || (opts.retain_as_published && msg->retain());
      d.subscription_ids.add(opts.identifier);
      ++j;
    } while (!first.group && j < matches_.size() && !matches_[j].group &&
             matches_[j].subscriber->session == first.subscriber->session);
    if (first.group) d.shared_filter = first.group->share_filter;
    deliver(first.subscriber->session, std::move(d));
    ++delivered;
    i = j;
  }
  return delivered;
}

const Subscriber* Worker::choose_member(SharedGroup& g, const Session* exclude, std::string_view topic) {
  std::size_t n = g.members.size();
  const Subscriber* fallback = nullptr;
  for (std::size_t k = 0; k < n; ++k) {
    const Subscriber& m = g.members[(g.next + k) % n];
    if (m.session.get() == exclude) continue;
    // Only members allowed to receive it: a member that may not would drop the message after
    // the publisher was told it was delivered.
    if (!m.session->may_receive_snapshot(topic)) continue;
    if (m.session->online.load(std::memory_order_relaxed)) {
      g.next = (g.next + k + 1) % n;
      return &m;
    }
    if (!fallback) fallback = &m;
  }
  if (fallback) {
    g.next = (g.next + 1) % n;
  } else if (n > 0) {
    broker_.count_event(SecurityEvent::SharedNoEligibleMember);
    spdlog::debug("event=shared_no_eligible_member topic=\"{}\"", topic);
  }
  return fallback;
}

// Hands `d` to another member of its shared group than `leaving`; false (and `d` untouched) if
// there is none that may receive it.
bool Worker::redistribute(const Session* leaving, Delivery& d) {
  codec::SharedFilter shared;
  if (!d.message || !d.shared_filter || !codec::parse_shared_filter(*d.shared_filter, shared)) return false;
  SharedGroup* group = index_tree_.find_group(shared.filter, shared.group);
  if (!group) return false;
  const Subscriber* member = choose_member(*group, leaving, d.message->topic());
  if (!member) return false;
  d.qos = std::min(d.message->qos(), member->options.qos);
  d.subscription_ids = SubscriptionIds();
  d.subscription_ids.add(member->options.identifier);
  deliver(member->session, std::move(d));
  return true;
}

void Worker::deliver(const SessionPtr& s, Delivery&& d) {
  unsigned owner = s->owner.load(std::memory_order_acquire);
  if (owner == index_) {
    deliver_here(s, std::move(d));
    return;
  }
  outbox_[owner].push_back(RemoteDelivery{s, std::move(d)});
  schedule_flush(nullptr);
}

void Worker::deliver_here(const SessionPtr& s, Delivery&& d) {
  if (s->ended) {
    if (!d.shared_filter || !redistribute(s.get(), d)) messages_dropped.increment();
    return;
  }
  if (d.message->expired(now_)) return;
  if (!s->may_receive(d.message->topic())) {
    // A shared-group message goes to another member (this one's permissions changed since the
    // publisher's worker chose it); redistribute() picks only members allowed to receive it.
    if (d.shared_filter && redistribute(s.get(), d)) return;
    messages_dropped.increment();
    return;
  }
  if (s->connection && s->connection->connected()) {
    s->connection->send(std::move(d));
    return;
  }
  // Offline: QoS 0 is not kept (MQTT 5 section 3.1.2.4 allows either; AIO drops it).
  if (d.qos == 0) return;
  enqueue(*s, std::move(d));
}

}  // namespace mqttd
