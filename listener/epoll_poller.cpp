#include "listener/epoll_poller.hpp"

#include "broker/broker.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
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

PollHandler::PollHandler(int fd)
    : poll_serial_(next_poll_serial.fetch_add(1, std::memory_order_relaxed)), poll_fd_(fd) {}

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
  destroy_retired();
  return n;
}

void EpollPoller::destroy_retired() {
  // Moved out first: a handler's destructor may retire or adopt others.
  auto batch = std::move(retired_);
  retired_.clear();
  batch.clear();
}

PollHandler* EpollPoller::adopt(std::unique_ptr<PollHandler> handler, int fd, std::uint32_t events) {
  PollHandler* raw = handler.get();
  if (fd < 0 || fd != raw->poll_fd_) throw std::invalid_argument("EpollPoller::adopt: not the handler's descriptor");
  auto slot = static_cast<std::size_t>(fd);
  if (handlers_.size() <= slot) handlers_.resize(std::max<std::size_t>(slot + 1, handlers_.size() * 2));
  // A descriptor is retired before it is closed, so its slot is free when the number comes back.
  if (handlers_[slot]) throw std::logic_error("EpollPoller::adopt: descriptor already adopted");
  handlers_[slot] = std::move(handler);
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = raw;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int error = errno;
    handlers_[slot].reset();
    throw std::system_error(error, std::generic_category(), "epoll_ctl ADD");
  }
  ++adopted_;
  return raw;
}

PollHandler* EpollPoller::live(int fd, std::uint64_t serial) const {
  if (fd < 0 || static_cast<std::size_t>(fd) >= handlers_.size()) return nullptr;
  PollHandler* h = handlers_[static_cast<std::size_t>(fd)].get();
  return h && h->poll_serial_ == serial && !h->poll_retired_ ? h : nullptr;
}

void EpollPoller::modify(int fd, PollHandler* handler, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void EpollPoller::shutdown() {
  // on_shutdown may retire its handler, which moves it out of handlers_: collect first.
  std::vector<PollHandler*> live;
  for (const auto& h : handlers_)
    if (h && !h->poll_retired_) live.push_back(h.get());
  for (auto* h : live) h->on_shutdown();
}

void EpollPoller::retire(int fd, PollHandler* handler) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  if (fd < 0 || static_cast<std::size_t>(fd) >= handlers_.size()) return;
  auto& slot = handlers_[static_cast<std::size_t>(fd)];
  if (slot.get() != handler || handler->poll_retired_) return;
  handler->poll_retired_ = true;
  --adopted_;
  retired_.push_back(std::move(slot));
  // Outside a dispatch (a close requested by a task), destroy after the current handler.
  boost::asio::post(io_, [this] { destroy_retired(); });
}

// The handler is alive when it posts (it is the caller), possibly not adopted yet (a task posted
// from its constructor); when the task runs, it must be adopted, not retired, and the same one.
void EpollPoller::post_to(PollHandler* handler, std::function<void()> task) {
  boost::asio::post(io_, [this, fd = handler->poll_fd_, serial = handler->poll_serial(), task = std::move(task)] {
    if (!live(fd, serial)) return;
    task();
  });
}

void EpollPoller::post_after(PollHandler* handler, std::chrono::milliseconds delay, std::function<void()> task) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([this, timer, fd = handler->poll_fd_, serial = handler->poll_serial(),
                     task = std::move(task)](const boost::system::error_code& ec) {
    if (ec || !live(fd, serial)) return;
    task();
  });
}

}  // namespace mqttd
