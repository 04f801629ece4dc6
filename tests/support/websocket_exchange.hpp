// Plays a WebSocket client against the real WebSocketTransport: the transport serves one end of
// a connected socket pair on worker 0 of a Broker that was not started, and this code writes the
// client's bytes on the other end and runs the worker's event loop on the caller's thread until
// the connection is closed. Shared by the WebSocket unit tests and the fuzz_websocket target.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "broker/broker.hpp"
#include "listener/websocket_transport.hpp"

namespace mqttd::test {

inline constexpr std::string_view kWebSocketUpgrade =
    "GET /mqtt HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n"
    "\r\n";

// Appends a client-to-server frame: always masked, as RFC 6455 requires of clients.
inline void append_client_frame(std::string& out, std::uint8_t opcode, bool fin, std::uint32_t mask_key,
                                std::string_view payload) {
  out += static_cast<char>((fin ? 0x80 : 0) | (opcode & 0x0F));
  if (payload.size() < 126) {
    out += static_cast<char>(0x80 | payload.size());
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>((payload.size() >> 8) & 0xFF);
    out += static_cast<char>(payload.size() & 0xFF);
  }
  const char key[4] = {static_cast<char>(mask_key >> 24), static_cast<char>(mask_key >> 16),
                       static_cast<char>(mask_key >> 8), static_cast<char>(mask_key)};
  out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
}

struct WebSocketExchange {
  std::string received;  // everything the server wrote
  bool closed = false;   // the transport closed the connection and was destroyed in time
};

// Sends `stream` (an upgrade request and what follows it) and returns once the transport has
// closed the connection, or `timeout` after the end of the input. A client sends nothing after
// its upgrade request until the server has answered (RFC 6455 4.1), and the transport counts on
// that (it reads the request with its own buffer): so the request goes first, and the rest once
// the server has nothing left to do.
inline WebSocketExchange exchange_websocket(Broker& broker, std::string_view stream,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    throw std::runtime_error("socketpair failed");
  if (!broker.admit_connection()) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::runtime_error("connection refused by the broker's limit");
  }
  serve_websocket(broker, 0, fds[0], nullptr, 0);  // owns fds[0] from here
  const int client = fds[1];

  auto& io = broker.io_context(0);
  WebSocketExchange result;
  auto end_of_request = stream.find("\r\n\r\n");
  std::size_t limit = end_of_request == std::string_view::npos ? stream.size() : end_of_request + 4;
  std::size_t written = 0;
  bool shut = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[16384];
  for (;;) {
    if (written < limit) {
      ssize_t n = ::write(client, stream.data() + written, limit - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      // EPIPE, ECONNRESET: the server closed early (a refused upgrade); the rest is not read.
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) written = limit = stream.size();
    }
    if (written == stream.size() && !shut) {
      ::shutdown(client, SHUT_WR);
      shut = true;
      deadline = std::chrono::steady_clock::now() + timeout;
    }
    io.restart();
    std::size_t ran = io.poll();
    for (ssize_t n; (n = ::read(client, buffer, sizeof buffer)) > 0;) result.received.append(buffer, n);
    if (ran == 0 && written == limit && limit < stream.size()) {
      limit = stream.size();  // the server answered the request, or waits for more of it
      continue;
    }
    // Done once the engine's connection is closed and nothing is left to run: the transport,
    // held only by its pending handlers, is then destroyed.
    if (shut && ran == 0 && broker.stats().connections == 0) {
      result.closed = true;
      break;
    }
    if (ran == 0) {
      io.restart();
      io.run_one_for(std::chrono::milliseconds(1));
    }
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  io.restart();
  io.poll();
  ::close(client);
  return result;
}

}  // namespace mqttd::test
