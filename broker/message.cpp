#include "broker/message.hpp"

#include <algorithm>

#include <cstring>
#include <new>

namespace mqttd {

Message* Message::allocate(const MessageFields& f, std::size_t properties_size, bool copy_properties) {
  std::size_t extra = f.topic.size() + properties_size + f.payload.size();
  // Header and bytes in one block; the block is released by MessageRef::release.
  void* block = ::operator new(sizeof(Message) + extra);
  auto* m = ::new (block) Message();
  m->topic_size_ = static_cast<std::uint32_t>(f.topic.size());
  m->properties_size_ = static_cast<std::uint32_t>(properties_size);
  m->payload_size_ = static_cast<std::uint32_t>(f.payload.size());
  m->qos_ = f.qos;
  m->retain_ = f.retain;
  m->directed_ = f.directed;
  m->expires_at_ = f.expires_at;
  m->origin_ = f.origin;
  std::byte* out = m->data();
  if (!f.topic.empty()) std::memcpy(out, f.topic.data(), f.topic.size());
  out += f.topic.size();
  if (copy_properties && properties_size > 0) std::memcpy(out, f.forward_properties.data(), properties_size);
  out += properties_size;
  if (!f.payload.empty()) std::memcpy(out, f.payload.data(), f.payload.size());
  return m;
}

MessageRef Message::create(const MessageFields& f) {
  return MessageRef(allocate(f, f.forward_properties.size(), true));
}

std::uint32_t Message::remaining_expiry_seconds(Clock::time_point now) const {
  if (now >= expires_at_) return 0;
  // Rounded down: each worker reads a clock cached at its event-loop turn, so a message created on
  // one worker can look a few milliseconds younger on another, and rounding up would forward more
  // than the publisher gave (or than the broker's cap). At least 1, since it has not expired.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at_ - now).count();
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(left / 1000));
}

void MessageRef::release() {
  // The last reference frees without a locked instruction: no other thread holds one with which
  // to add to the count (an answer sent once and acknowledged, the common case). The acquire load
  // orders the free after the other holders' releases, as the fetch_sub would.
  if (p_ &&
      (p_->refs_.load(std::memory_order_acquire) == 1 || p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)) {
    p_->~Message();
    ::operator delete(static_cast<void*>(p_));
  }
  p_ = nullptr;
}

}  // namespace mqttd
