// The QoS 1/2 messages sent to one session and not yet acknowledged, with the packet
// identifiers they hold. Packet identifier N is slot N-1 of a vector, so an acknowledgement
// finds its message in O(1) whatever the order acks arrive in (a linear search made reverse
// acks over a 65,535-message window quadratic). Free slots form a FIFO list (the identifier
// freed longest ago is reused first); slots in use form a list in send order, so a reconnect
// resends in the original order. Nothing is allocated per message once the vector has grown to
// the session's window, and the vector is given back when the table empties after a burst.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace mqttd {

struct Delivery;
struct InflightMessage;  // session.hpp

class InflightTable {
 public:
  static constexpr std::size_t kMaxMessages = 65535;  // every packet identifier but 0
  // Slots kept when the table empties; a larger vector (a burst) is freed.
  static constexpr std::size_t kKeepSlots = 64;

  InflightTable();
  ~InflightTable();
  InflightTable(const InflightTable&) = delete;
  InflightTable& operator=(const InflightTable&) = delete;

  // Takes a free packet identifier for `delivery` (moved from only on success) and returns the
  // new message (its packet_id set, state AwaitingPuback), or nullptr when all 65,535 are in
  // flight.
  InflightMessage* insert(Delivery&& delivery);
  // The message holding `packet_id`, or nullptr.
  InflightMessage* find(std::uint16_t packet_id);
  // Frees `packet_id` and its message; nothing if it is not in flight.
  void erase(std::uint16_t packet_id);
  // Drops the message of `packet_id` but keeps the identifier (QoS 2 after PUBREC).
  void release_message(std::uint16_t packet_id);
  // Bytes of the messages held (Message::stored_size), bounded like a session's queue.
  std::uint64_t bytes() const { return bytes_; }
  // Calls fn(InflightMessage&) for each message, oldest sent first. `fn` may erase the message
  // it is given, and no other; it may not insert (a grown vector would move the messages).
  template <typename Fn>
  void for_each_in_send_order(Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    visit([](void* f, InflightMessage& m) { (*static_cast<F*>(f))(m); }, &fn);
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == kMaxMessages; }
  // Drops every message and frees the storage.
  void clear();
  // Slots allocated (for tests: memory is given back).
  std::size_t capacity() const;

 private:
  struct Slot;
  void visit(void (*fn)(void*, InflightMessage&), void* context);

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::uint64_t bytes_ = 0;
  // Lists of slots by packet identifier (0: none).
  std::uint16_t oldest_ = 0, newest_ = 0;        // in use, in send order
  std::uint16_t free_head_ = 0, free_tail_ = 0;  // free, in the order they were freed
};

}  // namespace mqttd
