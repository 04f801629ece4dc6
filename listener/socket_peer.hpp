// The "address:port" of a connected socket's peer, for log lines; whether the peer is done; the
// lingering close shared by the epoll transports.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <string>

namespace mqttd {

// Reads the peer address of `fd` (zeroed if the socket has none).
sockaddr_in6 peer_address(int fd);
std::string format_peer(const sockaddr_in6& address);
// True when the peer has shut its side down and every byte it sent has been read from `fd`.
bool peer_finished_sending(int fd);

// A connection the broker ended keeps reading (and discarding) this long before its socket
// closes: closing with unread input would reset the connection and discard what the client has
// not received yet, the DISCONNECT that says why included.
constexpr std::chrono::milliseconds kLingerTime{2000};
// Reads and discards what is readable on `fd` (a bounded amount per call). True when the peer
// closed or the connection failed: the socket can close now.
bool discard_input(int fd);

}  // namespace mqttd
