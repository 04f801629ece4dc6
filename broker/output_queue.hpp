// The bytes waiting to be written to one client: its own control packets and PUBLISH headers in
// one growing buffer, and large payloads by reference to the shared message, so that one
// scatter-gather write sends everything pending without copying those payloads.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <vector>

#include "broker/message.hpp"

namespace mqttd {

class OutputQueue {
 public:
  // Payloads up to this size are copied next to their header: an extra iovec costs more than
  // the copy.
  static constexpr std::size_t kInlinePayloadLimit = 512;

  // Reserves n bytes at the end of the queue and returns where to write them.
  std::byte* append(std::size_t n);
  void append_payload(const MessageRef& msg, Bytes payload);

  bool empty() const { return pending_ == 0; }
  std::size_t pending_bytes() const { return pending_; }
  // Bytes held in the queue's own buffer, written or not (for tests and metrics).
  std::size_t buffered_bytes() const { return buffers_ ? buffers_->own.size() : 0; }

  // Fills up to `max` iovecs with the front of the queue; returns how many were filled.
  std::size_t gather(iovec* iov, std::size_t max) const;
  // Drops the first n bytes, which have been written.
  void consume(std::size_t n);
  void clear();
  // Whether the queue keeps buffers (it does between bursts, so that a busy connection does not
  // allocate per write); release_memory() frees them when nothing is pending, for a connection
  // gone idle.
  bool holds_memory() const { return buffers_ != nullptr; }
  void release_memory();

 private:
  void compact();
  struct Segment {
    MessageRef message;                   // set: bytes are in the message; empty: bytes are in own
    const std::byte* external = nullptr;  // into the message's payload when message is set
    std::size_t offset = 0;               // into own when message is empty
    std::size_t length = 0;
  };
  // Allocated at the first write and kept between bursts until release_memory(): an idle
  // connection's queue is two words.
  struct Buffers {
    std::vector<std::byte> own;
    std::vector<Segment> segments;
    std::size_t head = 0;  // first unsent segment (written bytes are cut off its front)
  };
  Buffers& buffers() {
    if (!buffers_) buffers_ = std::make_unique<Buffers>();
    return *buffers_;
  }
  std::unique_ptr<Buffers> buffers_;
  std::size_t pending_ = 0;
};

}  // namespace mqttd
