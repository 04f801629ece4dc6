// The PROXY protocol header parser (listener/proxy_protocol.*): v1 and v2, valid, invalid,
// partial and oversized, every prefix of a stream giving NeedMore or the final verdict.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "listener/proxy_protocol.hpp"

using namespace mqttd::proxy_protocol;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

Result parse_bytes(const Bytes& b) { return parse(std::span<const std::uint8_t>(b.data(), b.size())); }

std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, a, b, c, d};
}

const Bytes kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

void put16(Bytes& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

Bytes tlv(std::uint8_t type, const Bytes& value) {
  Bytes out{type};
  put16(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

// A v2 header: command byte, family byte, then `body` (addresses and TLVs).
Bytes v2(std::uint8_t version_command, std::uint8_t family, const Bytes& body) {
  Bytes out = kSignature;
  out.push_back(version_command);
  out.push_back(family);
  put16(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes inet_body() {  // 192.0.2.10:51000 -> 10.1.2.3:1883
  return {192, 0, 2, 10, 10, 1, 2, 3, 0xC7, 0x38, 0x07, 0x5B};
}

Bytes inet6_body() {  // 2001:db8::1:40000 -> 2001:db8::2:8883
  Bytes out(36, 0);
  out[0] = 0x20, out[1] = 0x01, out[2] = 0x0d, out[3] = 0xb8, out[15] = 1;
  out[16] = 0x20, out[17] = 0x01, out[18] = 0x0d, out[19] = 0xb8, out[31] = 2;
  out[32] = 0x9C, out[33] = 0x40, out[34] = 0x22, out[35] = 0xB3;
  return out;
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Every prefix shorter than the header says NeedMore; the whole stream (header and what
// follows) gives the header's verdict.
void check_prefixes(const Bytes& header, const Bytes& after = bytes("\x10\x0c")) {
  auto stream = concat(header, after);
  auto final = parse_bytes(stream);
  for (std::size_t n = 0; n < header.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    auto r = parse(std::span<const std::uint8_t>(stream.data(), n));
    CHECK((r.status == Status::NeedMore || r.status == final.status));
  }
}

}  // namespace

TEST_CASE("proxy protocol v1: TCP4, TCP6 and UNKNOWN") {
  auto r = parse_bytes(bytes("PROXY TCP4 192.0.2.10 10.1.2.3 51000 1883\r\n\x10\x0c"));
  REQUIRE(r.status == Status::Header);
  CHECK(r.length == 43);
  CHECK(r.header.version == 1);
  REQUIRE(r.header.source);
  CHECK(r.header.source->address == v4(192, 0, 2, 10));
  CHECK(r.header.source->port == 51000);
  CHECK(r.header.destination->address == v4(10, 1, 2, 3));
  CHECK(r.header.destination->port == 1883);
  CHECK_FALSE(r.header.tls);

  r = parse_bytes(bytes("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"));
  REQUIRE(r.status == Status::Header);
  CHECK(r.header.source->address ==
        std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(r.header.source->port == 65535);
  CHECK(r.header.destination->port == 0);

  for (auto unknown : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    INFO(unknown);
    r = parse_bytes(bytes(unknown));
    REQUIRE(r.status == Status::Header);
    CHECK(r.length == std::string(unknown).size());
    CHECK_FALSE(r.header.source);
  }
}

TEST_CASE("proxy protocol v1: the longest header is 107 bytes") {
  // The spec's worst case: UNKNOWN followed by the longest TCP6 fields.
  std::string longest =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  REQUIRE(longest.size() == kMaxV1Bytes);
  auto r = parse_bytes(bytes(longest));
  CHECK(r.status == Status::Header);
  check_prefixes(bytes(longest));
  auto tcp6 = "PROXY TCP6" + longest.substr(13);
  CHECK(parse_bytes(bytes(tcp6)).status == Status::Header);
  // UNKNOWN with its ignored rest, one byte longer than the bound: refused, and as soon as the
  // 107th byte is not the end of the line (the bytes beyond are never needed).
  std::string oversized = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
  REQUIRE(oversized.size() == kMaxV1Bytes + 1);
  CHECK(parse_bytes(bytes(oversized)).status == Status::Invalid);
  CHECK(parse_bytes(bytes(oversized.substr(0, kMaxV1Bytes))).status == Status::Invalid);
  CHECK(parse_bytes(bytes(oversized.substr(0, kMaxV1Bytes - 1))).status == Status::NeedMore);
  CHECK(parse_bytes(bytes("PROXY " + std::string(200, 'A'))).status == Status::Invalid);
}

TEST_CASE("proxy protocol v1: invalid lines") {
  for (auto bad : {
           "PROXY TCP4 192.0.2.10 10.1.2.3 51000 1883\n",      // LF without CR
           "PROXY TCP4 192.0.2.10 10.1.2.3 51000\r\n",         // a port missing
           "PROXY TCP4 192.0.2.10 10.1.2.3 51000 1883 9\r\n",  // a field too many
           "PROXY TCP4  192.0.2.10 10.1.2.3 51000 1883\r\n",   // two spaces
           "PROXY TCP4 192.0.2.10 10.1.2.3 51000 1883 \r\n",   // a trailing space
           "PROXY TCP4 2001:db8::1 10.1.2.3 51000 1883\r\n",   // IPv6 under TCP4
           "PROXY TCP6 192.0.2.10 ::1 51000 1883\r\n",         // IPv4 under TCP6
           "PROXY TCP4 192.0.2.010 10.1.2.3 51000 1883\r\n",   // a leading zero
           "PROXY TCP4 192.0.2.10 10.1.2.3 65536 1883\r\n",    // port out of range
           "PROXY TCP4 192.0.2.10 10.1.2.3 051000 1883\r\n",   // leading zero in a port
           "PROXY TCP4 192.0.2.10 10.1.2.3 -1 1883\r\n",       // a sign
           "PROXY UDP4 192.0.2.10 10.1.2.3 51000 1883\r\n",    // not TCP
           "PROXY TCP4\r\n",                                   // no addresses
           "PROXY \r\n",                                       // nothing
           "PROXY tcp4 192.0.2.10 10.1.2.3 51000 1883\r\n",    // case matters
       }) {
    INFO(bad);
    auto r = parse_bytes(bytes(bad));
    CHECK(r.status == Status::Invalid);
    CHECK(r.error != nullptr);
  }
}

TEST_CASE("proxy protocol: what is not a header is told by its first bytes") {
  CHECK(parse_bytes({}).status == Status::NeedMore);
  CHECK(parse_bytes({0x10, 0x0c}).status == Status::NotHeader);        // MQTT CONNECT
  CHECK(parse_bytes({0x16, 0x03, 0x01}).status == Status::NotHeader);  // TLS ClientHello
  CHECK(parse_bytes(bytes("GET /mqtt HTTP/1.1")).status == Status::NotHeader);
  CHECK(parse_bytes(bytes("P")).status == Status::NeedMore);
  CHECK(parse_bytes(bytes("PROXY")).status == Status::NeedMore);
  CHECK(parse_bytes(bytes("PROXX")).status == Status::NotHeader);
  CHECK(parse_bytes(bytes("PROXYTCP4")).status == Status::NotHeader);
  CHECK(parse_bytes({0x0D}).status == Status::NeedMore);
  CHECK(parse_bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49}).status == Status::NeedMore);
  CHECK(parse_bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B}).status ==
        Status::NotHeader);
  CHECK(parse_bytes({0x0D, 0x0A, 0x0A}).status == Status::NotHeader);
}

TEST_CASE("proxy protocol v2: PROXY over IPv4 and IPv6, what follows left alone") {
  auto header = v2(0x21, 0x11, inet_body());
  auto r = parse_bytes(concat(header, {0x10, 0x0c, 0x00}));
  REQUIRE(r.status == Status::Header);
  CHECK(r.length == 28);
  CHECK(r.header.version == 2);
  CHECK_FALSE(r.header.local);
  CHECK(r.header.source->address == v4(192, 0, 2, 10));
  CHECK(r.header.source->port == 51000);
  CHECK(r.header.destination->address == v4(10, 1, 2, 3));
  CHECK(r.header.destination->port == 1883);
  check_prefixes(header);

  header = v2(0x21, 0x21, inet6_body());
  r = parse_bytes(header);
  REQUIRE(r.status == Status::Header);
  CHECK(r.length == 52);
  CHECK(r.header.source->address ==
        std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(r.header.source->port == 40000);
  CHECK(r.header.destination->port == 8883);
  check_prefixes(header);
}

TEST_CASE("proxy protocol v2: LOCAL, UNSPEC and UNIX keep the connection's own addresses") {
  // LOCAL: whatever the family and block say, nothing is read from them.
  for (auto family : {0x00, 0x11, 0x21, 0xF5}) {
    auto r = parse_bytes(v2(0x20, static_cast<std::uint8_t>(family), family == 0x11 ? inet_body() : Bytes{}));
    REQUIRE(r.status == Status::Header);
    CHECK(r.header.local);
    CHECK_FALSE(r.header.source);
  }
  auto r = parse_bytes(v2(0x21, 0x00, {}));
  REQUIRE(r.status == Status::Header);
  CHECK_FALSE(r.header.local);
  CHECK_FALSE(r.header.source);
  r = parse_bytes(v2(0x21, 0x31, Bytes(216, 'p')));
  REQUIRE(r.status == Status::Header);
  CHECK_FALSE(r.header.source);
}

TEST_CASE("proxy protocol v2: SSL TLV with its sub-TLVs, and the authority") {
  Bytes ssl{0x07, 0, 0, 0, 0};  // SSL, certificate on the connection and in the session, verified
  for (auto sub : {tlv(0x21, bytes("TLSv1.3")), tlv(0x22, bytes("device-17")), tlv(0x23, bytes("TLS_AES_128_GCM")),
                   tlv(0x24, bytes("SHA256")), tlv(0x25, bytes("EC256")), tlv(0x29, bytes("unknown sub-TLV"))})
    ssl = concat(ssl, sub);
  auto body = concat(concat(concat(inet_body(), tlv(0x02, bytes("broker.example"))), tlv(0x20, ssl)),
                     tlv(0x04, Bytes(10, 0)));  // NOOP
  auto header = v2(0x21, 0x11, body);
  auto r = parse_bytes(header);
  REQUIRE(r.status == Status::Header);
  CHECK(r.header.authority == "broker.example");
  REQUIRE(r.header.tls);
  CHECK(r.header.tls->ssl());
  CHECK(r.header.tls->client_certificate());
  CHECK(r.header.tls->certificate_verified());
  CHECK(r.header.tls->version == "TLSv1.3");
  CHECK(r.header.tls->common_name == "device-17");
  CHECK(r.header.tls->cipher == "TLS_AES_128_GCM");
  CHECK(r.header.tls->signature_algorithm == "SHA256");
  CHECK(r.header.tls->key_algorithm == "EC256");
  check_prefixes(header);

  // A certificate that did not verify (verify != 0), and no certificate at all.
  r = parse_bytes(v2(0x21, 0x11, concat(inet_body(), tlv(0x20, {0x03, 0, 0, 0, 1}))));
  REQUIRE(r.header.tls);
  CHECK(r.header.tls->client_certificate());
  CHECK_FALSE(r.header.tls->certificate_verified());
  r = parse_bytes(v2(0x21, 0x11, concat(inet_body(), tlv(0x20, {0x01, 0, 0, 0, 0}))));
  REQUIRE(r.header.tls);
  CHECK_FALSE(r.header.tls->certificate_verified());
}

TEST_CASE("proxy protocol v2: invalid and oversized headers") {
  struct Case {
    const char* what;
    Bytes header;
  };
  Bytes too_long = v2(0x21, 0x11, Bytes(kMaxV2PayloadBytes + 1, 0));
  std::vector<Case> cases = {
      {"version 1 in the v2 format", v2(0x11, 0x11, inet_body())},
      {"command 2", v2(0x22, 0x11, inet_body())},
      {"family 4", v2(0x21, 0x41, inet_body())},
      {"datagram", v2(0x21, 0x12, inet_body())},
      {"unspecified transport over IPv4", v2(0x21, 0x10, inet_body())},
      {"IPv4 block short", v2(0x21, 0x11, Bytes(11, 0))},
      {"IPv6 block short", v2(0x21, 0x21, inet_body())},
      {"UNIX block short", v2(0x21, 0x31, Bytes(100, 0))},
      {"TLV cut short", v2(0x21, 0x11, concat(inet_body(), {0x04, 0x00}))},
      {"TLV longer than the header", v2(0x21, 0x11, concat(inet_body(), {0x04, 0x00, 0x05, 1, 2}))},
      {"SSL TLV without its fixed part", v2(0x21, 0x11, concat(inet_body(), tlv(0x20, {0x01, 0, 0})))},
      {"SSL sub-TLV cut short", v2(0x21, 0x11, concat(inet_body(), tlv(0x20, {0x01, 0, 0, 0, 0, 0x22, 0x00})))},
      {"two SSL TLVs",
       v2(0x21, 0x11, concat(concat(inet_body(), tlv(0x20, {1, 0, 0, 0, 0})), tlv(0x20, {1, 0, 0, 0, 0})))},
      {"larger than the bound", too_long},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto r = parse_bytes(c.header);
    CHECK(r.status == Status::Invalid);
    CHECK(r.error != nullptr);
    check_prefixes(c.header);
  }
  // The announced length alone refuses an oversized header: its bytes are never awaited.
  CHECK(parse_bytes(Bytes(too_long.begin(), too_long.begin() + 16)).status == Status::Invalid);
  Bytes largest = v2(0x21, 0x11, concat(inet_body(), tlv(0x04, Bytes(kMaxV2PayloadBytes - 12 - 3, 0))));
  REQUIRE(largest.size() == kMaxHeaderBytes);
  CHECK(parse_bytes(largest).status == Status::Header);
}

TEST_CASE("proxy protocol: a header split anywhere") {
  // Each piece added to the bytes seen so far, as the daemon's reader peeks at a socket: NeedMore
  // until the last byte of the header, then the header, whatever follows.
  Bytes stream = bytes("PROXY TCP4 192.0.2.10 10.1.2.3 51000 1883\r\n\x10\x0c");
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("first " << cut << " bytes");
    auto r = parse(std::span<const std::uint8_t>(stream.data(), cut));
    CHECK(r.status == (cut < 43 ? Status::NeedMore : Status::Header));
    if (cut >= 43) CHECK(r.length == 43);
  }
}
