#include "listener/tcp_listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "broker/broker.hpp"
#include "listener/tcp_transport.hpp"

namespace mqttd {

using boost::asio::ip::tcp;

struct TcpListener::Impl : std::enable_shared_from_this<TcpListener::Impl> {
  Impl(boost::asio::io_context& io, Broker& b) : broker(b), acceptor(io) {}

  void accept() {
    // Accepted on this (the main) thread; the socket then belongs to one worker for its life.
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("event=accept_failed port={} error=\"{}\"", self->port, ec.message());
      } else if (!self->broker.admit_connection()) {
        spdlog::warn("event=connection_refused reason=\"max connections reached\"");
      } else {
        boost::system::error_code release_error;
        socket.non_blocking(true, release_error);
        int fd = socket.release(release_error);
        if (release_error) {
          spdlog::warn("event=accept_failed error=\"{}\"", release_error.message());
          self->broker.connection_closed();
        } else {
          std::size_t worker = self->broker.next_worker();
          boost::asio::post(self->broker.io_context(worker),
                            [&b = self->broker, worker, fd] { TcpTransport::serve(b, worker, fd); });
        }
      }
      self->accept();
    });
  }

  Broker& broker;
  tcp::acceptor acceptor;
  std::string address;
  std::uint16_t port = 0;
};

TcpListener::TcpListener(boost::asio::io_context& io, Broker& broker, const std::string& address, std::uint16_t port)
    : impl_(std::make_shared<Impl>(io, broker)) {
  tcp::endpoint ep(boost::asio::ip::make_address(address), port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(1024);
  impl_->address = address;
  impl_->port = impl_->acceptor.local_endpoint().port();
}

TcpListener::~TcpListener() { stop(); }

void TcpListener::start() {
  spdlog::info("event=listening address={} port={} protocol=mqtt tls=false", impl_->address, impl_->port);
  impl_->accept();
}

void TcpListener::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

std::uint16_t TcpListener::port() const { return impl_->port; }
const std::string& TcpListener::address() const { return impl_->address; }

}  // namespace mqttd
