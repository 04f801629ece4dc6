#include "broker/message.hpp"

#include <algorithm>

#include <cstring>
#include <new>

namespace mqttd {

MessageRef Message::create(const MessageFields& f) {
  std::size_t extra = f.topic.size() + f.forward_properties.size() + f.payload.size();
  // Header and bytes in one block; the block is released by MessageRef::release.
  void* block = ::operator new(sizeof(Message) + extra);
  auto* m = ::new (block) Message();
  m->topic_size_ = static_cast<std::uint32_t>(f.topic.size());
  m->properties_size_ = static_cast<std::uint32_t>(f.forward_properties.size());
  m->payload_size_ = static_cast<std::uint32_t>(f.payload.size());
  m->qos_ = f.qos;
  m->retain_ = f.retain;
  m->directed_ = f.directed;
  m->expires_at_ = f.expires_at;
  m->origin_ = f.origin;
  std::byte* out = m->data();
  if (!f.topic.empty()) std::memcpy(out, f.topic.data(), f.topic.size());
  out += f.topic.size();
  if (!f.forward_properties.empty()) std::memcpy(out, f.forward_properties.data(), f.forward_properties.size());
  out += f.forward_properties.size();
  if (!f.payload.empty()) std::memcpy(out, f.payload.data(), f.payload.size());
  return MessageRef(m);
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
  if (p_ && p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    p_->~Message();
    ::operator delete(static_cast<void*>(p_));
  }
  p_ = nullptr;
}

}  // namespace mqttd
