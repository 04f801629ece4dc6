// The state store's wire forms: HLC text (parse, print, the update rule) and RESP3 (requests,
// answers), with the SDKs' vectors (../shared/reference/statestore-vectors.md), and the fast
// parsers against plain readings of the same rules over many generated texts.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <charconv>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "statestore/engine.hpp"
#include "statestore/hlc.hpp"
#include "statestore/resp3.hpp"

using namespace mqttd::statestore;

TEST_CASE("hlc: parse padded, unpadded and fractional; reject the SDKs' bad forms", "[statestore]") {
  auto a = Hlc::parse("001696374425000:00000:Client1");
  REQUIRE(a);
  CHECK(a->ms == 1696374425000);
  CHECK(a->counter == 0);
  CHECK(a->node == "Client1");
  auto b = Hlc::parse("1696374425000:0:Client1");
  REQUIRE(b);
  CHECK(*a == *b);
  auto c = Hlc::parse("253402300799998.97:00012:4c3cbb9f-4c4e-4b27-9a4f-1d2a3b4c5d6e");
  REQUIRE(c);
  CHECK(c->ms == 253402300799998);
  CHECK(c->counter == 12);
  CHECK(Hlc{0, 0, "00000000-0000-0000-0000-000000000000"}.to_string() ==
        "000000000000000:00000:00000000-0000-0000-0000-000000000000");
  for (const char* bad : {"ts:00012", "ts:00012:", "ts:node", "12:node", "ts:someNonInteger:node", "1:2:3:4", "-1:0:x",
                          "NotValid", "", "1.:0:x", "99999999999999999999999:0:x"})
    CHECK_FALSE(Hlc::parse(bad));
  // Compare: timestamp, counter, node.
  CHECK(Hlc{1, 5, "b"} < Hlc{2, 0, "a"});
  CHECK(Hlc{1, 5, "b"} < Hlc{1, 6, "a"});
  CHECK(Hlc{1, 5, "a"} < Hlc{1, 5, "b"});
}

