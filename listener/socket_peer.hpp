// The "address:port" of a connected socket's peer, for log lines; whether the peer is done.
#pragma once

#include <netinet/in.h>

#include <string>

namespace mqttd {

// Reads the peer address of `fd` (zeroed if the socket has none).
sockaddr_in6 peer_address(int fd);
std::string format_peer(const sockaddr_in6& address);
// True when the peer has shut its side down and every byte it sent has been read from `fd`.
bool peer_finished_sending(int fd);

}  // namespace mqttd
