#include "listener/socket_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

namespace mqttd {

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

bool peer_finished_sending(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

bool discard_input(int fd) {
  char sink[16384];
  for (int i = 0; i < 4; ++i) {
    ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
    if (n > 0) continue;
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }
  return false;
}

}  // namespace mqttd
