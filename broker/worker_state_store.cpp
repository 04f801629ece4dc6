// The worker's side of the state store: each key belongs to one worker's shard (by hash), which
// alone touches it. A request is run at once when its key is here; otherwise it is copied once
// and handed to the owning worker with the other tasks of this turn (one lock per batch).
#include <algorithm>
#include <memory>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/state_store_shard.hpp"
#include "broker/worker.hpp"
#include "statestore/key_hash.hpp"

namespace mqttd {

bool Worker::state_store_request(const StateStoreCall& call) {
  std::size_t workers = broker_.worker_count();
  // The hash's high half picks the shard: the backend's table indexes by the low bits, which
  // would otherwise be the same for every key of a shard.
  std::size_t shard = workers == 1 ? 0 : (statestore::key_hash(call.key) >> 32) % workers;
  if (shard == index()) {
    state_store_->execute(call);
    return true;
  }
  // What the copy holds, and at least 256 bytes (so that the count of waiting calls is bounded too).
  std::uint64_t size = std::max<std::uint64_t>(256, sizeof(OwnedStateStoreCall) + call.payload.size() +
                                                        call.response_topic.size() + call.correlation_data.size() +
                                                        call.client_id.size() + call.timestamp.value_or("").size() +
                                                        call.fencing_token.value_or("").size() + 128);
  Worker& target = broker_.worker(shard);
  if (target.state_store_backlog.fetch_add(size, std::memory_order_relaxed) + size > kMaxStateStoreBacklog) {
    target.state_store_backlog.fetch_sub(size, std::memory_order_relaxed);
    limit_reached(Limit::StateStoreBacklog, call.client_id, "state store requests waiting for another worker");
    return false;
  }
  auto owned = std::make_shared<OwnedStateStoreCall>(call);
  target.post_task([owned, size](Worker& w) {
    w.state_store_->execute(owned->call());
    w.state_store_backlog.fetch_sub(size, std::memory_order_relaxed);
  });
  return true;
}

void Worker::reset_state_store() {
  state_store_.reset();  // gives its keys back to the quota first
  state_store_ = std::make_unique<StateStoreShard>(*this, broker_.state_store_quota());
}

void Worker::deliver_directed(const SessionPtr& s, const MessageRef& message, std::uint64_t connection_id) {
  unsigned owner = s->owner.load(std::memory_order_acquire);
  if (owner != index()) {
    broker_.worker(owner).post_task([s, message, connection_id](Worker& w) {
      // Moved again meanwhile: a takeover, so the registering connection is gone.
      if (s->owner.load(std::memory_order_acquire) == w.index()) w.deliver_directed(s, message, connection_id);
    });
    return;
  }
  ClientConnection* c = s->connection;
  if (s->ended || !c || !c->connected() || c->id() != connection_id) {
    metrics.drop(DropReason::SessionEnded);
    return;
  }
  Delivery d;
  d.message = message;
  d.qos = 1;
  c->send(std::move(d));
}

void Worker::state_store_connection_closed(std::uint64_t connection_id) {
  // On each shard this runs after the connection's earlier requests: its own shard's ran at once,
  // and tasks from one worker to another run in the order they were posted.
  for (std::size_t i = 0; i < broker_.worker_count(); ++i) {
    if (i == index()) {
      state_store_->connection_closed(connection_id);
    } else {
      broker_.worker(i).post_task([connection_id](Worker& w) { w.state_store_->connection_closed(connection_id); });
    }
  }
}

}  // namespace mqttd
