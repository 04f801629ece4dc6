#include "broker/packet_framer.hpp"

#include <algorithm>
#include <cstring>

namespace mqttd {

namespace {
// A connection's own read buffer grows by at least this much at a time.
constexpr std::size_t kMinReadChunk = 16 * 1024;
}  // namespace

void PacketFramer::reserve(std::size_t wanted) {
  if (wanted <= capacity_) return;
  // Geometric growth, so that assembling a packet read in small pieces (a WebSocket frame's 4 KiB,
  // a TLS record of 1 byte) copies each byte a bounded number of times, not once per read. Never
  // past the packet's announced size once that is known.
  std::size_t capacity = std::max<std::size_t>(wanted, std::size_t{capacity_} * 2);
  if (needed_ >= wanted) capacity = std::min<std::size_t>(capacity, needed_);
  auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
  if (size_) std::memcpy(grown.get(), buffer_.get(), size_);
  buffer_ = std::move(grown);
  capacity_ = static_cast<std::uint32_t>(capacity);
}

std::span<std::byte> PacketFramer::read_buffer(std::span<std::byte> shared) {
  if (size_ == 0) {
    reading_shared_ = true;
    return shared;
  }
  reading_shared_ = false;
  // The buffer grows with the bytes that arrived (at most doubling), never to the size a packet
  // announces: a client that announces 16 MiB and sends 10 bytes holds a few KiB, not 16 MiB.
  // While the fixed header itself is incomplete (needed_ unknown), read a chunk.
  std::size_t missing = needed_ > size_ ? needed_ - size_ : kMinReadChunk;
  std::size_t want = std::max<std::size_t>(std::min(missing, std::max<std::size_t>(size_, kMinReadChunk)), 1);
  reserve(size_ + want);
  return {buffer_.get() + size_, capacity_ - size_};
}

codec::Bytes PacketFramer::commit_read(std::span<std::byte> shared, std::size_t n) {
  if (reading_shared_) return {shared.data(), n};
  size_ += static_cast<std::uint32_t>(n);
  return {buffer_.get(), size_};
}

codec::Bytes PacketFramer::append(codec::Bytes input) {
  if (size_ == 0) return input;
  reserve(size_ + input.size());
  std::memcpy(buffer_.get() + size_, input.data(), input.size());
  size_ += static_cast<std::uint32_t>(input.size());
  return {buffer_.get(), size_};
}

void PacketFramer::keep(codec::Bytes rest) {
  if (rest.empty()) {
    size_ = 0;
    needed_ = 0;
    // An idle connection holds no read buffer.
    buffer_.reset();
    capacity_ = 0;
    return;
  }
  if (!buffer_ || !holds(rest)) {
    // From the shared buffer or the transport's input: copied in (the buffer is empty then, or
    // its contents were processed).
    size_ = 0;
    if (rest.size() > capacity_) {
      buffer_.reset();
      capacity_ = 0;
      reserve(rest.size());
    }
    std::memcpy(buffer_.get(), rest.data(), rest.size());
  } else if (rest.data() != buffer_.get()) {
    std::memmove(buffer_.get(), rest.data(), rest.size());
  }
  size_ = static_cast<std::uint32_t>(rest.size());
}

}  // namespace mqttd
