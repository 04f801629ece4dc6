// Per-worker state that a layer above the broker keeps on each worker (the listener's epoll
// poller), owned by the worker: set on the worker's thread, destroyed on that thread when its
// event loop ends (or with the worker if it never ran), while every worker still exists. Keeps
// broker/ free of sockets while the poller's lifetime is the worker's, not a thread-local's.
#pragma once

#include <cstddef>

namespace mqttd {

class WorkerExtension {
 public:
  virtual ~WorkerExtension() = default;
  // Sockets still open, lingering ones included (on the worker's thread): the broker's stop
  // waits for them, so that no socket is closed with a client's late input unread (a reset,
  // which would discard the DISCONNECT the client has not read yet).
  virtual std::size_t open_sockets() const { return 0; }
  // The broker stops (after its connections were told): close what is not a connection yet.
  virtual void shutdown() {}
};

}  // namespace mqttd
