#include "listener/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace mqttd::proxy_protocol {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV2FixedBytes = 16;

// v2 address families (high nibble of byte 13) and the size of their address block.
constexpr std::uint8_t kAfUnspec = 0, kAfInet = 1, kAfInet6 = 2, kAfUnix = 3;
constexpr std::uint8_t kProtoStream = 1;
constexpr std::size_t kInetBlock = 12, kInet6Block = 36, kUnixBlock = 216;

// v2 TLV types.
constexpr std::uint8_t kTypeAuthority = 0x02;
constexpr std::uint8_t kTypeSsl = 0x20;
constexpr std::uint8_t kSubtypeSslVersion = 0x21, kSubtypeSslCn = 0x22, kSubtypeSslCipher = 0x23,
                       kSubtypeSslSigAlg = 0x24, kSubtypeSslKeyAlg = 0x25;

using Bytes = std::span<const std::uint8_t>;

Result verdict(Status status, const char* error = nullptr) {
  Result r;
  r.status = status;
  r.error = error;
  return r;
}

// Whether the first bytes of `prefix` agree with `signature` (as far as both go).
template <class Signature>
bool agrees(Bytes prefix, const Signature& signature) {
  std::size_t n = std::min(prefix.size(), std::size(signature));
  for (std::size_t i = 0; i < n; ++i)
    if (prefix[i] != static_cast<std::uint8_t>(signature[i])) return false;
  return true;
}

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

std::array<std::uint8_t, 16> mapped_v4(const std::uint8_t* v4) {
  std::array<std::uint8_t, 16> a{};
  a[10] = a[11] = 0xFF;
  std::memcpy(a.data() + 12, v4, 4);
  return a;
}

// ---------------------------------------------------------------- version 1 (text)

// An address token of a v1 line: dotted IPv4 for TCP4, IPv6 text for TCP6 (inet_pton: no
// leading zeros in IPv4, no zone ids).
bool v1_address(std::string_view token, bool ipv6, std::array<std::uint8_t, 16>& out) {
  char text[INET6_ADDRSTRLEN + 1];
  if (token.empty() || token.size() >= sizeof(text)) return false;
  std::memcpy(text, token.data(), token.size());
  text[token.size()] = '\0';
  if (ipv6) return ::inet_pton(AF_INET6, text, out.data()) == 1;
  std::uint8_t v4[4];
  if (::inet_pton(AF_INET, text, v4) != 1) return false;
  out = mapped_v4(v4);
  return true;
}

// A v1 port: decimal 0..65535, no sign, no leading zero.
bool v1_port(std::string_view token, std::uint16_t& out) {
  if (token.empty() || token.size() > 5 || (token.size() > 1 && token[0] == '0')) return false;
  unsigned value = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  out = static_cast<std::uint16_t>(value);
  return true;
}

// The next token of `rest` up to a single space (or the end); false on an empty token.
bool next_token(std::string_view& rest, std::string_view& token, bool last) {
  auto space = rest.find(' ');
  if (last != (space == std::string_view::npos)) return false;
  token = rest.substr(0, space);
  rest = last ? std::string_view() : rest.substr(space + 1);
  return !token.empty();
}

Result parse_v1(Bytes prefix) {
  // The line ends at the first LF, which must follow a CR, within the first 107 bytes.
  std::size_t limit = std::min(prefix.size(), kMaxV1Bytes);
  const auto* begin = prefix.data();
  const auto* lf = std::find(begin, begin + limit, static_cast<std::uint8_t>('\n'));
  if (lf == begin + limit)
    return prefix.size() >= kMaxV1Bytes ? verdict(Status::Invalid, "v1 header without CRLF in its first 107 bytes")
                                        : verdict(Status::NeedMore);
  auto end = static_cast<std::size_t>(lf - begin);
  if (end == 0 || prefix[end - 1] != '\r') return verdict(Status::Invalid, "v1 header: LF without CR");
  std::string_view rest(reinterpret_cast<const char*>(begin) + kV1Prefix.size(), end - 1 - kV1Prefix.size());
  Result r;
  r.status = Status::Header;
  r.length = end + 1;
  r.header.version = 1;
  auto space = rest.find(' ');
  auto protocol = rest.substr(0, space);
  // UNKNOWN: the proxy cannot say (another protocol, or its own connection); the rest of the line
  // is to be ignored, and the connection's own addresses stand.
  if (protocol == "UNKNOWN") return r;
  bool ipv6 = protocol == "TCP6";
  if (!ipv6 && protocol != "TCP4") return verdict(Status::Invalid, "v1 header: protocol is not TCP4, TCP6 or UNKNOWN");
  if (space == std::string_view::npos) return verdict(Status::Invalid, "v1 header: addresses missing");
  rest = rest.substr(space + 1);
  std::string_view src, dst, sport, dport;
  Endpoint source, destination;
  if (!next_token(rest, src, false) || !next_token(rest, dst, false) || !next_token(rest, sport, false) ||
      !next_token(rest, dport, true))
    return verdict(Status::Invalid, "v1 header: expected 'source destination source-port destination-port'");
  if (!v1_address(src, ipv6, source.address) || !v1_address(dst, ipv6, destination.address))
    return verdict(Status::Invalid, ipv6 ? "v1 header: not an IPv6 address" : "v1 header: not an IPv4 address");
  if (!v1_port(sport, source.port) || !v1_port(dport, destination.port))
    return verdict(Status::Invalid, "v1 header: a port is not 0..65535");
  r.header.source = source;
  r.header.destination = destination;
  return r;
}

// ---------------------------------------------------------------- version 2 (binary)

