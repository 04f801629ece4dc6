#include "statestore/key_hash.hpp"

#include <cstring>
#include <random>

namespace mqttd::statestore {

namespace {

struct SipKey {
  std::uint64_t k0, k1;
};

const SipKey& process_key() {
  static const SipKey key = [] {
    std::random_device random;
    auto word = [&] { return (std::uint64_t{random()} << 32) ^ random(); };
    return SipKey{word(), word()};
  }();
  return key;
}

inline std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

}  // namespace

// SipHash-1-3 (one compression round, three finalization rounds), as in Rust's and Python's hash
// tables: enough against chosen collisions when the key is secret.
std::uint64_t key_hash(std::string_view data) {
  const SipKey& k = process_key();
  SipState s{k.k0 ^ 0x736f6d6570736575ull, k.k1 ^ 0x646f72616e646f6dull, k.k0 ^ 0x6c7967656e657261ull,
             k.k1 ^ 0x7465646279746573ull};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::size_t blocks = n / 8;
  for (std::size_t i = 0; i < blocks; ++i) {
    std::uint64_t m;
    std::memcpy(&m, p + i * 8, 8);
    s.v3 ^= m;
    s.round();
    s.v0 ^= m;
  }
  std::uint64_t last = std::uint64_t{n & 0xff} << 56;
  const unsigned char* tail = p + blocks * 8;
  for (std::size_t i = 0; i < (n & 7); ++i) last |= std::uint64_t{tail[i]} << (8 * i);
  s.v3 ^= last;
  s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace mqttd::statestore
