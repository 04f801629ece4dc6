// The worker's side of the state store: each key belongs to one worker's shard (by hash), which
// alone touches it. A request is run at once when its key is here; otherwise it is copied once
// and handed to the owning worker with the other tasks of this turn (one lock per batch).
#include <memory>

#include "broker/broker.hpp"
#include "broker/state_store_shard.hpp"
#include "broker/worker.hpp"

namespace mqttd {

void Worker::state_store_request(const StateStoreCall& call) {
  std::size_t workers = broker_.worker_count();
  std::size_t shard = workers == 1 ? 0 : std::hash<std::string_view>{}(call.key) % workers;
  if (shard == index()) {
    state_store_->execute(call);
    return;
  }
  auto owned = std::make_shared<OwnedStateStoreCall>(call);
  broker_.worker(shard).post_task([owned](Worker& w) { w.state_store_->execute(owned->call()); });
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
