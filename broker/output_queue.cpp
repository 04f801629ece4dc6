#include "broker/output_queue.hpp"

namespace mqttd {

std::byte* OutputQueue::append(std::size_t n) {
  Buffers& b = buffers();
  std::size_t offset = b.own.size();
  b.own.resize(offset + n);
  if (b.segments.size() > b.head && !b.segments.back().message &&
      b.segments.back().offset + b.segments.back().length == offset) {
    b.segments.back().length += n;
  } else {
    b.segments.push_back(Segment{{}, nullptr, offset, n});
  }
  pending_ += n;
  return b.own.data() + offset;
}

void OutputQueue::append_payload(const MessageRef& msg, Bytes payload) {
  if (payload.empty()) return;
  if (payload.size() <= kInlinePayloadLimit) {
    std::byte* out = append(payload.size());
    std::copy(payload.begin(), payload.end(), out);
    return;
  }
  buffers().segments.push_back(Segment{msg, payload.data(), 0, payload.size()});
  pending_ += payload.size();
}

std::size_t OutputQueue::gather(iovec* iov, std::size_t max) const {
  if (!buffers_) return 0;
  const Buffers& b = *buffers_;
  std::size_t n = 0;
  for (std::size_t i = b.head; i < b.segments.size() && n < max; ++i, ++n) {
    const Segment& s = b.segments[i];
    iov[n].iov_base = const_cast<std::byte*>(s.message ? s.external : b.own.data() + s.offset);
    iov[n].iov_len = s.length;
  }
  return n;
}

void OutputQueue::consume(std::size_t n) {
  if (n == 0) return;
  Buffers& b = *buffers_;
  pending_ -= n;
  while (n > 0) {
    Segment& s = b.segments[b.head];
    if (n < s.length) {
      // A partly written segment starts later from now on; its written bytes are dead.
      if (s.message) {
        s.external += n;
      } else {
        s.offset += n;
      }
      s.length -= n;
      break;
    }
    n -= s.length;
    s.message = MessageRef();
    ++b.head;
  }
  if (b.head == b.segments.size()) {
    clear();
  } else {
    compact();
  }
}

// Under steady load the queue may never drain completely (new bytes keep arriving behind the
// ones being written), so what has been written is dropped once it outweighs what is pending:
// the buffers stay proportional to the pending bytes, and each byte is moved at most once on
// average.
void OutputQueue::compact() {
  Buffers& b = *buffers_;
  if (b.head >= 64 && b.head * 2 >= b.segments.size()) {
    b.segments.erase(b.segments.begin(), b.segments.begin() + static_cast<std::ptrdiff_t>(b.head));
    b.head = 0;
  }
  std::size_t dead = b.own.size();
  for (std::size_t i = b.head; i < b.segments.size(); ++i) {
    if (!b.segments[i].message) {
      dead = b.segments[i].offset;
      break;
    }
  }
  if (dead < 64 * 1024 || dead * 2 < b.own.size()) return;
  b.own.erase(b.own.begin(), b.own.begin() + static_cast<std::ptrdiff_t>(dead));
  for (std::size_t i = b.head; i < b.segments.size(); ++i) {
    if (!b.segments[i].message) b.segments[i].offset -= dead;
  }
}

void OutputQueue::release_memory() {
  if (pending_ == 0) buffers_.reset();
}

void OutputQueue::clear() {
  pending_ = 0;
  if (!buffers_) return;
  Buffers& b = *buffers_;
  b.segments.clear();
  b.own.clear();
  b.head = 0;
  // Keep the buffers for the next burst, unless a burst made them large: an idle client should
  // not hold megabytes.
  if (b.own.capacity() > 256 * 1024) std::vector<std::byte>().swap(b.own);
  if (b.segments.capacity() > 4096) std::vector<Segment>().swap(b.segments);
}

}  // namespace mqttd
