#include "statestore/memory_backend.hpp"

#include <cstring>
#include <new>

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

// One allocation: this header, then the key's bytes, then room for the value.
struct MemoryBackend::Record {
  Entry entry;  // entry.value views the value bytes below
  std::uint32_t key_size = 0;
  std::uint32_t value_capacity = 0;
  static constexpr std::uint32_t kNotFiled = ~std::uint32_t{0};
  std::uint32_t wheel_slot = kNotFiled;  // where in the timer wheel, if it has a time to live
  std::uint32_t wheel_index = 0;

  char* key_data() { return reinterpret_cast<char*>(this + 1); }
  const char* key_data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const { return {key_data(), key_size}; }
  char* value_data() { return key_data() + key_size; }
  void set_value(std::string_view v) {
    if (!v.empty()) std::memcpy(value_data(), v.data(), v.size());
    entry.value = std::string_view(value_data(), v.size());
  }
};

std::uint64_t MemoryBackend::charged(std::size_t key, std::size_t value, const std::optional<Hlc>& fence) {
  return key + value + (fence ? fence->node.size() : 0);
}

std::uint64_t MemoryBackend::charged(const Record& r) {
  return charged(r.key_size, r.entry.value.size(), r.entry.fence);
}

void MemoryBackend::RecordDeleter::operator()(Record* r) const {
  r->~Record();
  ::operator delete (r, std::align_val_t{alignof(Record)});
}

MemoryBackend::RecordPtr MemoryBackend::make_record(std::string_view key, std::size_t value_capacity) {
  void* memory = ::operator new (sizeof(Record) + key.size() + value_capacity, std::align_val_t{alignof(Record)});
  RecordPtr r(new (memory) Record);
  r->key_size = static_cast<std::uint32_t>(key.size());
  r->value_capacity = static_cast<std::uint32_t>(value_capacity);
  if (!key.empty()) std::memcpy(r->key_data(), key.data(), key.size());
  return r;
}

MemoryBackend::MemoryBackend(Quota& quota, TimePoint start)
    : quota_(quota), slots_(16), wheel_start_(start), wheel_(kSlots) {}

MemoryBackend::~MemoryBackend() {
  std::uint64_t bytes = 0;
  for (Slot& s : slots_) {
    if (!s.record) continue;
    bytes += charged(*s.record);
    RecordPtr owned(s.record);
  }
  quota_.release(count_, bytes);
}

std::size_t MemoryBackend::locate(std::string_view key, std::uint64_t h) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.record) return std::string_view::npos;
    if (s.hash == h && s.record->key() == key) return i;
  }
}

void MemoryBackend::insert_slot(std::uint64_t h, Record* r) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = h & mask;
  while (slots_[i].record) i = (i + 1) & mask;
  slots_[i] = Slot{h, r};
}

void MemoryBackend::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  for (const Slot& s : old)
    if (s.record) insert_slot(s.hash, s.record);
}

// Linear probing's deletion: later entries of the same run move back, so lookups never need
// tombstones.
void MemoryBackend::erase_slot(std::size_t i) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (!slots_[j].record) break;
    std::size_t home = slots_[j].hash & mask;
    // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = Slot{};
}

MemoryBackend::Record* MemoryBackend::find_record(std::string_view key) {
  std::size_t i = locate(key, hash(key));
  return i == std::string_view::npos ? nullptr : slots_[i].record;
}

void MemoryBackend::report(std::string_view key, BackendObserver::Change change, const Entry* entry) {
  if (observer_ && !watched_.empty() && watched_.find(key) != watched_.end())
    observer_->key_changed(key, change, entry);
}

void MemoryBackend::remove(std::size_t slot, BackendObserver::Change change) {
  RecordPtr owned(slots_[slot].record);
  unfile(*owned);
  erase_slot(slot);
  --count_;
  if (last_found_ == owned.get()) last_found_ = nullptr;
  quota_.release(1, charged(*owned));
  report(owned->key(), change, nullptr);  // the key is reported after it is gone
}

const Entry* MemoryBackend::find(std::string_view key, TimePoint now) {
  std::size_t i = locate(key, hash(key));
  if (i == std::string_view::npos) return nullptr;
  Record* r = slots_[i].record;
  if (r->entry.expires() && now >= r->entry.expires_at) {
    remove(i, BackendObserver::Change::Expired);
    return nullptr;
  }
  last_found_ = r;
  return &r->entry;
}

