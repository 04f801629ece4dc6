#include "listener/tls_transport.hpp"

#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstring>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "listener/socket_peer.hpp"
#include "tls/tls_credentials.hpp"

namespace mqttd {

namespace {
constexpr int kMaxIovecs = 64;
constexpr int kReadsPerEvent = 4;             // then yield to the other connections of the worker
constexpr std::size_t kStagingBytes = 16384;  // one TLS record's worth of plaintext
}  // namespace

void TlsTransport::serve(Broker& broker, std::size_t worker, int fd, std::shared_ptr<ssl_ctx_st> tls,
                         std::uint64_t endpoint_id, const sockaddr_in6* peer) {
  EpollPoller& poller = EpollPoller::of(broker, worker);
  auto transport = std::make_unique<TlsTransport>(broker, worker, fd, tls.get(), poller, endpoint_id, peer);
  auto* raw = transport.get();
  raw->interest_ = EPOLLIN;
  poller.adopt(std::move(transport), fd, raw->interest_);
}

TlsTransport::TlsTransport(Broker& broker, std::size_t worker, int fd, SSL_CTX* tls, EpollPoller& poller,
                           std::uint64_t endpoint_id, const sockaddr_in6* peer)
    : Transport(endpoint_id), LingeringSocket(poller, fd), ssl_(SSL_new(tls)) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  peer_address_ = peer ? *peer : peer_address(fd);
  if (ssl_) {
    SSL_set_fd(ssl_.get(), fd);
    SSL_set_accept_state(ssl_.get());
  }
  // The connection exists from the start, so that its CONNECT timeout also bounds the handshake.
  connection_ = broker.open_connection(worker, *this);
}

TlsTransport::~TlsTransport() {
  if (!closed_) {
    closed_ = true;
    ::close(fd());
  }
  notify_closed();
}

bool TlsTransport::output_empty() const { return connection_->output().empty(); }

void TlsTransport::notify_closed() {
  if (engine_closed_) return;
  engine_closed_ = true;
  connection_->on_transport_closed();
}

const std::string& TlsTransport::peer() const {
  thread_local std::string text;
  text = format_peer(peer_address_);
  return text;
}

void TlsTransport::on_events(std::uint32_t events) {
  if (closed_) return;
  if (!ssl_) return fail("SSL_new");
  if (lingering_) return on_lingering_events(events, events & (write_needs_ | EPOLLERR | EPOLLHUP));
  if (!handshake_done_) {
    handshake();
    if (closed_) return;
    if (!handshake_done_) return update_interest();
  }
  if (write_blocked_ && (events & (write_needs_ | EPOLLERR | EPOLLHUP))) {
    write_blocked_ = false;
    write_pending();
    if (closed_) return;
    if (closing_ && connection_->output().empty() && !write_blocked_) return start_lingering();
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !closing_ && connection_->reading_paused() &&
      gone_while_paused(events)) {
    closing_ = true;
    finish_close();
    return;
  }
  if (events & (read_needs_ | EPOLLHUP | EPOLLERR)) on_readable();
  if (!closed_) update_interest();
}

bool TlsTransport::gone_while_paused(std::uint32_t events) {
  // As TcpTransport: notice a client that left while its password is checked. A client that
  // sent close_notify before leaving is noticed only when input resumes.
  if (events & (EPOLLHUP | EPOLLERR)) return true;
  if (!SSL_has_pending(ssl_.get()) && peer_finished_sending(fd()) && connection_->peer_left_while_paused()) return true;
  rdhup_ignored_ = true;
  return false;
}

void TlsTransport::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    handshake_done_ = true;
    read_needs_ = EPOLLIN;
    connection_->count_port_event(PortEvent::TlsHandshake);
    if (auto cert = tls::peer_certificate_of(ssl_.get()))
      peer_certificate_ = std::make_unique<authn::PeerCertificate>(std::move(*cert));
    spdlog::debug("event=tls_handshake peer={} version={} cipher={}", peer(), SSL_get_version(ssl_.get()),
                  SSL_get_cipher_name(ssl_.get()));
    // The client may have sent CONNECT with its last handshake message.
    on_readable();
    if (!closed_) flush();
    return;
  }
  int e = SSL_get_error(ssl_.get(), r);
  if (e == SSL_ERROR_WANT_READ) {
    read_needs_ = EPOLLIN;
  } else if (e == SSL_ERROR_WANT_WRITE) {
    read_needs_ = EPOLLOUT;
  } else {
    connection_->count_port_event(PortEvent::TlsHandshakeFailed);
    fail("handshake");
  }
}

