// Inline part of decode.hpp: walking a validated property block.
#pragma once

#include "codec/wire.hpp"

namespace mqttd::codec {

enum class PropertyKind : std::uint8_t { Byte, TwoByte, FourByte, Varint, String, Binary, Pair, Invalid };

PropertyKind property_kind(std::uint8_t id);

template <typename Fn>
void for_each_raw_property(Bytes block, Fn&& fn) {
  Reader r(block);
  while (!r.at_end() && !r.failed()) {
    std::size_t start = block.size() - r.remaining();
    auto id = r.u8();
    switch (property_kind(id)) {
      case PropertyKind::Byte:
        r.u8();
        break;
      case PropertyKind::TwoByte:
        r.u16();
        break;
      case PropertyKind::FourByte:
        r.u32();
        break;
      case PropertyKind::Varint:
        r.varint();
        break;
      case PropertyKind::String:
      case PropertyKind::Binary:
        r.binary();
        break;
      case PropertyKind::Pair:
        r.binary();
        r.binary();
        break;
      case PropertyKind::Invalid:
        return;
    }
    if (r.failed()) return;
    std::size_t end = block.size() - r.remaining();
    fn(static_cast<PropertyId>(id), block.subspan(start, end - start));
  }
}

}  // namespace mqttd::codec
