#include "broker/output_queue.hpp"

namespace mqttd {

std::byte* OutputQueue::append(std::size_t n) {
  std::size_t offset = own_.size();
  own_.resize(offset + n);
  if (!segments_.empty() && !segments_.back().message && segments_.back().offset + segments_.back().length == offset &&
      segments_.size() > head_) {
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
    const std::byte* base = s.message ? s.external : own_.data() + s.offset;
    std::size_t skip = i == head_ ? head_sent_ : 0;
    iov[n].iov_base = const_cast<std::byte*>(base + skip);
    iov[n].iov_len = s.length - skip;
  }
  return n;
}

void OutputQueue::consume(std::size_t n) {
  pending_ -= n;
  while (n > 0) {
    Segment& s = segments_[head_];
    std::size_t left = s.length - head_sent_;
    if (n < left) {
      head_sent_ += n;
      return;
    }
    n -= left;
    s.message = MessageRef();
    ++head_;
    head_sent_ = 0;
  }
  if (head_ == segments_.size()) {
    clear();
  } else if (head_ >= 64 && head_ * 2 >= segments_.size()) {
    compact();
  }
}

// Under steady load the queue may never drain completely; drop what has been sent so that the
// buffers stay proportional to what is pending.
void OutputQueue::compact() {
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(head_));
  head_ = 0;
  std::size_t first_own = own_.size();
  for (const Segment& s : segments_) {
    if (!s.message) {
      first_own = s.offset;
      break;
    }
  }
  own_.erase(own_.begin(), own_.begin() + static_cast<std::ptrdiff_t>(first_own));
  for (Segment& s : segments_) {
    if (!s.message) s.offset -= first_own;
  }
}

void OutputQueue::clear() {
  segments_.clear();
  own_.clear();
  head_ = head_sent_ = pending_ = 0;
  // Keep the buffers for the next burst, unless a burst made them large: an idle client should
  // not hold megabytes.
  if (own_.capacity() > 256 * 1024) std::vector<std::byte>().swap(own_);
  if (segments_.capacity() > 4096) std::vector<Segment>().swap(segments_);
}

}  // namespace mqttd
