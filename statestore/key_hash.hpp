// The hash of state store keys: SipHash-1-3 under a key drawn at random when the process starts,
// so that a client cannot choose keys that collide (in the open-addressing table, or onto one
// worker's shard) without seeing the hashes. Used by the memory backend and to pick a key's shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mqttd::statestore {

std::uint64_t key_hash(std::string_view key);

// For hash tables of std::string keys looked up by std::string_view (watch registrations).
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const { return key_hash(key); }
};

}  // namespace mqttd::statestore
