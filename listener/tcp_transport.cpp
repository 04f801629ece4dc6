#include "listener/tcp_transport.hpp"

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "listener/socket_peer.hpp"

namespace mqttd {

namespace {
constexpr int kMaxIovecs = 256;
constexpr int kReadsPerEvent = 4;  // then yield to the other connections of the worker
}  // namespace

void TcpTransport::serve(Broker& broker, std::size_t worker, int fd, std::uint64_t endpoint_id,
                         const sockaddr_in6* peer, std::unique_ptr<authn::PeerCertificate> certificate) {
  EpollPoller& poller = EpollPoller::of(broker, worker);
  auto transport =
      std::make_unique<TcpTransport>(broker, worker, fd, poller, endpoint_id, peer, std::move(certificate));
  auto* raw = transport.get();
  raw->interest_ = EPOLLIN | EPOLLRDHUP;
  poller.adopt(std::move(transport), fd, raw->interest_);
}

TcpTransport::TcpTransport(Broker& broker, std::size_t worker, int fd, EpollPoller& poller, std::uint64_t endpoint_id,
                           const sockaddr_in6* peer, std::unique_ptr<authn::PeerCertificate> certificate)
    : Transport(endpoint_id), LingeringSocket(poller, fd), certificate_(std::move(certificate)) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  peer_address_ = peer ? *peer : peer_address(fd);
  connection_ = broker.open_connection(worker, *this);
}

TcpTransport::~TcpTransport() {
  if (!closed_) {
    closed_ = true;
    ::close(fd());
  }
  notify_closed();
}

bool TcpTransport::output_empty() const { return connection_->output().empty(); }

void TcpTransport::notify_closed() {
  if (engine_closed_) return;
  engine_closed_ = true;
  connection_->on_transport_closed();
}

const std::string& TcpTransport::peer() const {
  thread_local std::string text;
  text = format_peer(peer_address_);
  return text;
}

void TcpTransport::on_events(std::uint32_t events) {
  if (closed_) return;
  if (lingering_) return on_lingering_events(events, events & EPOLLOUT);
  if (events & EPOLLOUT) {
    write_blocked_ = false;
    write_pending();
    if (closing_ && connection_->output().empty()) {
      start_lingering();
      return;
    }
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !closing_ && connection_->reading_paused() &&
      gone_while_paused(events)) {
    closing_ = true;
    finish_close();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable();
  if (!closed_) update_interest();
}

bool TcpTransport::gone_while_paused(std::uint32_t events) {
  // Input is paused (a CONNECT being authenticated, or a client not reading its output), so the
  // end of the stream would be read only when it resumes. A client that left while its password
  // is checked must be noticed now, so that its check is skipped.
  if (events & (EPOLLHUP | EPOLLERR)) return true;  // reset, or both directions closed
  if (peer_finished_sending(fd()) && connection_->peer_left_while_paused()) return true;
  rdhup_ignored_ = true;  // level-triggered: stop watching it, the data left is read when input resumes
  return false;
}

void TcpTransport::update_interest() {
  std::uint32_t wanted = 0;
  if (lingering_) wanted |= EPOLLIN | EPOLLRDHUP;
  if (!closing_ && !connection_->reading_paused()) wanted |= EPOLLIN;
  if (!closing_ && !rdhup_ignored_) wanted |= EPOLLRDHUP;
  if (write_blocked_) wanted |= EPOLLOUT;
  if (wanted != interest_) {
    interest_ = wanted;
    poller_.modify(fd(), this, wanted);
  }
}

void TcpTransport::on_readable() {
  for (int i = 0; i < kReadsPerEvent && !closing_ && !connection_->reading_paused(); ++i) {
    auto buffer = connection_->read_buffer();
    ssize_t n = ::recv(fd(), buffer.data(), buffer.size(), 0);
    if (n > 0) {
      connection_->commit_read(static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < buffer.size()) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    // 0: the peer closed; <0: a socket error. Either way the connection is over.
    closing_ = true;
    finish_close();
    return;
  }
}

void TcpTransport::flush() {
  if (write_blocked_ || closed_) return;
  write_pending();
  if (lingering_ && !closed_ && !write_blocked_) shut_sending_side();
  if (!closed_) update_interest();
}

void TcpTransport::write_pending() {
  auto& out = connection_->output();
  iovec iov[kMaxIovecs];
  while (!out.empty()) {
    std::size_t count = out.gather(iov, kMaxIovecs);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(fd(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        write_blocked_ = true;
        return;
      }
      out.clear();
      closing_ = true;
      finish_close();
      return;
    }
    connection_->consume_written(static_cast<std::size_t>(n));
    // The session may hold back messages until the client's output drains.
    if (out.empty() && !closing_) connection_->on_output_drained();
  }
}

void TcpTransport::close() { linger_after_this_turn(); }

void TcpTransport::resume_reading() {
  if (!closed_) update_interest();
}

}  // namespace mqttd
