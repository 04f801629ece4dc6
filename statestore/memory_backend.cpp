#include "statestore/memory_backend.hpp"

namespace mqttd::statestore {

bool Quota::reserve(std::uint64_t keys, std::uint64_t bytes) {
  if (keys && keys_.fetch_add(keys, std::memory_order_relaxed) + keys > max_keys_) {
    keys_.fetch_sub(keys, std::memory_order_relaxed);
    return false;
  }
  if (bytes && bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes > max_bytes_) {
    bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    if (keys) keys_.fetch_sub(keys, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Quota::release(std::uint64_t keys, std::uint64_t bytes) {
  if (keys) keys_.fetch_sub(keys, std::memory_order_relaxed);
  if (bytes) bytes_.fetch_sub(bytes, std::memory_order_relaxed);
}

MemoryBackend::MemoryBackend(Quota& quota, TimePoint start) : quota_(quota), wheel_start_(start), wheel_(kSlots) {}

MemoryBackend::~MemoryBackend() {
  std::uint64_t bytes = 0;
  for (auto& [key, e] : entries_) bytes += key.size() + e.entry.value.size();
  quota_.release(entries_.size(), bytes);
}

void MemoryBackend::report(std::string_view key, BackendObserver::Change change, const Entry* entry) {
  if (observer_ && !watched_.empty() && watched_.find(key) != watched_.end())
    observer_->key_changed(key, change, entry);
}

void MemoryBackend::remove(Map::iterator it, BackendObserver::Change change) {
  last_found_ = nullptr;
  quota_.release(1, it->first.size() + it->second.entry.value.size());
  // The key is reported after it is gone; the node's key string is kept for the report.
  auto node = entries_.extract(it);
  report(node.key(), change, nullptr);
}

const Entry* MemoryBackend::find(std::string_view key, TimePoint now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  const Entry& e = it->second.entry;
  if (e.expires() && now >= e.expires_at) {
    remove(it, BackendObserver::Change::Expired);
    return nullptr;
  }
  last_found_ = &*it;
  return &e;
}

KeyValueBackend::Result MemoryBackend::compare_and_set(std::string_view key, const Hlc* expected,
                                                       const EntryWrite& write) {
  Map::value_type* found = last_found_ && last_found_->first == key ? last_found_ : nullptr;
  if (!found) {
    auto it = entries_.find(key);
    if (it != entries_.end()) found = &*it;
  }
  if (!found) {
    if (expected) return Result::Conflict;
    if (!quota_.reserve(1, key.size() + write.value.size())) return Result::QuotaExceeded;
    found = &*entries_.emplace(std::string(key), StoredEntry{}).first;
  } else {
    if (!expected || found->second.entry.version != *expected) return Result::Conflict;
    std::size_t old_size = found->second.entry.value.size();
    if (write.value.size() > old_size) {
      if (!quota_.reserve(0, write.value.size() - old_size)) return Result::QuotaExceeded;
    } else {
      quota_.release(0, old_size - write.value.size());
    }
  }
  StoredEntry& stored = found->second;
  Entry& e = stored.entry;
  e.value.assign(write.value);  // reuses the old value's memory when it fits
  e.version = write.version;
  e.fence = write.fence;
  e.expires_at = write.expires_at;
  e.persist = write.persist;
  if (e.expires() && !stored.filed) file(found->first, stored);
  report(found->first, BackendObserver::Change::Set, &e);
  return Result::Done;
}

KeyValueBackend::Result MemoryBackend::compare_and_delete(std::string_view key, const Hlc& expected) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.entry.version != expected) return Result::Conflict;
  remove(it, BackendObserver::Change::Deleted);
  return Result::Done;
}

void MemoryBackend::file(const std::string& key, StoredEntry& e) {
  auto offset = e.entry.expires_at > wheel_start_ ? e.entry.expires_at - wheel_start_ : TimePoint::duration{};
  // The first slot that starts at or after the deadline, never one already processed, and within
  // one revolution (a later deadline is filed again when this slot comes round).
  std::uint64_t slot = static_cast<std::uint64_t>((offset + kSlotWidth - TimePoint::duration{1}) / kSlotWidth);
  slot = std::max(slot, wheel_next_);
  slot = std::min<std::uint64_t>(slot, wheel_next_ + kSlots - 1);
  wheel_[slot % kSlots].push_back(key);
  e.filed = true;
  ++filed_count_;
}

void MemoryBackend::expire(TimePoint now) {
  if (now < wheel_start_) return;
  std::uint64_t due = static_cast<std::uint64_t>((now - wheel_start_) / kSlotWidth);  // slots that started by now
  std::vector<std::string> keys;
  for (; wheel_next_ <= due; ++wheel_next_) {
    auto& slot = wheel_[wheel_next_ % kSlots];
    if (slot.empty()) continue;
    keys.clear();
    keys.swap(slot);
    filed_count_ -= keys.size();
    for (const std::string& key : keys) {
      auto it = entries_.find(key);
      if (it == entries_.end() || !it->second.filed) continue;
      StoredEntry& stored = it->second;
      stored.filed = false;
      if (!stored.entry.expires()) continue;  // overwritten without a time to live
      if (now >= stored.entry.expires_at) {
        remove(it, BackendObserver::Change::Expired);
      } else {
        ++wheel_next_;  // filed after the slot being processed
        file(it->first, stored);
        --wheel_next_;
      }
    }
    // Give the memory of a slot that held a burst back.
    if (keys.capacity() > 1024) std::vector<std::string>().swap(keys);
  }
}

void MemoryBackend::watch(std::string_view key) {
  auto it = watched_.find(key);
  if (it == watched_.end()) it = watched_.emplace(std::string(key), 0).first;
  ++it->second;
}

void MemoryBackend::unwatch(std::string_view key) {
  auto it = watched_.find(key);
  if (it == watched_.end()) return;
  if (--it->second == 0) watched_.erase(it);
}

}  // namespace mqttd::statestore
