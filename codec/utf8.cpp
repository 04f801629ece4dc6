#include "codec/utf8.hpp"

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mqttd::codec {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

inline std::uint64_t load8(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Eight bytes at once: true if all are ASCII and none is zero (the common case of every string
// in every packet, so it is worth not looking at bytes one by one).
inline bool plain_ascii(std::uint64_t v) { return ((v | ((v - kOnes) & ~v)) & kHighBits) == 0; }

inline bool has_zero_byte(std::uint64_t v) { return ((v - kOnes) & ~v & kHighBits) != 0; }

inline bool has_wildcard_byte(std::uint64_t v) {
  return has_zero_byte(v ^ (kOnes * '+')) || has_zero_byte(v ^ (kOnes * '#'));
}

// The n (1..7) bytes at p, some of them repeated, as one word made of nothing else: a test of
// "some byte is bad" on the word answers it for the n bytes, without reading past them and
// without a memcpy of variable size (a library call: most strings in a packet are that short,
// and the call was most of their check).
inline std::uint64_t short_word(const unsigned char* p, std::size_t n) {
  if (n >= 4) {
    std::uint32_t head, tail;
    std::memcpy(&head, p, 4);
    std::memcpy(&tail, p + n - 4, 4);
    return head | std::uint64_t{tail} << 32;
  }
  std::uint32_t w = p[0] | std::uint32_t{p[n / 2]} << 8 | std::uint32_t{p[n - 1]} << 16 | std::uint32_t{p[0]} << 24;
  return w | std::uint64_t{w} << 32;
}

// The byte-by-byte reading, from the first word that is not plain ASCII.
bool valid_utf8_from(const unsigned char* p, const unsigned char* end) {
  while (p < end) {
    if (end - p >= 8 && plain_ascii(load8(p))) {
      p += 8;
      continue;
    }
    unsigned c = *p;
    if (c < 0x80) {
      if (c == 0) return false;
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      unsigned cc = p[i];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

// Where the first word holding a byte that fails the test may start (nullptr: no such byte).
// Sixteen bytes at a time with SSE2 (every x86-64 has it), else eight; the last bytes are read as
// the string's last sixteen or eight (overlapping bytes already read) or, under eight, as a
// short_word, so no byte is ever looked at alone on the fast path.
template <typename Test>
inline const unsigned char* first_bad_word(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  if (s.size() < 8) return s.empty() || !Test::bad_word(short_word(p, s.size())) ? nullptr : p;
#if defined(__SSE2__)
  if (s.size() >= 16) {
    for (; end - p >= 16; p += 16)
      if (Test::bad_block(p)) return p;
    return p == end || !Test::bad_block(end - 16) ? nullptr : p;
  }
#endif
  for (; end - p >= 8; p += 8)
    if (Test::bad_word(load8(p))) return p;
  return p == end || !Test::bad_word(load8(end - 8)) ? nullptr : p;
}

#if defined(__SSE2__)
inline __m128i load16(const unsigned char* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
#endif

struct NotPlainAscii {
  static bool bad_word(std::uint64_t v) { return !plain_ascii(v); }
#if defined(__SSE2__)
  static bool bad_block(const unsigned char* p) {
    __m128i v = load16(p);
    return (_mm_movemask_epi8(v) | _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))) != 0;
  }
#endif
};

struct Wildcard {
  static bool bad_word(std::uint64_t v) { return has_wildcard_byte(v); }
#if defined(__SSE2__)
  static bool bad_block(const unsigned char* p) {
    __m128i v = load16(p);
    __m128i hits = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')), _mm_cmpeq_epi8(v, _mm_set1_epi8('#')));
    return _mm_movemask_epi8(hits) != 0;
  }
#endif
};

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* bad = first_bad_word<NotPlainAscii>(s);
  return !bad || valid_utf8_from(bad, reinterpret_cast<const unsigned char*>(s.data()) + s.size());
}

namespace {
// find_first_of("+#") calls memchr once per character; this is on every PUBLISH, so sixteen or
// eight bytes are looked at together (in a word, a byte equal to '+' or '#' becomes zero after
// the XOR, and the usual zero-byte test finds it).
bool has_wildcard(std::string_view s) { return first_bad_word<Wildcard>(s) != nullptr; }
}  // namespace

bool valid_topic_name(std::string_view topic) { return !topic.empty() && !has_wildcard(topic); }

bool more_levels_than(std::string_view topic, std::size_t max_levels) {
  // A topic of n bytes has at most n + 1 levels: most topics are shorter than the limit and need
  // no counting (counting was 2.3% of a state store request).
  if (topic.size() < max_levels) return false;
  std::size_t levels = 1;
  for (const char *p = topic.data(), *end = p + topic.size();
       (p = static_cast<const char*>(std::memchr(p, '/', end - p))) != nullptr; ++p)
    if (++levels > max_levels) return true;
  return false;
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty()) return false;
  std::size_t level_start = 0;
  for (std::size_t i = 0; i <= filter.size(); ++i) {
    if (i < filter.size() && filter[i] != '/') continue;
    std::string_view level = filter.substr(level_start, i - level_start);
    if (level.size() > 1 && has_wildcard(level)) return false;
    if (level == "#" && i != filter.size()) return false;
    level_start = i + 1;
  }
  return true;
}

bool is_shared_filter(std::string_view s) { return s.starts_with("$share/"); }

bool parse_shared_filter(std::string_view s, SharedFilter& out) {
  if (!is_shared_filter(s)) return false;
  std::string_view rest = s.substr(7);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  out.group = rest.substr(0, slash);
  out.filter = rest.substr(slash + 1);
  if (has_wildcard(out.group)) return false;
  return valid_topic_filter(out.filter);
}

}  // namespace mqttd::codec