void TlsTransport::fail(const char* what) {
  auto reason = tls::last_error(std::string("tls ") + what);
  spdlog::debug("event=tls_failed peer={} error=\"{}\"", peer(), reason);
  closing_ = true;
  finish_close();
}

void TlsTransport::update_interest() {
  std::uint32_t wanted = 0;
  if (lingering_) wanted |= EPOLLIN | EPOLLRDHUP;
  if (!closing_ && !connection_->reading_paused()) wanted |= read_needs_;
  if (!closing_ && !rdhup_ignored_) wanted |= EPOLLRDHUP;
  if (!handshake_done_) wanted = read_needs_;
  if (write_blocked_) wanted |= write_needs_;
  if (wanted != interest_) {
    interest_ = wanted;
    poller_.modify(fd(), this, wanted);
  }
}

void TlsTransport::on_readable() {
  for (int i = 0; i < kReadsPerEvent; ++i) {
    if (closing_ || connection_->reading_paused()) return;
    auto buffer = connection_->read_buffer();
    std::size_t n = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl_.get(), buffer.data(), buffer.size(), &n);
    if (r == 1) {
      connection_->commit_read(n);
      continue;
    }
    int e = SSL_get_error(ssl_.get(), r);
    if (e == SSL_ERROR_WANT_READ) {
      read_needs_ = EPOLLIN;
      return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      read_needs_ = EPOLLOUT;
      return;
    }
    // close_notify, end of stream, or an error: the connection is over.
    if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) spdlog::debug("{}", tls::last_error("tls read"));
    ERR_clear_error();
    closing_ = true;
    finish_close();
    return;
  }
  // Decrypted bytes may wait inside OpenSSL with nothing left on the socket to wake epoll.
  if (SSL_has_pending(ssl_.get())) read_buffered_later();
}

void TlsTransport::read_buffered_later() {
  poller_.post_to(this, [this] {
    if (closed_ || closing_) return;
    on_readable();
    if (!closed_) update_interest();
  });
}

void TlsTransport::flush() {
  if (!handshake_done_ || write_blocked_ || closed_) return;
  write_pending();
  if (lingering_ && !closed_ && !write_blocked_) shut_sending_side();
  if (!closed_) update_interest();
}

void TlsTransport::write_pending() {
  // Per worker thread: a write either completes or leaves its bytes in the output queue, where
  // the retry finds the same bytes (OpenSSL is told the buffer may move).
  thread_local auto staging = std::make_unique<std::byte[]>(kStagingBytes);
  auto& out = connection_->output();
  iovec iov[kMaxIovecs];
  while (!out.empty()) {
    std::size_t count = out.gather(iov, kMaxIovecs);
    std::size_t filled = 0;
    for (std::size_t i = 0; i < count && filled < kStagingBytes; ++i) {
      std::size_t take = std::min(iov[i].iov_len, kStagingBytes - filled);
      std::memcpy(staging.get() + filled, iov[i].iov_base, take);
      filled += take;
    }
    std::size_t written = 0;
    ERR_clear_error();
    int r = SSL_write_ex(ssl_.get(), staging.get(), filled, &written);
    if (r == 1) {
      connection_->consume_written(written);
      if (out.empty() && !closing_) connection_->on_output_drained();
      continue;
    }
    int e = SSL_get_error(ssl_.get(), r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      write_needs_ = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
      write_blocked_ = true;
      return;
    }
    ERR_clear_error();
    out.clear();
    closing_ = true;
    finish_close();
    return;
  }
}

void TlsTransport::close() { linger_after_this_turn(); }

// Best effort: the socket is non-blocking, and a peer that does not read may never get it.
void TlsTransport::send_close_notify() {
  if (!handshake_done_ || !ssl_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

void TlsTransport::resume_reading() {
  if (closed_) return;
  update_interest();
  if (handshake_done_ && SSL_has_pending(ssl_.get())) read_buffered_later();
}

}  // namespace mqttd