TEST_CASE("hlc: the SDKs' update rule, always newer than both", "[statestore]") {
  const std::uint64_t now = 1'000'000;
  SECTION("the wall clock ahead of both gives (now, 0)") {
    HlcClock clock("StateStore");
    Hlc req{now - 10, 7, "c"};
    auto v = clock.tick(now, &req);
    CHECK(v->ms == now);
    CHECK(v->counter == 0);
    auto w = clock.tick(now + 5, &req);
    CHECK(w->ms == now + 5);
    CHECK(w->counter == 0);  // lease renewals: later timestamp, same counter and node
  }
  SECTION("a request 30 s ahead: its timestamp, counter + 1") {
    HlcClock clock("StateStore");
    Hlc req{now + 30'000, 3, "c"};
    auto v = clock.tick(now, &req);
    CHECK(v->ms == now + 30'000);
    CHECK(v->counter == 4);
    CHECK(*v > req);
  }
  SECTION("the clock ahead of the wall: its counter + 1") {
    HlcClock clock("StateStore");
    Hlc ahead{now + 30'000, 3, "c"};
    clock.tick(now, &ahead);
    auto v = clock.tick(now);
    CHECK(v->ms == now + 30'000);
    CHECK(v->counter == 5);
  }
  SECTION("equal timestamps: the larger counter + 1; the docs' example") {
    HlcClock clock("StateStore");
    Hlc req{1696374425000, 0, "Client1"};
    auto v = clock.tick(1696374425000, &req);
    CHECK(v->to_string() == "001696374425000:00001:StateStore");
  }
  SECTION("beyond the drift: refused") {
    HlcClock clock("StateStore");
    Hlc req{now + 61'000, 0, "c"};
    CHECK_FALSE(clock.tick(now, &req));
  }
}

TEST_CASE("resp3: the SDKs' request encodings parse; malformed ones do not", "[statestore]") {
  resp3::Arguments args;
  REQUIRE(resp3::parse_request("*3\r\n$3\r\nSET\r\n$7\r\ntestkey\r\n$9\r\ntestvalue\r\n", args));
  CHECK(std::vector<std::string_view>(args.span().begin(), args.span().end()) ==
        std::vector<std::string_view>{"SET", "testkey", "testvalue"});
  REQUIRE(resp3::parse_request("*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$3\r\nNEX\r\n$2\r\nPX\r\n$4\r\n1000\r\n",
                               args));
  CHECK(args.count == 6);
  REQUIRE(resp3::parse_request("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n", args));
  CHECK(args.items[1].empty());
  std::string binary("*2\r\n$3\r\nGET\r\n$3\r\n\x00\xff\r\r\n", 22);
  REQUIRE(resp3::parse_request(binary, args));
  CHECK(args.items[1] == std::string_view("\x00\xff\r", 3));
  for (std::string_view bad :
       {"", "*", "*0\r\n", "*1\r\n", "*-1\r\n", "*99999999999999999999\r\n$3\r\nGET\r\n", "*2\r\n$3\r\nGET\r\n",
        "*2\r\n$3\r\nGET\r\n$7\r\ntestkey", "*2\r\n$3\r\nGET\r\n$7\r\ntestkeyXX\r\n", "*1\r\n$3\r\nGET\r\nextra",
        "*1\r\n+GET\r\n", "*1\r\n$-1\r\n",
        "*9\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n",
        "GET key", "*1\r\n$99999999999999999999\r\nx\r\n"})
    CHECK_FALSE(resp3::parse_request(bad, args));
}

TEST_CASE("resp3: answers byte for byte", "[statestore]") {
  std::string s;
  resp3::append_ok(s);
  resp3::append_integer(s, -1);
  resp3::append_integer(s, 0);
  resp3::append_integer(s, 1);
  resp3::append_blob(s, "hello world");
  resp3::append_blob(s, "");
  resp3::append_null(s);
  resp3::append_error(s, "syntax error");
  CHECK(s == "+OK\r\n:-1\r\n:0\r\n:1\r\n$11\r\nhello world\r\n$0\r\n\r\n$-1\r\n-ERR syntax error\r\n");
  s.clear();
  resp3::append_notify_set(s, "abc");
  resp3::append_notify_delete(s);
  CHECK(s == "*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n$3\r\nabc\r\n*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n");
  CHECK(notification_topic_prefix("client-id1") ==
        "clients/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/636C69656E742D696431/command/notify/");
}

namespace {

// The plain readings: from_chars per field, find() for the separators.
std::optional<std::uint64_t> reference_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<HlcView> reference_hlc(std::string_view text) {
  auto first = text.find(':');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = text.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::string_view ms_text = text.substr(0, first);
  std::string_view counter_text = text.substr(first + 1, second - first - 1);
  std::string_view node = text.substr(second + 1);
  if (node.empty() || node.size() > kMaxNodeBytes || node.find(':') != std::string_view::npos) return std::nullopt;
  if (auto dot = ms_text.find('.'); dot != std::string_view::npos) {
    if (!reference_digits(ms_text.substr(dot + 1))) return std::nullopt;
    ms_text = ms_text.substr(0, dot);
  }
  auto ms = reference_digits(ms_text);
  auto counter = reference_digits(counter_text);
  if (!ms || !counter || *counter > kMaxCounter) return std::nullopt;
  return HlcView{*ms, *counter, node};
}

bool reference_length(std::string_view s, std::size_t& pos, std::size_t& value) {
  std::size_t end = s.find("\r\n", pos);
  if (end == std::string_view::npos || end == pos) return false;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data() + pos, s.data() + end, v);
  if (ec != std::errc() || p != s.data() + end) return false;
  if (v > s.size()) return false;
  value = static_cast<std::size_t>(v);
  pos = end + 2;
  return true;
}

bool reference_request(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  if (s.empty() || s[0] != '*') return false;
  std::size_t pos = 1, count = 0;
  if (!reference_length(s, pos, count) || count == 0 || count > resp3::kMaxArguments) return false;
  for (std::size_t i = 0; i < count; ++i) {
    if (pos >= s.size() || s[pos] != '$') return false;
    ++pos;
    std::size_t length = 0;
    if (!reference_length(s, pos, length)) return false;
    if (s.size() - pos < length + 2) return false;
    if (s[pos + length] != '\r' || s[pos + length + 1] != '\n') return false;
    out.push_back(s.substr(pos, length));
    pos += length + 2;
  }
  return pos == s.size();
}

// Texts near the valid forms: a valid one with a few bytes replaced, inserted or removed, the
// bytes drawn mostly from those the grammar cares about.
std::string mutate(std::string s, std::mt19937& random) {
  static constexpr char kBytes[] = "0123456789:.$*\r\n-+x \0\xff";
  auto byte = [&] { return kBytes[random() % (sizeof kBytes - 1)]; };
  for (unsigned n = random() % 4; n > 0; --n) {
    std::size_t at = s.empty() ? 0 : random() % (s.size() + 1);
    switch (random() % 3) {
      case 0:
        if (at < s.size()) s[at] = byte();
        break;
      case 1:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), byte());
        break;
      default:
        if (at < s.size()) s.erase(at, 1);
    }
  }
  return s;
}

}  // namespace

TEST_CASE("hlc and resp3: the one-pass parsers agree with from_chars and find() on generated texts", "[statestore]") {
  std::mt19937 random(20261205);
  const std::vector<std::string> hlcs = {"001696374425000:00000:Client1", "1696374425000:0:Client1",
                                         "253402300799998.97:00012:node", "18446744073709551615:2147483647:n",
                                         "18446744073709551616:0:n",      "1:2147483648:n",
                                         "0000000000000000000000001:1:n", "1.:0:x"};
  std::size_t accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string text = mutate(hlcs[random() % hlcs.size()], random);
    auto fast = HlcView::parse(text);
    auto reference = reference_hlc(text);
    INFO("text '" << text << "'");
    REQUIRE(fast.has_value() == reference.has_value());
    if (fast) {
      ++accepted;
      REQUIRE(fast->ms == reference->ms);
      REQUIRE(fast->counter == reference->counter);
      REQUIRE(fast->node == reference->node);
    }
  }
  CHECK(accepted > 10000);  // the texts are near enough to valid ones for both outcomes to be tried

  const std::vector<std::string> requests = {"*2\r\n$3\r\nGET\r\n$7\r\ntestkey\r\n",
                                             "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n", "*1\r\n$0\r\n\r\n",
                                             "*10\r\n$1\r\na\r\n"};
  accepted = 0;
  resp3::Arguments args;
  std::vector<std::string_view> expected;
  for (int i = 0; i < 200000; ++i) {
    std::string text = mutate(requests[random() % requests.size()], random);
    bool fast = resp3::parse_request(text, args);
    bool reference = reference_request(text, expected);
    INFO("text '" << text << "'");
    REQUIRE(fast == reference);
    if (fast) {
      ++accepted;
      REQUIRE(std::vector<std::string_view>(args.span().begin(), args.span().end()) == expected);
    }
  }
  CHECK(accepted > 10000);
}

TEST_CASE("hlc: numbers of every length print padded and parse back, as fmt and from_chars do", "[statestore]") {
  std::mt19937_64 random(7);
  std::vector<std::uint64_t> values = {0,
                                       1,
                                       9,
                                       10,
                                       99,
                                       100,
                                       99999,
                                       100000,
                                       2147483647,
                                       999999999999999,
                                       1000000000000000,
                                       10000000000000000000ull,
                                       18446744073709551615ull};
  for (std::uint64_t p = 1; p <= 1'000'000'000'000'000'000ull; p *= 10) {
    values.push_back(p - 1);
    values.push_back(p);
    values.push_back(p + 1);
  }
  for (int i = 0; i < 20000; ++i) values.push_back(random() >> (random() % 64));
  for (std::uint64_t ms : values) {
    std::uint64_t counter = ms % (kMaxCounter + 1);
    Hlc h{ms, counter, "node"};
    std::string expected = fmt::format("{:015}:{:05}:node", ms, counter);
    INFO("ms " << ms);
    REQUIRE(h.to_string() == expected);
    char text[Hlc::kMaxText];
    REQUIRE(std::string_view(text, h.to_chars(text)) == expected);
    // Read back padded, unpadded, and with extra leading zeros.
    for (const std::string& form :
         {expected, fmt::format("{}:{}:node", ms, counter), fmt::format("0000000{}.5:{}:node", ms, counter)}) {
      auto parsed = HlcView::parse(form);
      auto reference = reference_hlc(form);
      REQUIRE(parsed.has_value());
      REQUIRE(reference.has_value());
      CHECK(parsed->ms == ms);
      CHECK(parsed->counter == counter);
    }
  }
  CHECK_FALSE(HlcView::parse("18446744073709551616:0:n"));  // 2^64
  CHECK_FALSE(HlcView::parse("99999999999999999999:0:n"));
  CHECK(HlcView::parse("000000000000000000000000000000018446744073709551615:0:n"));  // leading zeros fit
}
