// The string and topic checks of codec/utf8.hpp: UTF-8 as MQTT 1.5.4 reads it, topic names and
// filters, shared filters, level counting; their word-at-a-time fast paths against plain
// byte-by-byte readings.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/utf8.hpp"

using namespace mqttd::codec;

TEST_CASE("UTF-8 and topic rules", "[codec]") {
  CHECK(valid_utf8("plain/ascii"));
  CHECK(valid_utf8("caf\xC3\xA9"));
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));
  CHECK_FALSE(valid_utf8(std::string_view("a\0b", 3)));
  CHECK_FALSE(valid_utf8("\xC0\xAF"));          // overlong
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xE2\x82"));          // truncated

  CHECK(valid_topic_name("a/b"));
  CHECK(valid_topic_name("/"));
  CHECK_FALSE(valid_topic_name(""));
  CHECK_FALSE(valid_topic_name("a/+"));
  CHECK_FALSE(valid_topic_name("a/#"));

  for (auto ok : {"#", "+", "a/#", "a/+/b", "+/+", "/#", "a//b", "$SYS/#"}) CHECK(valid_topic_filter(ok));
  for (auto bad : {"", "a#", "a/#/b", "a+", "a/b+", "#/a", "++"}) CHECK_FALSE(valid_topic_filter(bad));

  SharedFilter sf;
  REQUIRE(parse_shared_filter("$share/group/a/+", sf));
  CHECK(sf.group == "group");
  CHECK(sf.filter == "a/+");
  CHECK_FALSE(parse_shared_filter("$share/group", sf));
  CHECK_FALSE(parse_shared_filter("$share//a", sf));
  CHECK_FALSE(parse_shared_filter("$share/g+/a", sf));
  CHECK_FALSE(parse_shared_filter("$share/g/a#", sf));
}

TEST_CASE("more_levels_than counts levels exactly at and around the limit", "[codec]") {
  using mqttd::codec::more_levels_than;
  // Compared with a plain count of '/' + 1, for every topic made of '/' and 'a' up to 10 bytes.
  for (std::size_t limit = 1; limit <= 6; ++limit) {
    for (std::size_t size = 0; size <= 10; ++size) {
      for (unsigned bits = 0; bits < (1u << size); ++bits) {
        std::string topic;
        for (std::size_t i = 0; i < size; ++i) topic += (bits >> i) & 1 ? '/' : 'a';
        std::size_t levels = 1 + static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/'));
        INFO("topic '" << topic << "' limit " << limit);
        REQUIRE(more_levels_than(topic, limit) == (levels > limit));
      }
    }
  }
  CHECK_FALSE(more_levels_than(std::string(127, '/'), 128));  // 128 levels
  CHECK(more_levels_than(std::string(128, '/'), 128));        // 129 levels
}

namespace {

// The plain byte-by-byte reading of MQTT 1.5.4 (UTF-8, no U+0000, no surrogates, shortest form).
bool reference_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
    if (extra == 9 || c == 0) return false;
    if (extra > 0 && i + extra >= s.size()) return false;  // truncated
    std::uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace

TEST_CASE("valid_utf8 and valid_topic_name agree with a byte-by-byte reading at every length and position", "[codec]") {
  using mqttd::codec::valid_topic_name;
  using mqttd::codec::valid_utf8;
  // Every string of up to 3 bytes over bytes that matter, each placed after 0..17 ASCII bytes
  // and followed by 0, 5 or 13 (so that it falls in the sixteen- and eight-byte blocks, across
  // their edges, in the overlapping last block and in the short words of strings under eight).
  const unsigned char alphabet[] = {0x00, 0x01, 'a',  '+',  '#',  '/',  0x7F, 0x80, 0xBF, 0xC0, 0xC2,
                                    0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x90};
  const std::size_t n = sizeof alphabet;
  for (std::size_t prefix = 0; prefix <= 17; ++prefix) {
    for (std::size_t len = 0; len <= 3; ++len) {
      std::size_t combos = 1;
      for (std::size_t k = 0; k < len; ++k) combos *= n;
      for (std::size_t c = 0; c < combos; ++c) {
        std::string s(prefix, 'x');
        for (std::size_t k = 0, v = c; k < len; ++k, v /= n) s += static_cast<char>(alphabet[v % n]);
        for (std::size_t suffix : {std::size_t{0}, std::size_t{5}, std::size_t{13}}) {
          std::string t = s + std::string(suffix, 'y');
          INFO("bytes " << t.size() << " prefix " << prefix << " combo " << c);
          REQUIRE(valid_utf8(t) == reference_utf8(t));
          bool wildcard = t.find_first_of("+#") != std::string::npos;
          REQUIRE(valid_topic_name(t) == (!t.empty() && !wildcard));
        }
      }
    }
  }
}
