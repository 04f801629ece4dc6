// Hybrid logical clocks as the Azure IoT Operations SDKs write them: "<ms>:<counter>:<node>".
// Versions of keys, request timestamps (__ts) and fencing tokens (__ft) are all HLCs.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqttd::statestore {

struct Hlc;

// An HLC read from a request without copying its node id (a request's __ts is only compared).
struct HlcView {
  std::uint64_t ms = 0;
  std::uint64_t counter = 0;
  std::string_view node;
  // The rules of Hlc::parse.
  static std::optional<HlcView> parse(std::string_view text);
  Hlc to_hlc() const;
};

struct Hlc {
  std::uint64_t ms = 0;       // wall clock, milliseconds since the Unix epoch
  std::uint64_t counter = 0;  // orders events within one millisecond
  std::string node;           // who issued it; never contains ':'

  // Timestamp, then counter, then node id by byte order (as the SDKs compare).
  std::strong_ordering operator<=>(const Hlc& o) const {
    if (auto c = ms <=> o.ms; c != 0) return c;
    if (auto c = counter <=> o.counter; c != 0) return c;
    return node.compare(o.node) <=> 0;
  }
  bool operator==(const Hlc& o) const = default;

  // Exactly three ':'-separated parts; padded ("001696374425000:00000:x") or not
  // ("1696374425000:0:x"); a fractional millisecond ("253402300799998.97", .NET at extreme
  // dates) is accepted and truncated; the node may not be empty. The counter is at most
  // kMaxCounter (the .NET SDK reads it as an int32) and the node at most kMaxNodeBytes (it is
  // stored with a fenced key). Anything else: nullopt.
  static std::optional<Hlc> parse(std::string_view text);
  // "%015d:%05d:%s", as the SDKs write.
  std::string to_string() const;
  // The same text into `out` (kMaxText bytes at least; a node id is cut at kMaxNodeBytes);
  // returns its length.
  static constexpr std::size_t kMaxText = 20 + 1 + 20 + 1 + 256;
  std::size_t to_chars(char* out) const;
  HlcView view() const { return {ms, counter, node}; }
};

// How far ahead of the broker's clock a client's timestamp may be (the SDKs' default drift).
inline constexpr std::uint64_t kMaxDriftMs = 60'000;
inline constexpr std::uint64_t kMaxCounter = 2'147'483'647;
inline constexpr std::size_t kMaxNodeBytes = 256;

// The clock of one shard. update() is the SDKs' rule, so a version it returns is newer than
// both the clock's previous value and the request's timestamp.
class HlcClock {
 public:
  explicit HlcClock(std::string node) { now_.node = std::move(node); }

  // The next version for an event caused by a request stamped `request` (or by nothing), at wall
  // time `wall_ms`: the wall clock when it is ahead of both, else the later of the two with its
  // counter + 1; a counter past kMaxCounter moves to the next millisecond instead. Nullopt if
  // the result would be more than kMaxDriftMs ahead of the wall clock (the caller refuses
  // timestamps that far ahead first).
  std::optional<Hlc> tick(std::uint64_t wall_ms, const HlcView* request = nullptr);
  std::optional<Hlc> tick(std::uint64_t wall_ms, const Hlc* request) {
    HlcView v;
    if (request) v = request->view();
    return tick(wall_ms, request ? &v : nullptr);
  }
  const Hlc& last() const { return now_; }

 private:
  Hlc now_;
};

}  // namespace mqttd::statestore
