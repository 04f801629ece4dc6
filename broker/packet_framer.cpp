#include "broker/packet_framer.hpp"

#include <algorithm>
#include <cstring>

namespace mqttd {

namespace {
// A connection's own read buffer grows by at least this much at a time.
constexpr std::size_t kMinReadChunk = 16 * 1024;
}  // namespace

std::span<std::byte> PacketFramer::read_buffer(std::span<std::byte> shared) {
  if (partial_size_ == 0) {
    reading_shared_ = true;
    return shared;
  }
  reading_shared_ = false;
  // The buffer grows with the bytes that arrived (at most doubling), never to the size a packet
  // announces: a client that announces 16 MiB and sends 10 bytes holds a few KiB, not 16 MiB.
  // While the fixed header itself is incomplete (needed_ unknown), read a chunk.
  std::size_t missing = needed_ > partial_size_ ? needed_ - partial_size_ : kMinReadChunk;
  std::size_t want = std::max<std::size_t>(std::min(missing, std::max(partial_size_, kMinReadChunk)), 1);
  if (partial_.size() < partial_size_ + want) partial_.resize(partial_size_ + want);
  return {partial_.data() + partial_size_, partial_.size() - partial_size_};
}

codec::Bytes PacketFramer::commit_read(std::span<std::byte> shared, std::size_t n) {
  if (reading_shared_) return {shared.data(), n};
  partial_size_ += n;
  return {partial_.data(), partial_size_};
}

codec::Bytes PacketFramer::append(codec::Bytes input) {
  if (partial_size_ == 0) return input;
  if (partial_.size() < partial_size_ + input.size()) partial_.resize(partial_size_ + input.size());
  std::memcpy(partial_.data() + partial_size_, input.data(), input.size());
  partial_size_ += input.size();
  return {partial_.data(), partial_size_};
}

void PacketFramer::keep(codec::Bytes rest) {
  if (rest.empty()) {
    partial_size_ = 0;
    needed_ = 0;
    // An idle connection holds no read buffer.
    if (!partial_.empty()) std::vector<std::byte>().swap(partial_);
    return;
  }
  if (partial_.empty() || rest.data() < partial_.data() || rest.data() >= partial_.data() + partial_.size()) {
    partial_.assign(rest.begin(), rest.end());
  } else if (rest.data() != partial_.data()) {
    std::memmove(partial_.data(), rest.data(), rest.size());
  }
  partial_size_ = rest.size();
}

}  // namespace mqttd
