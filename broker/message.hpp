// An application message as the broker routes it: decoded once from the publisher's bytes and
// then shared, immutable, by every subscriber on every worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace mqttd {

using Clock = std::chrono::steady_clock;
using Bytes = std::span<const std::byte>;

class MessageRef;

struct MessageFields {
  std::string_view topic;
  Bytes payload;
  // The publisher's MQTT 5 properties that are forwarded unchanged (everything but Topic Alias
  // and Message Expiry Interval, which each receiver gets recomputed), already encoded.
  Bytes forward_properties;
  std::uint8_t qos = 0;
  bool retain = false;
  // Absolute expiry, or the epoch for "never".
  Clock::time_point expires_at{};
  // The session that published it (for No Local); compared by address only, never dereferenced.
  const void* origin = nullptr;
  // Sent to one session by the broker itself (a state store notification): never matched against
  // subscriptions, not checked against the receiver's Subscribe permissions (the state store
  // authorized it when the client registered), and dropped rather than queued while offline.
  bool directed = false;
};

class Message {
 public:
  // One allocation holds the header and the topic, property and payload bytes.
  static MessageRef create(const MessageFields& fields);
  // The same with `properties_size` bytes of properties that write(std::byte*) writes in place
  // (fields.forward_properties is not read): a message whose properties are made for it, a state
  // store answer, is written once rather than encoded elsewhere and copied.
  template <typename WriteProperties>
  static MessageRef create(const MessageFields& fields, std::size_t properties_size, WriteProperties&& write);

  std::string_view topic() const { return {reinterpret_cast<const char*>(data()), topic_size_}; }
  Bytes forward_properties() const { return {data() + topic_size_, properties_size_}; }
  Bytes payload() const { return {data() + topic_size_ + properties_size_, payload_size_}; }
  std::uint8_t qos() const { return qos_; }
  bool retain() const { return retain_; }
  bool directed() const { return directed_; }
  // Bytes this message holds in memory (what queue and retained-store bounds count).
  std::size_t stored_size() const { return sizeof(Message) + topic_size_ + properties_size_ + payload_size_; }
  const void* origin() const { return origin_; }
  bool expires() const { return expires_at_ != Clock::time_point{}; }
  Clock::time_point expires_at() const { return expires_at_; }
  bool expired(Clock::time_point now) const { return expires() && now >= expires_at_; }
  // Seconds left, rounded down (at least 1), for the Message Expiry Interval forwarded to a subscriber.
  std::uint32_t remaining_expiry_seconds(Clock::time_point now) const;

 private:
  friend class MessageRef;
  Message() = default;
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(this + 1); }
  std::byte* data() { return reinterpret_cast<std::byte*>(this + 1); }
  // A message with the fields' topic and payload and room for `properties_size` bytes of
  // properties, which are copied from fields.forward_properties when `copy_properties`.
  static Message* allocate(const MessageFields& fields, std::size_t properties_size, bool copy_properties);

  std::atomic<std::uint32_t> refs_{1};
  std::uint32_t topic_size_ = 0;
  std::uint32_t properties_size_ = 0;
  std::uint32_t payload_size_ = 0;
  std::uint8_t qos_ = 0;
  bool retain_ = false;
  bool directed_ = false;
  Clock::time_point expires_at_{};
  const void* origin_ = nullptr;
};

// Shared ownership of a Message with an intrusive count: one allocation per message, and a
// reference is one pointer wide.
class MessageRef {
 public:
  MessageRef() = default;
  MessageRef(const MessageRef& o) : p_(o.p_) {
    if (p_) p_->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  MessageRef(MessageRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  MessageRef& operator=(MessageRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~MessageRef() { release(); }

  const Message* operator->() const { return p_; }
  const Message& operator*() const { return *p_; }
  const Message* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  friend class Message;
  explicit MessageRef(Message* p) : p_(p) {}
  void release();
  Message* p_ = nullptr;
};

template <typename WriteProperties>
MessageRef Message::create(const MessageFields& fields, std::size_t properties_size, WriteProperties&& write) {
  Message* m = allocate(fields, properties_size, false);
  MessageRef ref(m);  // owned from here, should `write` throw
  write(m->data() + m->topic_size_);
  return ref;
}

}  // namespace mqttd
