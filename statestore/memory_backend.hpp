// The in-memory backend of one shard: a hash table of entries, and a timer wheel that expires
// keys when their time runs out (a key is filed once; a renewal moves its deadline and the wheel
// files it again when the old slot comes round). Owned and used by one thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "statestore/backend.hpp"

namespace mqttd::statestore {

// The key count and byte bounds over every shard (relaxed atomics touched only when a key is
// created or removed, or its size changes). Bytes are those of keys and values.
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
  std::size_t size() const override { return entries_.size(); }
  // Keys waiting in the timer wheel (some may be stale: removed or renewed).
  std::size_t filed() const { return filed_count_; }

  static constexpr auto kSlotWidth = std::chrono::milliseconds(50);
  static constexpr std::size_t kSlots = 4096;  // 204.8 s; later deadlines are filed again

 private:
  struct StoredEntry {
    Entry entry;
    bool filed = false;  // in the timer wheel
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, StoredEntry, Hash, std::equal_to<>>;

  void file(const std::string& key, StoredEntry& e);
  void remove(Map::iterator it, BackendObserver::Change change);
  void report(std::string_view key, BackendObserver::Change change, const Entry* entry);

  Quota& quota_;
  Map entries_;
  // The entry find() last returned: a SET reads the key and then writes it, and the write finds
  // it here without hashing again. Entries do not move when the table grows; cleared on erase.
  Map::value_type* last_found_ = nullptr;
  std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> watched_;
  BackendObserver* observer_ = nullptr;
  TimePoint wheel_start_;
  std::uint64_t wheel_next_ = 0;  // the next slot to process, counted from wheel_start_
  std::vector<std::vector<std::string>> wheel_;
  std::size_t filed_count_ = 0;
};

}  // namespace mqttd::statestore
