#include "broker/output_queue.hpp"

namespace mqttd {

std::byte* OutputQueue::append(std::size_t n) {
  std::size_t offset = own_.size();
  own_.resize(offset + n);
  if (segments_.size() > head_ && !segments_.back().message &&
      segments_.back().offset + segments_.back().length == offset) {
    segments_.back().length += n;
  } else {
    segments_.push_back(Segment{{}, nullptr, offset, n});
  }
  pending_ += n;
  return own_.data() + offset;
}

void OutputQueue::append_payload(const MessageRef& msg, Bytes payload) {
  if (payload.empty()) return;
  if (payload.size() <= kInlinePayloadLimit) {
    std::byte* out = append(payload.size());
    std::copy(payload.begin(), payload.end(), out);
    return;
  }
  segments_.push_back(Segment{msg, payload.data(), 0, payload.size()});
  pending_ += payload.size();
}

std::size_t OutputQueue::gather(iovec* iov, std::size_t max) const {
  std::size_t n = 0;
  for (std::size_t i = head_; i < segments_.size() && n < max; ++i, ++n) {
    const Segment& s = segments_[i];
    iov[n].iov_base = const_cast<std::byte*>(s.message ? s.external : own_.data() + s.offset);
    iov[n].iov_len = s.length;
  }
  return n;
}

void OutputQueue::consume(std::size_t n) {
  pending_ -= n;
  while (n > 0) {
    Segment& s = segments_[head_];
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
    ++head_;
  }
  if (head_ == segments_.size()) {
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
  if (head_ >= 64 && head_ * 2 >= segments_.size()) {
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  std::size_t dead = own_.size();
  for (std::size_t i = head_; i < segments_.size(); ++i) {
    if (!segments_[i].message) {
      dead = segments_[i].offset;
      break;
    }
  }
  if (dead < 64 * 1024 || dead * 2 < own_.size()) return;
  own_.erase(own_.begin(), own_.begin() + static_cast<std::ptrdiff_t>(dead));
  for (std::size_t i = head_; i < segments_.size(); ++i) {
    if (!segments_[i].message) segments_[i].offset -= dead;
  }
}

void OutputQueue::release_memory() {
  if (pending_ != 0) return;
  std::vector<std::byte>().swap(own_);
  std::vector<Segment>().swap(segments_);
  head_ = 0;
}

void OutputQueue::clear() {
  segments_.clear();
  own_.clear();
  head_ = pending_ = 0;
  // Keep the buffers for the next burst, unless a burst made them large: an idle client should
  // not hold megabytes.
  if (own_.capacity() > 256 * 1024) std::vector<std::byte>().swap(own_);
  if (segments_.capacity() > 4096) std::vector<Segment>().swap(segments_);
}

}  // namespace mqttd
