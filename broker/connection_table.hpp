// A worker's connections by id. An id is a process-wide sequence number shifted left by
// kSlotBits, plus the connection's slot in this table: the slot finds the connection in O(1) and
// the sequence tells it apart from an earlier or later connection in the same slot (a task that
// outlived its connection finds nothing). A slot per connection costs 8 bytes, where a
// hash-table node costs about 40.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace mqttd {

class ClientConnection;

class ConnectionTable {
 public:
  static constexpr unsigned kSlotBits = 28;  // 268 million connections per worker

  // Files `c` and returns its id, made from `sequence` (unique in the process).
  std::uint64_t add(ClientConnection& c, std::uint64_t sequence) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      if (slots_.size() >= (std::uint64_t{1} << kSlotBits))
        throw std::length_error("too many connections on one worker");
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(nullptr);
    }
    slots_[slot] = &c;
    ++size_;
    return (sequence << kSlotBits) | slot;
  }
  void remove(std::uint64_t id) {
    std::uint32_t slot = slot_of(id);
    if (slot >= slots_.size() || !slots_[slot]) return;
    slots_[slot] = nullptr;
    free_.push_back(slot);
    --size_;
  }
  // Null when no connection of this table has that id (any more).
  ClientConnection* find(std::uint64_t id, std::uint64_t (*id_of)(const ClientConnection&)) const {
    std::uint32_t slot = slot_of(id);
    if (slot >= slots_.size()) return nullptr;
    ClientConnection* c = slots_[slot];
    return c && id_of(*c) == id ? c : nullptr;
  }
  std::size_t size() const { return size_; }
  // The connections, in slot order (a copy: `fn` may close them).
  std::vector<ClientConnection*> all() const {
    std::vector<ClientConnection*> out;
    out.reserve(size_);
    for (auto* c : slots_)
      if (c) out.push_back(c);
    return out;
  }

 private:
  static std::uint32_t slot_of(std::uint64_t id) {
    return static_cast<std::uint32_t>(id & ((std::uint64_t{1} << kSlotBits) - 1));
  }
  std::vector<ClientConnection*> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

}  // namespace mqttd
