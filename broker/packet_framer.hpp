// The read side of one connection's byte stream: where the next read goes, and the incomplete
// packet kept between reads. An idle connection holds no buffer: while no packet is partial,
// reads go to the host's shared buffer and are processed there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "codec/types.hpp"

namespace mqttd {

class PacketFramer {
 public:
  // Where the transport should read next: `shared` while no partial packet is pending, else the
  // tail of this framer's own buffer for the rest of the packet.
  std::span<std::byte> read_buffer(std::span<std::byte> shared);
  // `n` bytes were read into the span read_buffer() returned: the bytes to process (a packet
  // partly kept from before included).
  codec::Bytes commit_read(std::span<std::byte> shared, std::size_t n);
  // Bytes from a transport that frames its own reads (WebSocket, TLS): the bytes to process.
  codec::Bytes append(codec::Bytes input);
  // Keeps `rest`, what processing left unprocessed (it may lie in the shared buffer, the
  // input or this framer's buffer), for the next read.
  void keep(codec::Bytes rest);
  // The bytes kept (processing was paused, or a packet is incomplete).
  codec::Bytes pending() const { return {buffer_.get(), size_}; }
  bool has_pending() const { return size_ != 0; }
  std::size_t capacity() const { return capacity_; }
  // The size of the packet being assembled, once its fixed header is known (0: not known), so
  // that the buffer grows toward it.
  void expect(std::size_t total) { needed_ = static_cast<std::uint32_t>(total); }

 private:
  // Grows the buffer to at least `wanted` bytes, keeping what it holds.
  void reserve(std::size_t wanted);
  bool holds(codec::Bytes data) const {
    return data.data() >= buffer_.get() && data.data() < buffer_.get() + capacity_;
  }

  // An incomplete packet, only while one is pending. Sizes fit 32 bits: a packet is at most
  // 256 MiB (the MQTT limit), and they keep an idle connection small.
  std::unique_ptr<std::byte[]> buffer_;
  std::uint32_t capacity_ = 0;
  std::uint32_t size_ = 0;
  std::uint32_t needed_ = 0;
  bool reading_shared_ = false;
};

}  // namespace mqttd
