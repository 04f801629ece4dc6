#include "statestore/hlc.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace mqttd::statestore {

namespace {

constexpr std::uint64_t kPowersOf10[] = {1,
                                         10,
                                         100,
                                         1'000,
                                         10'000,
                                         100'000,
                                         1'000'000,
                                         10'000'000,
                                         100'000'000,
                                         1'000'000'000,
                                         10'000'000'000,
                                         100'000'000'000,
                                         1'000'000'000'000,
                                         10'000'000'000'000,
                                         100'000'000'000'000,
                                         1'000'000'000'000'000,
                                         10'000'000'000'000'000,
                                         100'000'000'000'000'000,
                                         1'000'000'000'000'000'000,
                                         10'000'000'000'000'000'000ull};

constexpr std::uint64_t kZeros = 0x3030303030303030ull;  // eight '0'

// A non-zero byte for each byte of `word` that is not an ASCII digit. Exact up to the first such
// byte: adding 6 carries out of a byte only when it is not a digit, into later bytes.
inline std::uint64_t non_digit_bytes(std::uint64_t word) {
  constexpr std::uint64_t kHigh = 0xF0F0F0F0F0F0F0F0ull;
  return ((word & kHigh) ^ kZeros) | (((word + 0x0606060606060606ull) & kHigh) ^ kZeros);
}

// The value of eight ASCII digits (a little-endian load: the first byte is the most significant
// digit). From simdjson's parse_eight_digits_unrolled.
inline std::uint64_t eight_digits_value(std::uint64_t word) {
  word -= kZeros;
  word = word * 10 + (word >> 8);  // pairs of digits
  return (((word & 0x000000FF000000FFull) * 0x000F424000000064ull) +
          (((word >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >>
         32;
}

// Reads the run of decimal digits at p (at least one) into v; false if there is none or the
// number does not fit in 64 bits. Eight bytes at a time: a word's leading digits are found with
// one test and read with one multiply-and-shift (a request's __ts is parsed on every request;
// from_chars with find(':') per field was 4% of one, a loop per digit still 5%).
bool take_digits(const char*& p, const char* end, std::uint64_t& v) {
  const char* start = p;
  v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    // While the digits read and the next eight fit in 19, which always fit in 64 bits.
    while (end - p >= 8 && p - start <= 11) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      const std::uint64_t others = non_digit_bytes(word);
      if (others == 0) {
        v = v * 100'000'000 + eight_digits_value(word);
        p += 8;
        continue;
      }
      const unsigned k = static_cast<unsigned>(std::countr_zero(others)) / 8;  // digits before the first other byte
      if (k == 0) return p != start;
      // The k digits moved to the word's last bytes, '0' before them.
      v = v * kPowersOf10[k] + eight_digits_value((word << (64 - 8 * k)) | (kZeros >> (8 * k)));
      p += k;
      return true;
    }
  }
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

constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// `value` in decimal, left-padded with zeros to `width` digits (more digits if it needs them),
// written from its last digit, two at a time, where it ends (to_chars and a copy of a variable
// size were 2% of a request).
char* write_padded(char* out, std::uint64_t value, std::size_t width) {
  std::size_t digits = width;  // the common case: the value fits the width
  if (width == 0 || width >= 20 || value >= kPowersOf10[width]) {
    digits = 1;
    while (digits < 20 && value >= kPowersOf10[digits]) ++digits;
  }
  char* const end = out + std::max(digits, width);
  char* p = end;
  for (; value >= 100; value /= 100) {
    p -= 2;
    std::memcpy(p, kDigitPairs + 2 * (value % 100), 2);
  }
  if (value >= 10) {
    p -= 2;
    std::memcpy(p, kDigitPairs + 2 * value, 2);
  } else {
    *--p = static_cast<char>('0' + value);
  }
  // The zeros before: eight at a time, as fixed-size copies (a loop of single bytes becomes a
  // call to memset).
  while (p - out >= 8) {
    p -= 8;
    std::memcpy(p, &kZeros, 8);
  }
  if (p - out >= 4) {
    p -= 4;
    std::memcpy(p, &kZeros, 4);
  }
  while (p > out) *--p = '0';  // at most three
  return end;
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
