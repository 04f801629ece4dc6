#include "listener/epoll_poller.hpp"

#include "broker/broker.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace mqttd {

struct EpollPoller::Waiter {
  explicit Waiter(boost::asio::io_context& io, int fd) : descriptor(io, fd) {}
  boost::asio::posix::stream_descriptor descriptor;
};

namespace {
std::atomic<std::uint64_t> next_poll_serial{1};
}

PollHandler::PollHandler() : poll_serial_(next_poll_serial.fetch_add(1, std::memory_order_relaxed)) {}

EpollPoller& EpollPoller::of(Broker& broker, std::size_t worker) {
  // The worker's extension is only ever its poller.
  if (WorkerExtension* existing = broker.worker_extension(worker)) return static_cast<EpollPoller&>(*existing);
  auto poller = std::make_unique<EpollPoller>(broker.io_context(worker));
  EpollPoller& created = *poller;
  broker.set_worker_extension(worker, std::move(poller));
  return created;
}

EpollPoller::EpollPoller(boost::asio::io_context& io) : io_(io), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  int for_asio = ::dup(epoll_fd_);  // Asio closes the descriptor it is given
  waiter_ = std::make_unique<Waiter>(io, for_asio);
  wait();
}

EpollPoller::~EpollPoller() {
  waiter_.reset();
  ::close(epoll_fd_);
}

void EpollPoller::wait() {
  waiter_->descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                 [this](const boost::system::error_code& ec) {
                                   if (ec) return;
                                   dispatch_then_wait();
                                 });
}

// Asio watches the epoll descriptor edge-triggered: if a batch was full, more events may be
// ready with no new edge to come, so fetch again (after other handlers) instead of waiting.
void EpollPoller::dispatch_then_wait() {
  if (dispatch() == kEventsPerWait) {
    boost::asio::post(io_, [this] { dispatch_then_wait(); });
  } else {
    wait();
  }
}

int EpollPoller::dispatch() {
  epoll_event events[kEventsPerWait];
  int n = ::epoll_wait(epoll_fd_, events, kEventsPerWait, 0);
  for (int i = 0; i < n; ++i) static_cast<PollHandler*>(events[i].data.ptr)->on_events(events[i].events);
  if (!retired_.empty()) {
    for (auto* h : retired_) handlers_.erase(h);
    retired_.clear();
  }
  return n;
}

PollHandler* EpollPoller::adopt(std::unique_ptr<PollHandler> handler, int fd, std::uint32_t events) {
  PollHandler* raw = handler.get();
  handlers_.emplace(raw, Adopted{std::move(handler), false});
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = raw;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl ADD");
  return raw;
}

void EpollPoller::modify(int fd, PollHandler* handler, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void EpollPoller::retire(int fd, PollHandler* handler) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  auto it = handlers_.find(handler);
  if (it == handlers_.end() || it->second.retired) return;
  it->second.retired = true;
  retired_.push_back(handler);
  // Outside a dispatch (a close requested by a task), destroy after the current handler.
  boost::asio::post(io_, [this] {
    for (auto* h : retired_) handlers_.erase(h);
    retired_.clear();
  });
}

// The handler is alive when it posts (it is the caller), possibly not adopted yet (a task posted
// from its constructor); when the task runs, it must be adopted, not retired, and the same one.
void EpollPoller::post_to(PollHandler* handler, std::function<void()> task) {
  boost::asio::post(io_, [this, handler, serial = handler->poll_serial(), task = std::move(task)] {
    auto found = handlers_.find(handler);
    if (found == handlers_.end() || found->second.retired || found->first->poll_serial() != serial) return;
    task();
  });
}

void EpollPoller::post_after(PollHandler* handler, std::chrono::milliseconds delay, std::function<void()> task) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([this, timer, handler, serial = handler->poll_serial(),
                     task = std::move(task)](const boost::system::error_code& ec) {
    if (ec) return;
    auto found = handlers_.find(handler);
    if (found == handlers_.end() || found->second.retired || found->first->poll_serial() != serial) return;
    task();
  });
}

}  // namespace mqttd
