// Bounds-checked primitive readers and writers for MQTT's data representations (section 1.5).
#pragma once

#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "codec/types.hpp"

namespace mqttd::codec {

// Reads big-endian integers, length-prefixed strings and binary data, and variable byte
// integers from a view. Every read checks the remaining length; a failed read sets `failed`
// and returns a zero value, so a decoder can read a whole structure and check once.
class Reader {
 public:
  explicit Reader(Bytes data) : data_(data) {}

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return std::to_integer<std::uint8_t>(data_[pos_++]);
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>((std::to_integer<unsigned>(data_[pos_]) << 8) |
                                                 std::to_integer<unsigned>(data_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(data_[pos_ + i]);
    pos_ += 4;
    return v;
  }
  // Variable Byte Integer; at most four bytes, the shortest encoding is not enforced (as the
  // specification only requires the encoder to use the minimum).
  std::uint32_t varint() {
    std::uint32_t value = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (!need(1)) return 0;
      auto b = std::to_integer<std::uint32_t>(data_[pos_++]);
      value |= (b & 0x7F) << shift;
      if ((b & 0x80) == 0) return value;
    }
    failed_ = true;
    return 0;
  }
  Bytes binary() {
    std::uint16_t n = u16();
    if (!need(n)) return {};
    Bytes out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::string_view string() {
    Bytes b = binary();
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  Bytes take(std::size_t n) {
    if (!need(n)) return {};
    Bytes out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  Bytes rest() {
    Bytes out = data_.subspan(pos_);
    pos_ = data_.size();
    return out;
  }

  bool failed() const { return failed_; }
  std::size_t remaining() const { return failed_ ? 0 : data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  bool need(std::size_t n) {
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  Bytes data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

inline std::size_t varint_size(std::uint32_t v) { return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4; }

// Writes into a caller-supplied buffer that is already large enough (sizes are computed first,
// so that the remaining length can be written before the body without a second pass).
class Writer {
 public:
  explicit Writer(std::byte* out) : out_(out) {}
  void u8(std::uint8_t v) { *out_++ = std::byte{v}; }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) u8(static_cast<std::uint8_t>(v >> s));
  }
  void varint(std::uint32_t v) {
    do {
      auto b = static_cast<std::uint8_t>(v & 0x7F);
      v >>= 7;
      if (v) b |= 0x80;
      u8(b);
    } while (v);
  }
  void raw(const void* p, std::size_t n) {
    if (n) std::memcpy(out_, p, n);
    out_ += n;
  }
  void raw(Bytes b) { raw(b.data(), b.size()); }
  void string(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    raw(s.data(), s.size());
  }
  void binary(Bytes b) {
    u16(static_cast<std::uint16_t>(b.size()));
    raw(b);
  }
  std::byte* position() const { return out_; }

 private:
  std::byte* out_;
};

inline Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }
inline std::string_view as_string(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace mqttd::codec
