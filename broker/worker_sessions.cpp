// Worker: sessions. Claiming a session for a CONNECT and handing it over between workers,
// offline sessions, session end, wills, and the queue bounds.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/logged_client_id.hpp"
#include "broker/retained_store.hpp"
#include "broker/session_registry.hpp"
#include "broker/worker.hpp"
#include "codec/utf8.hpp"

namespace mqttd {

// ---------------------------------------------------------------- sessions

void Worker::claim_session(ClientConnection& c, const std::string& client_id, bool clean_start) {
  auto claim = broker_.sessions().claim(client_id, index());
  if (!claim.existed) {
    claim.session->attached_generation = claim.generation;
    c.attach(claim.session, false);
    return;
  }
  handover(claim.session, claim.generation, index(), c.id(), clean_start, c.principal_identity());
}

// Runs on the session's owner (chasing it if it moved): detaches the old connection, then
// passes ownership to worker `to`.
void Worker::handover(SessionPtr s, std::uint64_t generation, unsigned to, std::uint64_t connection, bool clean_start,
                      std::string identity) {
  unsigned owner = s->owner.load(std::memory_order_acquire);
  if (owner != index()) {
    broker_.worker(owner).post_task([=, identity = std::move(identity)](Worker& w) mutable {
      w.handover(s, generation, to, connection, clean_start, std::move(identity));
    });
    return;
  }
  if (s->generation.load(std::memory_order_acquire) != generation) {
    // A newer CONNECT for the same client id claimed the session; it will take it from here.
    broker_.worker(to).post_task([connection](Worker& w) {
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
        logged_client_id(s->client_id));
    broker_.count_event(SecurityEvent::SessionPrincipalChanged);
    fresh = true;
  }
  // A session that ends here ends its will's delay: the will of its last connection (waiting
  // for the delay while the session was offline) goes out now [MQTT-3.1.3-9]; a resumed session
  // withholds it (the client came back in time).
  if (fresh) {
    if (PendingWill will = s->take_pending_will(index())) publish_will(will.message, will.authority);
  }
  if (s->connection) s->connection->taken_over(fresh);
  remove_offline(s.get());
  if (to == index()) {
    attach(std::move(s), generation, connection, fresh, identity);
    return;
  }
  s->owner.store(to, std::memory_order_release);
  broker_.worker(to).post_task(
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
    if (s->owner.load(std::memory_order_acquire) == index() && !s->ended && !s->connection) {
      s->disconnected_at = now();
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
  s->disconnected_at = now();
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
  SessionHoldings* h = s->holdings_if_any(index());
  if (!h) return;
  std::vector<std::uint16_t> handed_over;
  h->inflight.for_each_in_send_order([&](InflightMessage& m) {
    if (!m.delivery.shared_filter || !m.delivery.message || m.delivery.qos == 2) return;
    if (redistribute(s.get(), m.delivery)) handed_over.push_back(m.packet_id);
  });
  for (auto id : handed_over) h->inflight.erase(id);
  std::vector<Delivery> queued;
  h->queue.extract_if([](const Delivery& d) { return d.shared_filter != nullptr; },
                      [&](Delivery&& d) { queued.push_back(std::move(d)); });
  for (auto& d : queued) {
    if (redistribute(s.get(), d)) continue;
    if (continues) {
      enqueue(*s, std::move(d));
    } else {
      metrics.drop(DropReason::SessionEnded);
    }
  }
}

// The session is over: its will goes out, its subscriptions leave every replica, and messages
// held for shared subscriptions go to other members.
void Worker::end_session(const SessionPtr& s) {
  remove_offline(s.get());
  s->ended = true;
  if (PendingWill will = s->take_pending_will(index())) publish_will(will.message, will.authority);
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
                 logged_client_id(authority.principal ? authority.principal->client_id : ""), will->topic(), refused);
    broker_.count_event(SecurityEvent::WillNotAuthorized);
    metrics.drop(DropReason::NotAuthorized);
    return;
  }
  publish(will, authority.principal ? std::string_view(authority.principal->client_id) : std::string_view{});
}

void Worker::enqueue(Session& s, Delivery&& d) {
  const auto& settings = broker_.settings();
  auto& queue = s.holdings(index()).queue;
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
      metrics.drop(DropReason::QueueFull);
      limit = over();
    }
    if (!limit) {
      queue.push_back(std::move(d));
      return;
    }
  }
  metrics.drop(DropReason::QueueFull);
}

void Worker::clear_session(const SessionPtr& s) {
  SessionHoldings* h = s->holdings_if_any(index());
  if (!h) return;
  if (!h->subscriptions.empty()) {
    std::vector<IndexChange> changes;
    for (auto& [filter, sub] : h->subscriptions) changes.push_back(IndexChange::removal(filter));
    h->subscriptions.clear();
    change_subscriptions(s, std::move(changes), nullptr);
  }
  redistribute_shared(s, false);
  s->release_holdings(index());
}

}  // namespace mqttd
