#include "listener/tcp_transport.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/post.hpp>
#include <cerrno>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"

namespace mqttd {

namespace {
constexpr int kMaxIovecs = 256;
constexpr int kReadsPerTurn = 4;  // then yield to the other connections of the worker
}  // namespace

TcpTransport::TcpTransport(Broker& broker, std::size_t worker, boost::asio::ip::tcp::socket socket)
    : broker_(broker), socket_(std::move(socket)) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  connection_ = broker_.open_connection(worker, *this);
}

TcpTransport::~TcpTransport() = default;

void TcpTransport::start() {
  // The transport lives until the connection closes, also while no operation is pending (for
  // example while reading is paused during a session handover).
  self_ = shared_from_this();
  wait_readable();
}

void TcpTransport::wait_readable() {
  if (read_waiting_ || closing_ || connection_->reading_paused()) return;
  read_waiting_ = true;
  socket_.async_wait(boost::asio::socket_base::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->read_waiting_ = false;
                       if (ec || self->closing_) return;
                       self->on_readable();
                     });
}

void TcpTransport::on_readable() {
  int fd = socket_.native_handle();
  for (int i = 0; i < kReadsPerTurn && !closing_ && !connection_->reading_paused(); ++i) {
    auto buffer = connection_->read_buffer();
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
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
  wait_readable();
}

void TcpTransport::flush() {
  if (write_waiting_ || closed_) return;
  write_pending();
}

void TcpTransport::write_pending() {
  auto& out = connection_->output();
  int fd = socket_.native_handle();
  iovec iov[kMaxIovecs];
  while (!out.empty()) {
    std::size_t count = out.gather(iov, kMaxIovecs);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_writable();
        return;
      }
      out.clear();
      closing_ = true;
      finish_close();
      return;
    }
    out.consume(static_cast<std::size_t>(n));
    if (out.empty() && !closing_) {
      // The session may hold back messages until the client's output drains.
      connection_->on_output_drained();
    }
  }
  if (!closing_) wait_readable();
}

void TcpTransport::wait_writable() {
  write_waiting_ = true;
  socket_.async_wait(boost::asio::socket_base::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->write_waiting_ = false;
                       if (ec || self->closed_) return;
                       self->write_pending();
                       if (self->closing_ && self->connection_->output().empty()) self->finish_close();
                     });
}

void TcpTransport::close() {
  if (closing_) return;
  closing_ = true;
  // Close after this turn, so that what the connection queued just now is written first.
  boost::asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (!self->write_waiting_) self->write_pending();
    self->finish_close();
  });
}

void TcpTransport::resume_reading() {
  if (!closing_) wait_readable();
}

void TcpTransport::finish_close() {
  if (closed_) return;
  closed_ = true;
  auto keep_until_return = std::move(self_);
  boost::system::error_code ec;
  socket_.shutdown(boost::asio::socket_base::shutdown_both, ec);
  socket_.close(ec);
  connection_->on_transport_closed();
}

}  // namespace mqttd
