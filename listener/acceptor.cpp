#include "listener/acceptor.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>

#include "broker/broker.hpp"
#include "listener/connection_rate.hpp"

namespace mqttd {

using boost::asio::ip::tcp;

struct Acceptor::Impl : std::enable_shared_from_this<Acceptor::Impl> {
  Impl(boost::asio::io_context& io, Broker& b, Handoff h) : broker(b), acceptor(io), handoff(std::move(h)) {}

  void accept() {
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == boost::asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("event=accept_failed port={} error=\"{}\"", self->port, ec.message());
      } else if (!self->admit_address(socket)) {
        // Closed at once, before any TLS or WebSocket work (the socket's destructor closes it).
      } else if (!self->broker.admit_connection()) {
        spdlog::warn("event=connection_refused port={} reason=\"max connections reached\"", self->port);
      } else {
        boost::system::error_code release_error;
        socket.non_blocking(true, release_error);
        int fd = socket.release(release_error);
        if (release_error) {
          spdlog::warn("event=accept_failed port={} error=\"{}\"", self->port, release_error.message());
          self->broker.connection_closed();
        } else {
          self->handoff(self->broker.next_worker(), fd);
        }
      }
      self->accept();
    });
  }

  // New connections per source address per second (every port, TCP, TLS and WebSockets, is
  // accepted here; a port with the PROXY protocol counts the header's address later instead).
  // False when the address is over its limit: counted and logged.
  bool admit_address(tcp::socket& socket) {
    if (!admit_addresses || broker.settings().max_connections_per_address_per_second == 0) return true;
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) return true;  // already gone; the handoff notices
    auto address = remote.address();
    auto bytes = address.is_v4()
                     ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4()).to_bytes()
                     : address.to_v6().to_bytes();
    return admit_source_address(broker, bytes, port);
  }

  Broker& broker;
  tcp::acceptor acceptor;
  Handoff handoff;
  bool admit_addresses = true;
  std::string address;
  std::uint16_t port = 0;
};

bool ipv6_unavailable(const boost::system::error_code& ec) {
  return ec == boost::asio::error::address_family_not_supported || ec == boost::system::errc::address_not_available;
}

Acceptor::Acceptor(boost::asio::io_context& io, Broker& broker, const std::string& address, std::uint16_t port,
                   Handoff handoff)
    : impl_(std::make_shared<Impl>(io, broker, std::move(handoff))) {
  std::string bound = address;
  boost::system::error_code ec;
  listen_on(bound, port, ec);
  if (ec && address == "::" && ipv6_unavailable(ec)) {
    // A host (or pod) without IPv6: every IPv4 address instead, as "::" would have served them.
    spdlog::warn("event=ipv6_unavailable port={} error=\"{}\" message=\"listening on 0.0.0.0 instead of ::\"", port,
                 ec.message());
    bound = "0.0.0.0";
    listen_on(bound, port, ec);
  }
  if (ec) throw boost::system::system_error(ec, "listen on " + address + ":" + std::to_string(port));
  impl_->address = bound;
  impl_->port = impl_->acceptor.local_endpoint().port();
}

// An IPv6 socket also accepts IPv4 clients (as IPv4-mapped addresses) whatever the host's
// net.ipv6.bindv6only says: "::" is every address of both families.
void Acceptor::listen_on(const std::string& address, std::uint16_t port, boost::system::error_code& ec) {
  auto& acceptor = impl_->acceptor;
  if (acceptor.is_open()) acceptor.close(ec);
  auto ip = boost::asio::ip::make_address(address, ec);
  if (ec) return;
  tcp::endpoint ep(ip, port);
  acceptor.open(ep.protocol(), ec);
  if (ec) return;
  boost::system::error_code ignored;
  acceptor.set_option(tcp::acceptor::reuse_address(true), ignored);
  if (ip.is_v6()) {
    // Without it a host with net.ipv6.bindv6only=1 would shut IPv4 clients out of "::".
    acceptor.set_option(boost::asio::ip::v6_only(false), ec);
    if (ec) return;
  }
  acceptor.bind(ep, ec);
  if (ec) return;
  acceptor.listen(1024, ec);
}

Acceptor::~Acceptor() { stop(); }

void Acceptor::start() { impl_->accept(); }

void Acceptor::defer_address_admission() { impl_->admit_addresses = false; }

void Acceptor::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

std::uint16_t Acceptor::port() const { return impl_->port; }
const std::string& Acceptor::address() const { return impl_->address; }

}  // namespace mqttd
