// One epoll instance per worker, waited on through a single Asio operation. TCP connections
// register their sockets here instead of each holding an Asio socket and a pending wait: an
// idle connection then costs only its own objects, and one epoll_wait serves many sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "broker/worker_extension.hpp"

namespace boost::asio {
class io_context;
}

namespace mqttd {

class Broker;

class PollHandler {
 public:
  // `fd`: the descriptor it will be adopted with.
  explicit PollHandler(int fd);
  virtual ~PollHandler() = default;
  // Never reused in the process: tells a handler apart from a later one at the same descriptor.
  std::uint64_t poll_serial() const { return poll_serial_; }
  int poll_fd() const { return poll_fd_; }
  // `events` are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits.
  virtual void on_events(std::uint32_t events) = 0;
  // The broker stops: a handler that is not a connection's (which the broker disconnects itself)
  // closes now rather than hold the stop until its own timeout.
  virtual void on_shutdown() {}

 private:
  friend class EpollPoller;
  std::uint64_t poll_serial_;
  const int poll_fd_;
  bool poll_retired_ = false;  // set by EpollPoller::retire
};

// One per worker, kept by the worker (WorkerExtension): created on the worker's thread on first
// use, destroyed on it when its event loop ends.
class EpollPoller final : public WorkerExtension {
 public:
  // The poller of `worker`; created on first use. Call on that worker's thread only.
  static EpollPoller& of(Broker& broker, std::size_t worker);

  explicit EpollPoller(boost::asio::io_context& io);
  ~EpollPoller() override;
  std::size_t open_sockets() const override { return adopted_; }
  void shutdown() override;

  // Takes ownership of `handler` and watches `fd` for `events` on its behalf.
  PollHandler* adopt(std::unique_ptr<PollHandler> handler, int fd, std::uint32_t events);
  void modify(int fd, PollHandler* handler, std::uint32_t events);
  // Stops watching `fd` and destroys the handler after the current batch of events, so that an
  // event already fetched for it never reaches freed memory.
  void retire(int fd, PollHandler* handler);
  // Runs `task` on this worker after the current turn of its event loop, unless `handler` has
  // been retired by then. A handler may be retired (and destroyed) in the same batch of events
  // that posted the task: the task never reaches it then.
  void post_to(PollHandler* handler, std::function<void()> task);
  // The same, `delay` from now (a timer allocated for the purpose: for rare events only).
  void post_after(PollHandler* handler, std::chrono::milliseconds delay, std::function<void()> task);
  boost::asio::io_context& io() { return io_; }

 private:
  static constexpr int kEventsPerWait = 256;
  void wait();
  void dispatch_then_wait();
  int dispatch();  // returns the number of events handled

  boost::asio::io_context& io_;
  int epoll_fd_;
  struct Waiter;
  std::unique_ptr<Waiter> waiter_;
  // The handler still adopted and not retired that `serial` names, at `fd`; null if none.
  PollHandler* live(int fd, std::uint64_t serial) const;
  void destroy_retired();

  // Adopted handlers by file descriptor: descriptors are small and dense, so a slot per
  // descriptor costs less than a hash-table node per connection, and finds one in O(1).
  std::vector<std::unique_ptr<PollHandler>> handlers_;
  std::vector<std::unique_ptr<PollHandler>> retired_;
  std::size_t adopted_ = 0;  // adopted and not retired  // destroyed after the current batch
};

}  // namespace mqttd
