// The bytes waiting to be written to one client: its own control packets and PUBLISH headers in
// one growing buffer, and large payloads by reference to the shared message, so that one
// scatter-gather write sends everything pending without copying those payloads.
//
// The buffers exist only while bytes are pending: the connection takes them from its worker's
// OutputBufferPool before it writes and gives them back once they are drained. A busy connection
// reuses the same buffers without allocating; an idle one holds none.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "broker/message.hpp"

namespace mqttd {

class OutputBufferPool;

class OutputQueue {
 public:
  OutputQueue() = default;
  ~OutputQueue();
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // Payloads up to this size are copied next to their header: an extra iovec costs more than
  // the copy.
  static constexpr std::size_t kInlinePayloadLimit = 512;

  // Reserves n bytes at the end of the queue and returns where to write them.
  std::byte* append(std::size_t n);
  void append_payload(const MessageRef& msg, Bytes payload);

  bool empty() const { return pending_ == 0; }
  std::size_t pending_bytes() const { return pending_; }
  // Bytes held in the queue's own buffer, written or not (for tests and metrics).
  std::size_t buffered_bytes() const;

  // Fills up to `max` iovecs with the front of the queue; returns how many were filled.
  std::size_t gather(iovec* iov, std::size_t max) const;
  // Drops the first n bytes, which have been written.
  void consume(std::size_t n);
  // Drops everything pending (the buffers stay, emptied).
  void clear();
  // Whether the queue holds buffers. A queue without them allocates at its next write unless it
  // takes some from a pool first; give_buffers_to() hands them back when nothing is pending.
  bool holds_memory() const { return buffers_ != nullptr; }
  void take_buffers_from(OutputBufferPool& pool);
  void give_buffers_to(OutputBufferPool& pool);

  struct Buffers;

 private:
  friend class OutputBufferPool;
  void compact();
  struct Segment {
    MessageRef message;                   // set: bytes are in the message; empty: bytes are in own
    const std::byte* external = nullptr;  // into the message's payload when message is set
    std::size_t offset = 0;               // into own when message is empty
    std::size_t length = 0;
  };
  Buffers& buffers();

  std::unique_ptr<Buffers> buffers_;
  std::size_t pending_ = 0;
};

// An allocator whose value-less construct() leaves bytes as they are: append() grows the buffer
// by what the caller then writes, and std::vector's resize() would zero it first (a memset per
// packet written).
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

struct OutputQueue::Buffers {
  using Bytes = std::vector<std::byte, UninitializedAllocator<std::byte>>;
  Bytes own;
  std::vector<Segment> segments;
  std::size_t head = 0;  // first unsent segment (written bytes are cut off its front)
};

// Drained queues' buffers, for the next queue that writes: one per worker (thread-owned). It must
// hold as many as the connections that write in one turn of the event loop (a fan-out to 1,000
// subscribers drains 1,000 queues per message, and each writes again at the next one), or
// every delivery allocates; it keeps at most kMaxKeptBytes of capacity, and no buffer grown past
// a burst's size, so an idle worker holds little.
class OutputBufferPool {
 public:
  static constexpr std::size_t kMaxKeptBytes = 4 * 1024 * 1024;
  std::unique_ptr<OutputQueue::Buffers> take();
  void give(std::unique_ptr<OutputQueue::Buffers> buffers);
  std::size_t kept() const { return kept_.size(); }
  std::size_t kept_bytes() const { return kept_bytes_; }

 private:
  static std::size_t capacity_of(const OutputQueue::Buffers& b);
  std::vector<std::unique_ptr<OutputQueue::Buffers>> kept_;
  std::size_t kept_bytes_ = 0;
};

}  // namespace mqttd
