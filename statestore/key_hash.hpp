// The hash of state store keys: SipHash-1-3 under a key drawn at random when the process starts,
// so that a client cannot choose keys that collide (in the open-addressing table, or onto one
// worker's shard) without seeing the hashes. Used by the memory backend and to pick a key's shard.
#pragma once

#include <cstdint>
#include <string_view>

namespace mqttd::statestore {

std::uint64_t key_hash(std::string_view key);

}  // namespace mqttd::statestore