KeyValueBackend::Result MemoryBackend::compare_and_set(std::string_view key, const Hlc* expected,
                                                       const EntryWrite& write) {
  std::size_t slot = std::string_view::npos;
  Record* r = last_found_ && last_found_->key() == key ? last_found_ : nullptr;
  std::uint64_t h = 0;
  if (!r) {
    h = hash(key);
    slot = locate(key, h);
    if (slot != std::string_view::npos) r = slots_[slot].record;
  }
  const std::uint64_t charge = charged(key.size(), write.value.size(), write.fence);
  if (!r) {
    if (expected) return Result::Conflict;
    if (!quota_.reserve(1, charge)) return Result::QuotaExceeded;
    if ((count_ + 1) * 2 > slots_.size()) grow();
    RecordPtr fresh = make_record(key, write.value.size());
    r = fresh.release();
    insert_slot(h, r);
    ++count_;
  } else {
    if (!expected || r->entry.version != *expected) return Result::Conflict;
    const std::uint64_t old_charge = charged(*r);
    if (charge > old_charge) {
      if (!quota_.reserve(0, charge - old_charge)) return Result::QuotaExceeded;
    } else {
      quota_.release(0, old_charge - charge);
    }
    const std::size_t size = write.value.size();
    if (size > r->value_capacity || r->value_capacity > 2 * size + 64) {
      // A larger value (with room to grow by half), or a much smaller one (the memory is given
      // back): a new record, the old one freed.
      if (slot == std::string_view::npos) slot = locate(key, h = hash(key));
      RecordPtr bigger = make_record(key, size > r->value_capacity ? size + size / 2 : size);
      bigger->entry = r->entry;
      bigger->wheel_slot = r->wheel_slot;
      bigger->wheel_index = r->wheel_index;
      RecordPtr old(r);
      r = bigger.release();
      slots_[slot].record = r;
      if (r->wheel_slot != Record::kNotFiled) wheel_[r->wheel_slot][r->wheel_index] = r;
      last_found_ = nullptr;
    }
  }
  Entry& e = r->entry;
  r->set_value(write.value);
  e.version = write.version;
  e.fence = write.fence;
  e.expires_at = write.expires_at;
  e.persist = write.persist;
  // Filed again at its new deadline (a renewal), or taken out (no time to live any more).
  unfile(*r);
  if (e.expires()) file(*r);
  report(r->key(), BackendObserver::Change::Set, &e);
  return Result::Done;
}

KeyValueBackend::Result MemoryBackend::compare_and_delete(std::string_view key, const Hlc& expected) {
  std::size_t slot = locate(key, hash(key));
  if (slot == std::string_view::npos || slots_[slot].record->entry.version != expected) return Result::Conflict;
  remove(slot, BackendObserver::Change::Deleted);
  return Result::Done;
}

void MemoryBackend::file(Record& r) {
  auto offset = r.entry.expires_at > wheel_start_ ? r.entry.expires_at - wheel_start_ : TimePoint::duration{};
  // The first slot that starts at or after the deadline, never one already processed, and within
  // one revolution (a later deadline is filed again when this slot comes round).
  std::uint64_t slot = static_cast<std::uint64_t>((offset + kSlotWidth - TimePoint::duration{1}) / kSlotWidth);
  slot = std::max(slot, wheel_next_);
  slot = std::min<std::uint64_t>(slot, wheel_next_ + kSlots - 1);
  auto& list = wheel_[slot % kSlots];
  r.wheel_slot = static_cast<std::uint32_t>(slot % kSlots);
  r.wheel_index = static_cast<std::uint32_t>(list.size());
  list.push_back(&r);
  ++filed_count_;
}

void MemoryBackend::unfile(Record& r) {
  if (r.wheel_slot == Record::kNotFiled) return;
  auto& list = wheel_[r.wheel_slot];
  Record* last = list.back();
  list[r.wheel_index] = last;
  last->wheel_index = r.wheel_index;
  list.pop_back();
  r.wheel_slot = Record::kNotFiled;
  --filed_count_;
}

void MemoryBackend::expire(TimePoint now) {
  if (now < wheel_start_) return;
  std::uint64_t due = static_cast<std::uint64_t>((now - wheel_start_) / kSlotWidth);  // slots that started by now
  std::vector<Record*> items;
  for (; wheel_next_ <= due; ++wheel_next_) {
    auto& slot = wheel_[wheel_next_ % kSlots];
    if (slot.empty()) continue;
    items.clear();
    items.swap(slot);
    filed_count_ -= items.size();
    for (Record* r : items) r->wheel_slot = Record::kNotFiled;  // out of the wheel
    for (Record* item : items) {
      Record& r = *item;
      if (now >= r.entry.expires_at) {
        remove(locate(r.key(), hash(r.key())), BackendObserver::Change::Expired);
      } else {
        ++wheel_next_;  // filed after the slot being processed
        file(r);
        --wheel_next_;
      }
    }
    // Give the memory of a slot that held a burst back.
    if (items.capacity() > 1024) std::vector<Record*>().swap(items);
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
