// The "address:port" of a connected socket's peer, for log lines.
#pragma once

#include <netinet/in.h>

#include <string>

namespace mqttd {

// Reads the peer address of `fd` (zeroed if the socket has none).
sockaddr_in6 peer_address(int fd);
std::string format_peer(const sockaddr_in6& address);

}  // namespace mqttd
