// Per-worker state that a layer above the broker keeps on each worker (the listener's epoll
// poller), owned by the worker: set on the worker's thread, destroyed on that thread when its
// event loop ends (or with the worker if it never ran), while every worker still exists. Keeps
// broker/ free of sockets while the poller's lifetime is the worker's, not a thread-local's.
#pragma once

namespace mqttd {

class WorkerExtension {
 public:
  virtual ~WorkerExtension() = default;
};

}  // namespace mqttd
