#include "statestore/hlc.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace mqttd::statestore {

namespace {

// Reads the run of decimal digits at p (at least one) into v; false if there is none or the
// number does not fit in 64 bits. One pass over the text (a request's __ts is parsed on every
// request, and from_chars with find(':') per field was 4% of one).
bool take_digits(const char*& p, const char* end, std::uint64_t& v) {
  const char* start = p;
  v = 0;
  for (; p < end && static_cast<unsigned char>(*p - '0') < 10; ++p) {
    std::uint64_t digit = static_cast<unsigned char>(*p - '0');
    if (p - start < 19) {
      v = v * 10 + digit;  // 19 digits always fit
    } else if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, digit, &v)) {
      return false;
    }
  }
  return p != start;
}

}  // namespace

std::optional<HlcView> HlcView::parse(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  std::uint64_t ms = 0, counter = 0, fraction = 0;
  if (!take_digits(p, end, ms)) return std::nullopt;
  // A fraction of a millisecond: digits '.' digits; the fraction is dropped.
  if (p < end && *p == '.') {
    ++p;
    if (!take_digits(p, end, fraction)) return std::nullopt;
  }
  if (p == end || *p++ != ':') return std::nullopt;
  if (!take_digits(p, end, counter) || counter > kMaxCounter) return std::nullopt;
  if (p == end || *p++ != ':') return std::nullopt;
  std::string_view node(p, static_cast<std::size_t>(end - p));
  if (node.empty() || node.size() > kMaxNodeBytes || node.find(':') != std::string_view::npos) return std::nullopt;
  return HlcView{ms, counter, node};
}

Hlc HlcView::to_hlc() const { return Hlc{ms, counter, std::string(node)}; }

std::optional<Hlc> Hlc::parse(std::string_view text) {
  auto v = HlcView::parse(text);
  if (!v) return std::nullopt;
  return v->to_hlc();
}

namespace {

// `value` in decimal, left-padded with zeros to `width` digits (more digits if it needs them).
char* write_padded(char* out, std::uint64_t value, std::size_t width) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  std::size_t n = static_cast<std::size_t>(end - digits);
  for (; n < width; --width) *out++ = '0';
  std::memcpy(out, digits, n);
  return out + n;
}

}  // namespace

std::size_t Hlc::to_chars(char* out) const {
  char* p = write_padded(out, ms, 15);
  *p++ = ':';
  p = write_padded(p, counter, 5);
  *p++ = ':';
  std::size_t n = std::min(node.size(), kMaxNodeBytes);  // ours are short; parsed ones at most this
  std::memcpy(p, node.data(), n);
  return static_cast<std::size_t>(p + n - out);
}

std::string Hlc::to_string() const {
  char numbers[20 + 1 + 20 + 1];
  char* p = write_padded(numbers, ms, 15);
  *p++ = ':';
  p = write_padded(p, counter, 5);
  *p++ = ':';
  std::string out(numbers, p);
  out += node;
  return out;
}

std::optional<Hlc> HlcClock::tick(std::uint64_t wall_ms, const HlcView* request) {
  Hlc next = now_;
  std::uint64_t other_ms = request ? request->ms : 0;
  std::uint64_t other_counter = request ? request->counter : 0;
  if (wall_ms > now_.ms && wall_ms > other_ms) {
    next.ms = wall_ms;
    next.counter = 0;
  } else if (request && now_.ms == other_ms) {
    next.counter = std::max(now_.counter, other_counter) + 1;
  } else if (now_.ms >= other_ms) {
    next.counter = now_.counter + 1;
  } else {
    next.ms = other_ms;
    next.counter = other_counter + 1;
  }
  // Counters stay within what every SDK reads (a request's counter is at most kMaxCounter, so
  // this cannot overflow): past it, the next millisecond is still newer than both.
  if (next.counter > kMaxCounter) {
    ++next.ms;
    next.counter = 0;
  }
  if (next.ms > wall_ms + kMaxDriftMs) return std::nullopt;
  now_ = std::move(next);
  return now_;
}

}  // namespace mqttd::statestore
