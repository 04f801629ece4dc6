// What the state store's protocol layer (Engine) needs from where keys live: find, compare-and-
// set on a version, compare-and-delete, expire, and watch. MemoryBackend is the first
// implementation; a durable one (RocksDB) and a clustered one implement the same interface.
// A backend is used by one thread (its shard's worker).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "statestore/hlc.hpp"

namespace mqttd::statestore {

using TimePoint = std::chrono::steady_clock::time_point;

// What a backend holds for a key. The views and pointers a backend returns stay valid until the
// next call on it.
struct Entry {
  std::string_view value;
  Hlc version;               // of the last write
  std::optional<Hlc> fence;  // the fencing token protecting the key, once a write carried one
  TimePoint expires_at{};    // the epoch: never
  bool persist = false;      // the writer asked for durability (aio-persistence, or the policy)
  bool expires() const { return expires_at != TimePoint{}; }
};

// What a write stores; views into the request, copied by the backend.
struct EntryWrite {
  std::string_view value;
  const Hlc& version;
  const std::optional<Hlc>& fence;
  TimePoint expires_at{};
  bool persist = false;
};

// Told of every change to a watched key, whoever made it (on this node or, for a clustered
// backend, elsewhere), on the shard's thread.
class BackendObserver {
 public:
  enum class Change { Set, Deleted, Expired };
  virtual ~BackendObserver() = default;
  // `entry`: the new entry for Set, null otherwise.
  virtual void key_changed(std::string_view key, Change change, const Entry* entry) = 0;
};

class KeyValueBackend {
 public:
  enum class Result { Done, Conflict, QuotaExceeded };

  virtual ~KeyValueBackend() = default;
  // The entry under `key`, null if absent or expired as of `now` (an expired key found here is
  // removed and reported as Expired).
  virtual const Entry* find(std::string_view key, TimePoint now) = 0;
  // Stores `write` if the key's version is still `expected` (null: the key must be absent).
  virtual Result compare_and_set(std::string_view key, const Hlc* expected, const EntryWrite& write) = 0;
  // Removes the key if its version is still `expected`.
  virtual Result compare_and_delete(std::string_view key, const Hlc& expected) = 0;
  // Removes the keys whose time ran out by `now`. Driven by a timer, not a scan.
  virtual void expire(TimePoint now) = 0;
  // Changes to `key` are reported to the observer from now on (counted: one unwatch per watch).
  virtual void watch(std::string_view key) = 0;
  virtual void unwatch(std::string_view key) = 0;
  virtual void set_observer(BackendObserver* observer) = 0;
  virtual std::size_t size() const = 0;
};

}  // namespace mqttd::statestore
