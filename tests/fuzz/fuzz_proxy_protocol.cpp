// fuzz_proxy_protocol: the PROXY protocol header parser (listener/proxy_protocol.*) as the
// daemon's ProxyHeaderReader uses it: on the first bytes of a connection, called again with a
// longer prefix as more arrive.
//
// Input: the bytes a client sends first, header (if any) and what follows. Besides a crash, UB or
// a read past the input (ASan), a bug is:
//   - a header longer than the input, than the bound of its version, or shorter than the
//     shortest there is ("PROXY UNKNOWN\r\n", 15 bytes; v2's 16 fixed bytes);
//   - a prefix of the input whose verdict is neither NeedMore nor the whole input's verdict (the
//     reader acts on the first verdict that is not NeedMore, so a later one must agree with it);
//   - NeedMore on kMaxHeaderBytes bytes (the reader peeks at no more, and would wait forever);
//   - a verdict that changes when bytes are appended after the header.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "listener/proxy_protocol.hpp"

using namespace mqttd::proxy_protocol;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_proxy_protocol: %s\n", what);
  std::abort();
}

bool same(const Result& a, const Result& b) {
  if (a.status != b.status) return false;
  if (a.status == Status::Invalid) return std::strcmp(a.error, b.error) == 0;
  if (a.status != Status::Header) return true;
  const auto &x = a.header, &y = b.header;
  return a.length == b.length && x.version == y.version && x.local == y.local && x.source == y.source &&
         x.destination == y.destination && x.tls == y.tls && x.authority == y.authority;
}

Result parse_first(const std::uint8_t* data, std::size_t n) {
  // A copy of exactly `n` bytes, so that a read past the prefix is caught by ASan.
  std::vector<std::uint8_t> copy(data, data + n);
  return parse(std::span<const std::uint8_t>(copy.data(), copy.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto whole = parse_first(data, size);
  if (whole.status == Status::Header) {
    if (whole.length > size) fail("a header longer than the input");
    if (whole.header.version == 1 && (whole.length > kMaxV1Bytes || whole.length < 15)) fail("v1 length");
    if (whole.header.version == 2 && (whole.length > kMaxHeaderBytes || whole.length < 16)) fail("v2 length");
    if (whole.header.version != 1 && whole.header.version != 2) fail("no version");
    if (whole.header.local && whole.header.source) fail("LOCAL with addresses");
  }
  if (whole.status == Status::Invalid && whole.error == nullptr) fail("Invalid without a reason");
  if (whole.status == Status::NeedMore && size >= kMaxHeaderBytes) fail("NeedMore on kMaxHeaderBytes bytes");
  // Every prefix up to 256 bytes, then every 61st (parsing is linear; all of them would make each
  // input quadratic), and the ones around the header's end.
  std::size_t last = std::min(size, kMaxHeaderBytes + 1);
  for (std::size_t n = 0; n < last; n += n < 256 ? 1 : 61) {
    auto r = parse_first(data, n);
    if (r.status != Status::NeedMore && !same(r, whole)) fail("a prefix's verdict differs from the whole input's");
  }
  if (whole.status == Status::Header) {
    for (std::size_t n = whole.length > 2 ? whole.length - 2 : 0; n < whole.length; ++n)
      if (parse_first(data, n).status != Status::NeedMore) fail("a verdict before the header's last byte");
    // More bytes after the header change nothing.
    std::vector<std::uint8_t> longer(data, data + whole.length);
    longer.insert(longer.end(), {0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T'});
    if (!same(parse(longer), whole)) fail("bytes after the header changed the verdict");
  }
  return 0;
}
