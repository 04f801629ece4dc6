// The "address:port" of a connected socket's peer, for log lines; whether the peer is done; and
// LingeringSocket, the way the epoll transports (TcpTransport, TlsTransport) close a socket,
// written once.
#pragma once

#include <netinet/in.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "listener/epoll_poller.hpp"

namespace mqttd {

// Reads the peer address of `fd` (zeroed if the socket has none).
sockaddr_in6 peer_address(int fd);
std::string format_peer(const sockaddr_in6& address);
// The address of `peer` as 16 bytes, IPv4 (AF_INET, or IPv4-mapped) as an IPv4-mapped address.
std::array<std::uint8_t, 16> address_bytes(const sockaddr_in6& peer);
// The AF_INET6 socket address of `address` (IPv4 as IPv4-mapped, which format_peer prints as IPv4).
sockaddr_in6 socket_address(const std::array<std::uint8_t, 16>& address, std::uint16_t port);
// True when the peer has shut its side down and every byte it sent has been read from `fd`.
bool peer_finished_sending(int fd);

// A connection the broker ended keeps reading (and discarding) this long before its socket
// closes: closing with unread input would reset the connection and discard what the client has
// not received yet, the DISCONNECT that says why included.
constexpr std::chrono::milliseconds kLingerTime{2000};

// The socket of an epoll transport and its close. When the broker ends a connection (a
// DISCONNECT, a protocol error, a takeover), the transport lingers: it writes what is queued,
// shuts its sending side down (the client reads the end of the stream after the DISCONNECT), and
// reads and discards raw input until the client closes, for at most kLingerTime. The engine is
// done with the connection once lingering starts. The transport keeps its own reading and
// writing; this class calls back into it through the hooks below, on close paths only.
class LingeringSocket : public PollHandler {
 protected:
  LingeringSocket(EpollPoller& poller, int fd) : PollHandler(fd), poller_(poller) {}
  // The socket (the descriptor the poller watches; not stored twice).
  int fd() const { return poll_fd(); }

  // Writes what the connection has queued: sets write_blocked_ when the socket is full, closes
  // (finish_close) when the connection failed.
  virtual void write_pending() = 0;
  virtual bool output_empty() const = 0;
  // Tells the poller which events the transport waits for now (lingering_: input, to discard it).
  virtual void update_interest() = 0;
  // Tells the engine that the connection is over (once, however often it is called).
  virtual void notify_closed() = 0;
  // What goes out before the sending side shuts (or the socket closes without that): TLS's
  // close_notify.
  virtual void send_close_notify() {}
  // False while there is nothing to deliver to the client (before a TLS handshake completed): the
  // socket closes at once instead of lingering.
  virtual bool can_linger() const { return true; }

  // Transport::close(): lingering starts after this turn of the event loop, so that what the
  // connection queued just now is written first.
  void linger_after_this_turn();
  void start_lingering();
  // The socket's events while lingering; `writable` says that a blocked write may go on.
  void on_lingering_events(std::uint32_t events, bool writable);
  // Shuts the sending side down once everything queued is written.
  void shut_sending_side();
  // Closes the socket now and hands it back to the poller.
  void finish_close();

  EpollPoller& poller_;
  bool write_blocked_ = false;
  bool closing_ = false;  // the connection is ending: nothing more is read for the engine
  bool closed_ = false;   // the socket is closed
  bool lingering_ = false;
  bool sending_shut_ = false;
};

}  // namespace mqttd
