// The HAProxy PROXY protocol header (versions 1 and 2) that a load balancer sends before the
// client's bytes, read from the first bytes of a connection. No sockets, no allocation except for
// the texts of the v2 TLS extensions; bounded: a v1 header is at most 107 bytes, a v2 header at
// most 16 + kMaxV2PayloadBytes. Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace mqttd::proxy_protocol {

inline constexpr std::size_t kMaxV1Bytes = 107;  // "PROXY TCP6 <39> <39> 65535 65535\r\n", the spec's bound
// Addresses and TLVs after v2's 16 fixed bytes. The spec allows 65,535; a load balancer sends the
// addresses (at most 216 bytes, AF_UNIX) and a few TLVs (TLS version, CN, cipher, SNI, a unique
// id of at most 128 bytes): 1 KiB leaves room for all of them, and a larger header is refused
// rather than buffered.
inline constexpr std::size_t kMaxV2PayloadBytes = 1024;
inline constexpr std::size_t kMaxHeaderBytes = 16 + kMaxV2PayloadBytes;  // the longer of the two

// An address and port; IPv4 as an IPv4-mapped IPv6 address.
struct Endpoint {
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// What a TLS-terminating load balancer says about the client's TLS session (v2 PP2_TYPE_SSL and
// its sub-TLVs). The texts are as the proxy sent them: not checked, not printable for sure.
struct TlsInfo {
  static constexpr std::uint8_t kClientSsl = 0x01;       // PP2_CLIENT_SSL
  static constexpr std::uint8_t kClientCertConn = 0x02;  // PP2_CLIENT_CERT_CONN: a certificate on this connection
  static constexpr std::uint8_t kClientCertSess = 0x04;  // PP2_CLIENT_CERT_SESS: one in the (resumed) session
  std::uint8_t client = 0;
  std::uint32_t verify = 0;  // 0: the client presented a certificate and it verified
  std::string version;       // PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3"
  std::string common_name;   // PP2_SUBTYPE_SSL_CN: the client certificate's subject CN
  std::string cipher;        // PP2_SUBTYPE_SSL_CIPHER
  std::string signature_algorithm;
  std::string key_algorithm;
  bool ssl() const { return client & kClientSsl; }
  bool client_certificate() const { return client & (kClientCertConn | kClientCertSess); }
  bool certificate_verified() const { return client_certificate() && verify == 0; }
  bool operator==(const TlsInfo&) const = default;
};

struct Header {
  int version = 0;  // 1 or 2
  // v2 LOCAL: the proxy's own connection (a health check); addresses are not given.
  bool local = false;
  // The client's source and the address it connected to, when the header gives them (v1 TCP4 and
  // TCP6, v2 PROXY over IPv4 or IPv6). Absent for v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC and AF_UNIX:
  // the connection's own addresses stand, as the spec says.
  std::optional<Endpoint> source;
  std::optional<Endpoint> destination;
  std::optional<TlsInfo> tls;
  std::string authority;  // v2 PP2_TYPE_AUTHORITY (the client's SNI), empty if none
};

enum class Status {
  NeedMore,   // the bytes so far are (the start of) a header, or could be: wait for more
  Header,     // a complete, valid header of `length` bytes
  NotHeader,  // the stream does not start with a PROXY protocol signature
  Invalid,    // it starts with a signature but is not a valid header (or is larger than the bounds)
};

struct Result {
  Status status = Status::NeedMore;
  std::size_t length = 0;       // Header: the bytes the header takes at the start of the stream
  Header header;                // Header
  const char* error = nullptr;  // Invalid: why, a constant text for log lines
};

// Reads a header at the start of `prefix`: the first bytes received on a connection, however many
// have arrived (none included). The verdict depends only on those bytes, and once it is not
// NeedMore it is the same for every longer prefix of the same stream: a caller that gets NeedMore
// calls again with the longer prefix when more bytes arrive. Never reads more than
// kMaxHeaderBytes of `prefix` (a prefix that long always has a verdict) and never past the
// header, so the bytes after it belong to whatever follows (TLS, HTTP, MQTT).
// The signature alone decides NotHeader: v1 starts with "PROXY ", v2 with the 12 bytes
// "\r\n\r\n\0\r\nQUIT\n"; MQTT (0x10), TLS (0x16) and HTTP ("GET") differ at the first byte.
Result parse(std::span<const std::uint8_t> prefix);

}  // namespace mqttd::proxy_protocol
