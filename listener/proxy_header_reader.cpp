#include "listener/proxy_header_reader.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <string_view>
#include <unordered_map>

#include "broker/broker.hpp"
#include "listener/connection_rate.hpp"
#include "listener/proxy_client_certificate.hpp"
#include "listener/proxy_protocol.hpp"
#include "listener/socket_peer.hpp"

namespace mqttd {

namespace {

using config::ProxyProtocol;
namespace pp = proxy_protocol;

// A text the proxy sent (a certificate's CN, a cipher name), safe inside a quoted log value: no
// quote, backslash or control character can end the value or forge another field.
std::string log_text(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') c = '?';
  return out;
}

const char* mode_name(ProxyProtocol::Mode mode) {
  return mode == ProxyProtocol::Mode::Required ? "Required" : "Optional";
}

// At most one refusal line per reason per second per worker, with the count of those not written:
// a stranger opening connections in a loop must not flood the log. The reasons are the parser's
// and this file's constant texts, per port: the table stays as small as that list times the ports.
bool refusal_log_allowed(std::uint16_t port, std::string_view reason, std::uint64_t& suppressed) {
  struct Throttle {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t skipped = 0;
  };
  thread_local std::unordered_map<std::string, Throttle> throttles;
  auto& t = throttles[std::to_string(port) + ' ' + std::string(reason)];
  auto now = std::chrono::steady_clock::now();
  if (t.last != std::chrono::steady_clock::time_point{} && now - t.last < std::chrono::seconds(1)) {
    ++t.skipped;
    return false;
  }
  t.last = now;
  suppressed = t.skipped;
  t.skipped = 0;
  return true;
}

// A socket closed before it became a connection: the broker's count and the port's.
void closed_before_connection(Broker& broker, const ProxyPort& port) {
  broker.connection_closed();
  broker.port_metrics().count(port.endpoint_id, PortEvent::Closed);
}

}  // namespace

void ProxyHeaderReader::serve(Broker& broker, std::size_t worker, int fd, std::shared_ptr<const ProxyPort> port,
                              Next next) {
  sockaddr_in6 real = peer_address(fd);
  auto address = address_bytes(real);
  bool trusted = port->settings.trusts(address);
  if (!trusted) {
    // An untrusted source is its own client: counted by its own address, now.
    if (!admit_source_address(broker, address, port->port)) {
      ::close(fd);
      closed_before_connection(broker, *port);
      return;
    }
    if (port->settings.mode == ProxyProtocol::Mode::Required) {
      // Nothing it could send would be served: a header from it is refused, and its absence too.
      if (std::uint64_t suppressed = 0; refusal_log_allowed(port->port, "untrusted on a Required port", suppressed))
        spdlog::warn(
            "event=proxy_protocol_refused listener={} port={} peer={} reason=\"not a trusted source, and the port "
            "requires a PROXY protocol header\" suppressed={}",
            port->listener, port->port, format_peer(real), suppressed);
      ::close(fd);
      closed_before_connection(broker, *port);
      return;
    }
  }
  EpollPoller& poller = EpollPoller::of(broker, worker);
  auto timeout = broker.settings().connect_timeout;
  auto reader = std::make_unique<ProxyHeaderReader>(broker, poller, fd, std::move(port), std::move(next), real, trusted,
                                                    !trusted);
  auto* raw = reader.get();
  // Edge-triggered: the reader peeks and leaves incomplete bytes in the socket, which a
  // level-triggered watch would report again at once, forever. Each arrival is a new edge; bytes
  // already there at adoption are reported too.
  poller.adopt(std::move(reader), fd, EPOLLIN | EPOLLRDHUP | EPOLLET);
  // One timer per connection for the header's time (a rare event: a connection's start).
  poller.post_after(raw, std::chrono::duration_cast<std::chrono::milliseconds>(timeout), [raw] { raw->time_out(); });
}

ProxyHeaderReader::ProxyHeaderReader(Broker& broker, EpollPoller& poller, int fd, std::shared_ptr<const ProxyPort> port,
                                     Next next, const sockaddr_in6& real_peer, bool trusted, bool admitted)
    : PollHandler(fd),
      broker_(broker),
      poller_(poller),
      port_(std::move(port)),
      next_(std::move(next)),
      real_peer_(real_peer),
      trusted_(trusted),
      admitted_(admitted) {}

ProxyHeaderReader::~ProxyHeaderReader() {
  // The worker's poller ends (the broker stops) with this socket still waiting.
  if (!done_) {
    done_ = true;
    ::close(poll_fd());
    closed_before_connection(broker_, *port_);
  }
}

void ProxyHeaderReader::on_events(std::uint32_t events) {
  if (done_) return;
  // The longest header there can be; a thread's buffer, so that a waiting connection holds none.
  thread_local std::array<std::uint8_t, pp::kMaxHeaderBytes> buffer;
  ssize_t n = ::recv(poll_fd(), buffer.data(), buffer.size(), MSG_PEEK);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (events & (EPOLLHUP | EPOLLERR)) drop("connection failed before its first byte");
      return;
    }
    return drop("connection failed before its first byte");
  }
  if (n == 0) return drop("client left before its first byte");
  auto result = pp::parse(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));
  switch (result.status) {
    case pp::Status::NeedMore:
      // Bytes of a header and no more to come: it can never complete.
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) refuse("the connection ended inside the header");
      return;
    case pp::Status::NotHeader:
      // A trusted source is a load balancer, which must send a header: the receiver may not guess
      // whether bytes that look like a client's come from the balancer or from a client whose own
      // "PROXY ..." line it forwarded. Without a header only an untrusted source (a direct
      // client, in Optional mode) is served, as itself.
      if (port_->settings.mode == ProxyProtocol::Mode::Required || trusted_)
        return refuse("no PROXY protocol header from a trusted source");
      return hand_over(real_peer_, nullptr);
    case pp::Status::Invalid:
      return refuse(trusted_ ? result.error : "a PROXY protocol header from a source that is not trusted");
    case pp::Status::Header:
      break;
  }
  // Anyone may write "PROXY TCP4 ..." to claim any address: only a trusted load balancer is believed.
  if (!trusted_) return refuse("a PROXY protocol header from a source that is not trusted");
  // The header is in the socket's buffer (it was just peeked): read it off, and exactly it.
  ssize_t taken = ::recv(poll_fd(), buffer.data(), result.length, 0);
  if (taken != static_cast<ssize_t>(result.length)) return drop("the header could not be read off the socket");
  const auto& header = result.header;
  hand_over(header.source ? socket_address(header.source->address, header.source->port) : real_peer_, &header);
}

