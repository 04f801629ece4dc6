// The in-memory backend of one shard: an open-addressing hash table (linear probing, a slot is the
// key's hash and a pointer) whose records hold the entry, the key and the value in one
// allocation, so that a lookup touches the slot array and one record; and a timer wheel that
// expires keys when their time runs out. The wheel is intrusive: a record with a time to live sits
// in exactly one wheel slot and knows where, so a write or a delete moves or removes it at once
// (nothing stale is left behind, whatever a client does). Owned and used by one thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "statestore/backend.hpp"
#include "statestore/key_hash.hpp"

namespace mqttd::statestore {

// The key count and byte bounds over every shard (relaxed atomics touched only when a key is
// created or removed, or its size changes). Bytes are those of keys, values and fencing tokens'
// node ids, and of watch registrations (Engine).
class Quota {
 public:
  Quota(std::uint64_t max_keys, std::uint64_t max_bytes) : max_keys_(max_keys), max_bytes_(max_bytes) {}
  // Takes `keys` keys and `bytes` bytes more; false (and nothing taken) beyond a bound.
  bool reserve(std::uint64_t keys, std::uint64_t bytes);
  void release(std::uint64_t keys, std::uint64_t bytes);
  std::uint64_t keys() const { return keys_.load(std::memory_order_relaxed); }
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  const std::uint64_t max_keys_;
  const std::uint64_t max_bytes_;
  std::atomic<std::uint64_t> keys_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

class MemoryBackend final : public KeyValueBackend {
 public:
  MemoryBackend(Quota& quota, TimePoint start);
  ~MemoryBackend() override;

  const Entry* find(std::string_view key, TimePoint now) override;
  Result compare_and_set(std::string_view key, const Hlc* expected, const EntryWrite& write) override;
  Result compare_and_delete(std::string_view key, const Hlc& expected) override;
  void expire(TimePoint now) override;
  void watch(std::string_view key) override;
  void unwatch(std::string_view key) override;
  void set_observer(BackendObserver* observer) override { observer_ = observer; }
  std::size_t size() const override { return count_; }
  // Records in the timer wheel: exactly the keys with a time to live.
  std::size_t filed() const { return filed_count_; }
  std::size_t capacity() const { return slots_.size(); }

  static constexpr auto kSlotWidth = std::chrono::milliseconds(50);
  static constexpr std::size_t kSlots = 4096;  // 204.8 s; later deadlines are filed again

 private:
  struct Record;
  struct RecordDeleter {
    void operator()(Record* r) const;
  };
  using RecordPtr = std::unique_ptr<Record, RecordDeleter>;
  static RecordPtr make_record(std::string_view key, std::size_t value_capacity);
  // What a key counts against the byte quota: its key, its value and its fencing token's node id.
  static std::uint64_t charged(std::size_t key, std::size_t value, const std::optional<Hlc>& fence);
  static std::uint64_t charged(const Record& r);
  struct Slot {
    std::uint64_t hash = 0;
    Record* record = nullptr;  // owned (released into the table); null: empty
  };

  static std::uint64_t hash(std::string_view key) { return key_hash(key); }
  // The slot holding `key`, or npos.
  std::size_t locate(std::string_view key, std::uint64_t h) const;
  void insert_slot(std::uint64_t h, Record* r);
  void grow();
  void erase_slot(std::size_t i);
  Record* find_record(std::string_view key);
  void file(Record& r);
  void unfile(Record& r);
  void remove(std::size_t slot, BackendObserver::Change change);
  void report(std::string_view key, BackendObserver::Change change, const Entry* entry);

  Quota& quota_;
  std::vector<Slot> slots_;  // a power of two, at most half full
  std::size_t count_ = 0;
  // The record find() last returned: a SET reads the key and then writes it, and the write finds
  // it here without hashing again. Cleared when a record is freed or replaced.
  Record* last_found_ = nullptr;
  std::unordered_map<std::string, std::uint32_t, KeyHash, std::equal_to<>> watched_;
  BackendObserver* observer_ = nullptr;
  TimePoint wheel_start_;
  std::uint64_t wheel_next_ = 0;             // the next slot to process, counted from wheel_start_
  std::vector<std::vector<Record*>> wheel_;  // each record knows its slot and index
  std::size_t filed_count_ = 0;
};

}  // namespace mqttd::statestore
