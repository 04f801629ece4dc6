#include "broker/output_queue.hpp"

namespace mqttd {

namespace {
// Buffers grown past these by a burst are freed rather than kept.
constexpr std::size_t kKeepOwnBytes = 64 * 1024;
constexpr std::size_t kKeepSegments = 256;
}  // namespace

std::size_t OutputBufferPool::capacity_of(const OutputQueue::Buffers& b) {
  return sizeof(OutputQueue::Buffers) + b.own.capacity() + b.segments.capacity() * sizeof(b.segments[0]);
}

std::unique_ptr<OutputQueue::Buffers> OutputBufferPool::take() {
  if (kept_.empty()) return std::make_unique<OutputQueue::Buffers>();
  auto buffers = std::move(kept_.back());
  kept_.pop_back();
  kept_bytes_ -= capacity_of(*buffers);
  return buffers;
}

void OutputBufferPool::give(std::unique_ptr<OutputQueue::Buffers> buffers) {
  if (buffers->own.capacity() > kKeepOwnBytes || buffers->segments.capacity() > kKeepSegments) return;
  std::size_t bytes = capacity_of(*buffers);
  if (kept_bytes_ + bytes > kMaxKeptBytes) return;
  buffers->own.clear();
  buffers->segments.clear();
  buffers->head = 0;
  kept_bytes_ += bytes;
  kept_.push_back(std::move(buffers));
}

OutputQueue::~OutputQueue() = default;

std::size_t OutputQueue::buffered_bytes() const { return buffers_ ? buffers_->own.size() : 0; }

OutputQueue::Buffers& OutputQueue::buffers() {
  if (!buffers_) buffers_ = std::make_unique<Buffers>();
  return *buffers_;
}

void OutputQueue::take_buffers_from(OutputBufferPool& pool) {
  if (!buffers_) buffers_ = pool.take();
}

void OutputQueue::give_buffers_to(OutputBufferPool& pool) {
  if (pending_ != 0 || !buffers_) return;
  // Segments hold references to messages: dropped now, not when the buffers are reused.
  buffers_->segments.clear();
  pool.give(std::move(buffers_));
}

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

void OutputQueue::clear() {
  pending_ = 0;
  if (!buffers_) return;
  Buffers& b = *buffers_;
  b.segments.clear();
  b.own.clear();
  b.head = 0;
  // Kept, emptied, for the next burst unless a burst made them large.
  if (b.own.capacity() > kKeepOwnBytes) Buffers::Bytes().swap(b.own);
  if (b.segments.capacity() > kKeepSegments) std::vector<Segment>().swap(b.segments);
}

}  // namespace mqttd