// Walks TLVs (type, 16-bit length, value) that must fill `block` exactly; `on_tlv` returns an
// error text or null.
template <class OnTlv>
const char* walk_tlvs(Bytes block, OnTlv on_tlv) {
  while (!block.empty()) {
    if (block.size() < 3) return "v2 header: a TLV is cut short";
    std::size_t length = be16(block.data() + 1);
    if (block.size() - 3 < length) return "v2 header: a TLV is longer than what is left of the header";
    if (const char* error = on_tlv(block[0], block.subspan(3, length))) return error;
    block = block.subspan(3 + length);
  }
  return nullptr;
}

std::string text_of(Bytes value) { return std::string(reinterpret_cast<const char*>(value.data()), value.size()); }

const char* parse_ssl(Bytes value, TlsInfo& tls) {
  // client (1 byte), verify (4 bytes, big endian), then sub-TLVs.
  if (value.size() < 5) return "v2 header: SSL TLV shorter than its 5 fixed bytes";
  tls.client = value[0];
  tls.verify = static_cast<std::uint32_t>(value[1]) << 24 | static_cast<std::uint32_t>(value[2]) << 16 |
               static_cast<std::uint32_t>(value[3]) << 8 | value[4];
  return walk_tlvs(value.subspan(5), [&](std::uint8_t type, Bytes sub) -> const char* {
    switch (type) {
      case kSubtypeSslVersion:
        tls.version = text_of(sub);
        break;
      case kSubtypeSslCn:
        tls.common_name = text_of(sub);
        break;
      case kSubtypeSslCipher:
        tls.cipher = text_of(sub);
        break;
      case kSubtypeSslSigAlg:
        tls.signature_algorithm = text_of(sub);
        break;
      case kSubtypeSslKeyAlg:
        tls.key_algorithm = text_of(sub);
        break;
      default:
        break;  // other sub-TLVs (client certificate, ...) are not used
    }
    return nullptr;
  });
}

Result parse_v2(Bytes prefix) {
  if (prefix.size() < kV2FixedBytes) return verdict(Status::NeedMore);
  std::uint8_t version_command = prefix[12];
  if ((version_command & 0xF0) != 0x20) return verdict(Status::Invalid, "v2 header: version is not 2");
  std::uint8_t command = version_command & 0x0F;
  if (command > 1) return verdict(Status::Invalid, "v2 header: command is neither LOCAL nor PROXY");
  std::size_t length = be16(prefix.data() + 14);
  if (length > kMaxV2PayloadBytes)
    return verdict(Status::Invalid, "v2 header: longer than the broker's bound (16 + 1024 bytes)");
  if (prefix.size() < kV2FixedBytes + length) return verdict(Status::NeedMore);
  Result r;
  r.status = Status::Header;
  r.length = kV2FixedBytes + length;
  r.header.version = 2;
  // LOCAL: the proxy's own connection. The spec: accept it, use the real endpoints, and discard
  // the rest of the block, family included.
  if (command == 0) {
    r.header.local = true;
    return r;
  }
  std::uint8_t family = prefix[13] >> 4, transport = prefix[13] & 0x0F;
  // AF_UNSPEC: the proxy cannot say who the client is; the connection's own addresses stand.
  if (family == kAfUnspec) return r;
  if (family > kAfUnix) return verdict(Status::Invalid, "v2 header: unknown address family");
  if (transport != kProtoStream) return verdict(Status::Invalid, "v2 header: not a stream (TCP) connection");
  std::size_t block = family == kAfInet ? kInetBlock : family == kAfInet6 ? kInet6Block : kUnixBlock;
  if (length < block) return verdict(Status::Invalid, "v2 header: address block shorter than its family needs");
  const std::uint8_t* a = prefix.data() + kV2FixedBytes;
  if (family == kAfInet) {
    r.header.source = Endpoint{mapped_v4(a), be16(a + 8)};
    r.header.destination = Endpoint{mapped_v4(a + 4), be16(a + 10)};
  } else if (family == kAfInet6) {
    Endpoint source, destination;
    std::memcpy(source.address.data(), a, 16);
    std::memcpy(destination.address.data(), a + 16, 16);
    source.port = be16(a + 32);
    destination.port = be16(a + 34);
    r.header.source = source;
    r.header.destination = destination;
  }  // AF_UNIX: socket paths are no client address; the connection's own stand
  auto& header = r.header;
  const char* error =
      walk_tlvs(prefix.subspan(kV2FixedBytes + block, length - block), [&](std::uint8_t type, Bytes value) {
        if (type == kTypeAuthority) header.authority = text_of(value);
        if (type != kTypeSsl) return static_cast<const char*>(nullptr);  // CRC32C, unique id, NOOP, ...: unused
        if (header.tls) return "v2 header: two SSL TLVs";
        header.tls.emplace();
        return parse_ssl(value, *header.tls);
      });
  if (error) return verdict(Status::Invalid, error);
  return r;
}

}  // namespace

Result parse(std::span<const std::uint8_t> prefix) {
  if (prefix.size() > kMaxHeaderBytes) prefix = prefix.first(kMaxHeaderBytes);
  if (prefix.empty()) return verdict(Status::NeedMore);
  if (agrees(prefix, kV1Prefix)) return prefix.size() < kV1Prefix.size() ? verdict(Status::NeedMore) : parse_v1(prefix);
  if (agrees(prefix, kV2Signature))
    return prefix.size() < kV2Signature.size() ? verdict(Status::NeedMore) : parse_v2(prefix);
  return verdict(Status::NotHeader);
}

}  // namespace mqttd::proxy_protocol
