#include "codec/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace mqttd::codec {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

// Eight bytes at a time: true if all are ASCII and none is zero (the common case of every string
// in every packet, so it is worth not looking at bytes one by one).
inline bool plain_ascii(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return ((v | ((v - kOnes) & ~v)) & kHighBits) == 0;
}

// The last `n` (< 8) bytes at `p` in one word, the other bytes set to `fill`: the eight-byte
// tests then cover a string's tail too, instead of a loop over its last bytes (most strings in
// a packet are shorter than eight bytes, or end with a few).
inline const unsigned char* tail_word(const unsigned char* p, std::size_t n, unsigned char fill,
                                      unsigned char (&word)[8]) {
  std::memset(word, fill, sizeof word);
  std::memcpy(word, p, n);
  return word;
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (end - p >= 8) {
      if (plain_ascii(p)) {
        p += 8;
        continue;
      }
    } else {
      unsigned char word[8];
      if (plain_ascii(tail_word(p, static_cast<std::size_t>(end - p), 0x01, word))) return true;
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

namespace {
// find_first_of("+#") calls memchr once per character; this is on every PUBLISH, so eight bytes
// are looked at together: a byte equal to '+' or '#' becomes zero after the XOR, and the usual
// zero-byte test finds it.
bool has_wildcard(std::string_view s) {
  auto has_zero = [](std::uint64_t v) { return ((v - kOnes) & ~v & kHighBits) != 0; };
  const char* p = s.data();
  const char* end = p + s.size();
  auto candidate = [&](const void* at) {
    std::uint64_t v;
    std::memcpy(&v, at, sizeof v);
    return has_zero(v ^ (kOnes * '+')) || has_zero(v ^ (kOnes * '#'));
  };
  for (; end - p >= 8; p += 8)
    if (candidate(p)) break;
  if (end - p < 8 && p < end) {
    unsigned char word[8];
    if (!candidate(tail_word(reinterpret_cast<const unsigned char*>(p), static_cast<std::size_t>(end - p), 'a', word)))
      return false;
  }
  for (; p < end; ++p)
    if (*p == '+' || *p == '#') return true;
  return false;
}
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
