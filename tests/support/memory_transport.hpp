// A transport that keeps the bytes in memory instead of a socket, in front of a real
// ClientConnection on one worker (0 unless said) of a Broker that was not started: the caller polls the worker's
// event loop by hand (pump), so everything runs on the caller's thread, in order. Shared by the
// engine unit tests and the engine fuzz target, which must drive the engine the same way.
#pragma once

#include <sys/uio.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/client_connection.hpp"
#include "broker/transport.hpp"
#include "codec/types.hpp"

namespace mqttd::test {

class MemoryTransport : public Transport {
 public:
  // Counts the connection against the broker's limit as a listener does at accept (released
  // when the connection closes); admitted() is false, and nothing is opened, if it was refused.
  explicit MemoryTransport(Broker& broker, std::size_t worker = 0) : broker_(broker), worker_(worker) {
    admitted_ = broker.admit_connection();
    if (admitted_) connection_ = broker.open_connection(worker, *this);
  }
  ~MemoryTransport() override {
    if (connection_ && !closed_) {
      closed_ = true;
      connection_->on_transport_closed();
    }
  }
  MemoryTransport(const MemoryTransport&) = delete;
  MemoryTransport& operator=(const MemoryTransport&) = delete;

  void flush() override {
    auto& out = connection_->output();
    iovec iov[64];
    while (!out.empty()) {
      std::size_t n = out.gather(iov, 64), total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        auto* p = static_cast<const std::byte*>(iov[i].iov_base);
        wire_.insert(wire_.end(), p, p + iov[i].iov_len);
        total += iov[i].iov_len;
      }
      out.consume(total);
    }
    connection_->on_output_drained();
  }
  // As the socket transports do: after this turn of the event loop, write what is queued, then close.
  void close() override {
    boost::asio::post(broker_.io_context(worker_), [this] {
      if (closed_) return;
      flush();
      closed_ = true;
      connection_->on_transport_closed();
    });
  }
  void resume_reading() override {}
  const std::string& peer() const override { return peer_; }

  bool admitted() const { return admitted_; }
  ClientConnection& connection() { return *connection_; }

  // Hands `bytes` to the engine as one read, then runs what that queued on the worker.
  void send_bytes(codec::Bytes bytes) {
    connection_->on_bytes(bytes);
    pump();
  }
  void pump() {
    auto& io = broker_.io_context(worker_);
    io.restart();
    io.poll();
  }
  bool closed() const { return closed_; }

  // What the broker wrote, in order, since the last clear.
  std::vector<std::byte>& wire() { return wire_; }

 private:
  Broker& broker_;
  std::size_t worker_ = 0;
  std::unique_ptr<ClientConnection> connection_;
  std::vector<std::byte> wire_;
  std::string peer_ = "memory";
  bool admitted_ = false;
  bool closed_ = false;
};

}  // namespace mqttd::test
