#include "broker/inflight_table.hpp"

#include "broker/session.hpp"

namespace mqttd {

// A message, or (packet_id 0) a free slot. `prev`/`next` link the slot into the send-order list
// while in use, `next` into the free list while free.
struct InflightTable::Slot {
  InflightMessage message;
  std::uint64_t cost = 0;  // counted in bytes_
  std::uint16_t prev = 0;
  std::uint16_t next = 0;
};

InflightTable::InflightTable() = default;
InflightTable::~InflightTable() = default;

std::size_t InflightTable::capacity() const { return slots_.capacity(); }

InflightMessage* InflightTable::insert(Delivery&& delivery) {
  std::uint16_t id;
  if (free_head_ != 0) {
    id = free_head_;
    free_head_ = slots_[id - 1].next;
    if (free_head_ == 0) free_tail_ = 0;
  } else if (slots_.size() < kMaxMessages) {
    slots_.emplace_back();
    id = static_cast<std::uint16_t>(slots_.size());
  } else {
    return nullptr;
  }
  Slot& s = slots_[id - 1];
  s.message.packet_id = id;
  s.message.state = InflightMessage::State::AwaitingPuback;
  s.message.delivery = std::move(delivery);
  s.cost = s.message.delivery.message ? s.message.delivery.message->stored_size() : 0;
  bytes_ += s.cost;
  s.prev = newest_;
  s.next = 0;
  if (newest_ != 0) {
    slots_[newest_ - 1].next = id;
  } else {
    oldest_ = id;
  }
  newest_ = id;
  ++size_;
  return &s.message;
}

InflightMessage* InflightTable::find(std::uint16_t packet_id) {
  if (packet_id == 0 || packet_id > slots_.size()) return nullptr;
  Slot& s = slots_[packet_id - 1];
  return s.message.packet_id == 0 ? nullptr : &s.message;
}

void InflightTable::release_message(std::uint16_t packet_id) {
  if (!find(packet_id)) return;
  Slot& s = slots_[packet_id - 1];
  bytes_ -= s.cost;
  s.cost = 0;
  s.message.delivery.message = MessageRef();
}

void InflightTable::erase(std::uint16_t packet_id) {
  if (!find(packet_id)) return;
  bytes_ -= slots_[packet_id - 1].cost;
  if (--size_ == 0) {
    // Empty: identifiers start again from 1, and a vector grown by a burst is given back.
    if (slots_.capacity() > kKeepSlots) {
      std::vector<Slot>().swap(slots_);
    } else {
      slots_.clear();
    }
    oldest_ = newest_ = free_head_ = free_tail_ = 0;
    return;
  }
  Slot& s = slots_[packet_id - 1];
  if (s.prev != 0) {
    slots_[s.prev - 1].next = s.next;
  } else {
    oldest_ = s.next;
  }
  if (s.next != 0) {
    slots_[s.next - 1].prev = s.prev;
  } else {
    newest_ = s.prev;
  }
  s.message = InflightMessage{};  // releases the message now, not when the slot is reused
  s.cost = 0;
  s.prev = 0;
  s.next = 0;
  if (free_tail_ != 0) {
    slots_[free_tail_ - 1].next = packet_id;
  } else {
    free_head_ = packet_id;
  }
  free_tail_ = packet_id;
}

void InflightTable::clear() {
  std::vector<Slot>().swap(slots_);
  size_ = 0;
  bytes_ = 0;
  oldest_ = newest_ = free_head_ = free_tail_ = 0;
}

void InflightTable::visit(void (*fn)(void*, InflightMessage&), void* context) {
  for (std::uint16_t id = oldest_; id != 0;) {
    // Read before the call, which may erase this message (and, if it was the last, the slots).
    std::uint16_t next = slots_[id - 1].next;
    fn(context, slots_[id - 1].message);
    id = next;
  }
}

}  // namespace mqttd