void ProxyHeaderReader::hand_over(const sockaddr_in6& peer, const proxy_protocol::Header* header) {
  // Closed or changed while this socket waited: it must not become a connection of a port that is
  // gone (its security is no longer registered).
  if (port_->closed.load(std::memory_order_acquire)) return drop("its port was closed");
  if (!admitted_ && !admit_source_address(broker_, address_bytes(peer), port_->port)) {
    close_socket();
    return;
  }
  if (header && spdlog::should_log(spdlog::level::debug)) {
    std::string tls;
    if (header->tls) {
      // Logged; used only on a port with clientCertificates: Trusted (client_certificate()).
      const auto& t = *header->tls;
      tls = fmt::format(
          " tls=true tls_version=\"{}\" client_certificate={} certificate_verified={} verify={} cn=\"{}\" "
          "cipher=\"{}\"",
          log_text(t.version), t.client_certificate(), t.certificate_verified(), t.verify, log_text(t.common_name),
          log_text(t.cipher));
    }
    spdlog::debug("event=proxy_protocol_header listener={} port={} peer={} proxy={} version={} addresses={}{}{}",
                  port_->listener, port_->port, format_peer(peer), format_peer(real_peer_), header->version,
                  header->source  ? "header"
                  : header->local ? "local"
                                  : "connection",
                  header->authority.empty() ? "" : " authority=\"" + log_text(header->authority) + "\"", tls);
  }
  std::unique_ptr<authn::PeerCertificate> certificate;
  if (header && port_->settings.trusts_client_certificates()) certificate = client_certificate(peer, *header);
  done_ = true;
  int fd = poll_fd();
  // Stops watching the socket (this object is destroyed after the current batch of events) and
  // gives it, still open, to its transport, which adopts it again in this poller.
  poller_.retire(fd, this);
  next_(fd, peer, std::move(certificate));
}

std::unique_ptr<authn::PeerCertificate> ProxyHeaderReader::client_certificate(const sockaddr_in6& peer,
                                                                              const proxy_protocol::Header& header) {
  // Only a trusted source's header reaches here (on_events), and the port is Required: the
  // balancer verified the chain, and says so with verify 0 and the leaf's CN.
  auto verdict = pp::client_certificate_of(header);
  switch (verdict.status) {
    case pp::ClientCertificate::Status::None:
      return nullptr;
    case pp::ClientCertificate::Status::Refused:
      // The connection goes on without a certificate: the next authentication method decides.
      if (std::uint64_t suppressed = 0; refusal_log_allowed(port_->port, verdict.reason, suppressed))
        spdlog::warn(
            "event=proxy_client_certificate_ignored listener={} port={} peer={} proxy={} reason=\"{}\" "
            "suppressed={}",
            port_->listener, port_->port, format_peer(peer), format_peer(real_peer_), verdict.reason, suppressed);
      return nullptr;
    case pp::ClientCertificate::Status::Accepted:
      break;
  }
  spdlog::debug("event=proxy_client_certificate listener={} port={} peer={} proxy={} cn=\"{}\"", port_->listener,
                port_->port, format_peer(peer), format_peer(real_peer_), log_text(verdict.certificate.common_name));
  return std::make_unique<authn::PeerCertificate>(std::move(verdict.certificate));
}

void ProxyHeaderReader::refuse(const char* reason) {
  if (std::uint64_t suppressed = 0; refusal_log_allowed(port_->port, reason, suppressed))
    spdlog::warn(
        "event=proxy_protocol_refused listener={} port={} peer={} trusted={} mode={} reason=\"{}\" suppressed={}",
        port_->listener, port_->port, format_peer(real_peer_), trusted_, mode_name(port_->settings.mode), reason,
        suppressed);
  close_socket();
}

void ProxyHeaderReader::on_shutdown() { drop("the broker stops"); }

void ProxyHeaderReader::drop(const char* why) {
  spdlog::debug("event=proxy_protocol_closed listener={} port={} peer={} reason=\"{}\"", port_->listener, port_->port,
                format_peer(real_peer_), why);
  close_socket();
}

void ProxyHeaderReader::time_out() {
  if (done_) return;
  broker_.limit_reached(Limit::ConnectTimeout, format_peer(real_peer_),
                        fmt::format("no PROXY protocol header{} within {} s (port {})",
                                    port_->settings.mode == ProxyProtocol::Mode::Optional ? " or client bytes" : "",
                                    broker_.settings().connect_timeout.count(), port_->port));
  close_socket();
}

void ProxyHeaderReader::close_socket() {
  if (done_) return;
  done_ = true;
  int fd = poll_fd();
  poller_.retire(fd, this);
  ::close(fd);
  closed_before_connection(broker_, *port_);
}

}  // namespace mqttd
