// One epoll instance per worker, waited on through a single Asio operation. TCP connections
// register their sockets here instead of each holding an Asio socket and a pending wait: an
// idle connection then costs only its own objects, and one epoll_wait serves many sockets.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace mqttd {

class PollHandler {
 public:
  virtual ~PollHandler() = default;
  // `events` are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits.
  virtual void on_events(std::uint32_t events) = 0;
};

class EpollPoller {
 public:
  // The poller of the worker whose event loop is `io`; created on first use. Call on that
  // worker's thread only.
  static EpollPoller& of(boost::asio::io_context& io);

  explicit EpollPoller(boost::asio::io_context& io);
  ~EpollPoller();

  // Takes ownership of `handler` and watches `fd` for `events` on its behalf.
  PollHandler* adopt(std::unique_ptr<PollHandler> handler, int fd, std::uint32_t events);
  void modify(int fd, PollHandler* handler, std::uint32_t events);
  // Stops watching `fd` and destroys the handler after the current batch of events, so that an
  // event already fetched for it never reaches freed memory.
  void retire(int fd, PollHandler* handler);
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
  std::unordered_map<PollHandler*, std::unique_ptr<PollHandler>> handlers_;
  std::vector<PollHandler*> retired_;
};

}  // namespace mqttd
