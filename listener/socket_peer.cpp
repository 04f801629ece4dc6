#include "listener/socket_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mqttd {

namespace {

// Reads and discards what is readable on `fd` (a bounded amount per call, then the other
// connections of the worker have their turn). True when the peer closed or the connection
// failed: the socket can close now.
bool discard_input(int fd) {
  char sink[16384];
  for (int i = 0; i < 4; ++i) {
    ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
    if (n > 0) continue;
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }
  return false;
}

}  // namespace

sockaddr_in6 peer_address(int fd) {
  sockaddr_in6 address{};
  socklen_t len = sizeof(address);
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &len);
  return address;
}

std::string format_peer(const sockaddr_in6& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (address.sin6_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else if (address.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&address.sin6_addr)) {
    // An IPv4 client of a dual-stack port: logged as the IPv4 address it is.
    ::inet_ntop(AF_INET, &address.sin6_addr.s6_addr[12], host, sizeof(host));
    port = ntohs(address.sin6_port);
  } else if (address.sin6_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &address.sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(address.sin6_port));
  }
  return std::string(host) + ":" + std::to_string(port);
}

std::array<std::uint8_t, 16> address_bytes(const sockaddr_in6& peer) {
  std::array<std::uint8_t, 16> bytes{};
  if (peer.sin6_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    bytes[10] = bytes[11] = 0xFF;
    std::memcpy(bytes.data() + 12, &v4->sin_addr, 4);
  } else {
    std::memcpy(bytes.data(), &peer.sin6_addr, 16);
  }
  return bytes;
}

sockaddr_in6 socket_address(const std::array<std::uint8_t, 16>& address, std::uint16_t port) {
  sockaddr_in6 out{};
  out.sin6_family = AF_INET6;
  out.sin6_port = htons(port);
  std::memcpy(&out.sin6_addr, address.data(), 16);
  return out;
}

bool peer_finished_sending(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void LingeringSocket::linger_after_this_turn() {
  if (closing_) return;
  closing_ = true;
  poller_.post_to(this, [this] {
    if (closed_) return;
    start_lingering();
  });
}

void LingeringSocket::start_lingering() {
  if (lingering_ || closed_) return;
  if (!can_linger()) return finish_close();
  lingering_ = true;
  notify_closed();
  if (!write_blocked_) write_pending();
  if (closed_) return;
  if (!write_blocked_) shut_sending_side();
  poller_.post_after(this, kLingerTime, [this] { finish_close(); });
  if (discard_input(fd())) return finish_close();  // the client closed too (or the connection failed)
  update_interest();
}

void LingeringSocket::on_lingering_events(std::uint32_t events, bool writable) {
  if (writable && write_blocked_) {
    write_blocked_ = false;
    write_pending();
    if (closed_) return;
    if (!write_blocked_) shut_sending_side();
  }
  // Raw bytes, not packets or records: nothing the client sends now is read.
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && discard_input(fd())) return finish_close();
  if (!closed_) update_interest();
}

void LingeringSocket::shut_sending_side() {
  if (sending_shut_ || !output_empty()) return;
  sending_shut_ = true;
  send_close_notify();
  ::shutdown(fd(), SHUT_WR);
}

void LingeringSocket::finish_close() {
  if (closed_) return;
  closed_ = true;
  if (!sending_shut_) send_close_notify();
  ::shutdown(fd(), SHUT_RDWR);
  poller_.retire(fd(), this);
  ::close(fd());
  notify_closed();
}

}  // namespace mqttd
