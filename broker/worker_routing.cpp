// Worker: routing. This worker's replica of the subscription index and how changes reach the
// other replicas; matching a PUBLISH and delivering it, here or to the owner's worker.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_registry.hpp"
#include "broker/worker.hpp"
#include "codec/utf8.hpp"

namespace mqttd {

// ---------------------------------------------------------------- subscription index

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
  std::function<void(ConnectionHost&)> done;
};

void Worker::change_subscriptions(const SessionPtr& s, std::vector<IndexChange> changes,
                                  std::function<void(ConnectionHost&)> done) {
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
    if (w == index()) continue;
    broker_.worker(w).post_index_change(s, barrier);
  }
  // After every queue holds the change: a worker that sees this epoch finds it there.
  broker_.index_epoch.fetch_add(1, std::memory_order_acq_rel);
}

void Worker::post_index_change(const SessionPtr& s, std::shared_ptr<IndexBarrier> barrier) {
  bool wake;
  {
    std::lock_guard lock(index_mutex_);
    wake = pending_index_.empty();
    pending_index_.push_back(PendingIndexChange{s, std::move(barrier)});
  }
  if (wake) post_task([](Worker& w) { w.apply_pending_index_changes(); });
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
      if (owner == index()) {
        barrier->done(*this);
      } else {
        broker_.worker(owner).post_task([done = barrier->done](Worker& w) { done(w); });
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
      metrics.drop(DropReason::RetainedLimit);
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
    Delivery d;  // its message is set only when the delivery is kept (below)
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
    const SessionPtr& s = first.subscriber->session;
    if (d.qos == 0 && !first.group && s->owner.load(std::memory_order_acquire) == index() && !s->ended &&
        s->connection && s->connection->connected() && !msg->expired(now()) && s->may_receive(msg->topic())) {
      // The common case, written at once without taking a reference to the message (two atomic
      // operations per subscriber, the largest user-space cost of a fan-out): QoS 0 to a
      // connected client of this worker. Anything else goes through deliver().
      s->connection->send_now(msg, d.retain, d.subscription_ids);
    } else {
      d.message = msg;
      deliver(s, std::move(d));
    }
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
  if (owner == index()) {
    deliver_here(s, std::move(d));
    return;
  }
  outbox_[owner].push_back(RemoteDelivery{s, std::move(d)});
  schedule_flush();
}

void Worker::deliver_here(const SessionPtr& s, Delivery&& d) {
  if (s->ended) {
    if (!d.shared_filter || !redistribute(s.get(), d)) metrics.drop(DropReason::SessionEnded);
    return;
  }
  if (d.message->expired(now())) return metrics.drop(DropReason::Expired);
  if (!s->may_receive(d.message->topic())) {
    // A shared-group message goes to another member (this one's permissions changed since the
    // publisher's worker chose it); redistribute() picks only members allowed to receive it.
    if (d.shared_filter && redistribute(s.get(), d)) return;
    metrics.drop(DropReason::NotAuthorized);
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
