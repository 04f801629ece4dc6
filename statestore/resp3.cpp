#include "statestore/resp3.hpp"

#include <charconv>

namespace mqttd::statestore::resp3 {

namespace {

// Reads "<digits>\r\n" at `pos` (after the type byte); false on a sign, no digit, no CRLF, or a
// length longer than the whole payload (which cannot be right, and keeps the number small).
// Digit by digit: lengths are a few digits, and find("\r\n") with from_chars cost a library
// call each.
bool read_length(std::string_view s, std::size_t& pos, std::size_t& value) {
  std::size_t i = pos;
  std::uint64_t v = 0;
  for (; i < s.size() && static_cast<unsigned char>(s[i] - '0') < 10; ++i) {
    v = v * 10 + static_cast<unsigned char>(s[i] - '0');
    if (v > s.size()) return false;
  }
  if (i == pos || s.size() - i < 2 || s[i] != '\r' || s[i + 1] != '\n') return false;
  value = static_cast<std::size_t>(v);
  pos = i + 2;
  return true;
}

}  // namespace

bool parse_request(std::string_view s, Arguments& arguments) {
  arguments.count = 0;
  std::size_t pos = 0;
  if (s.empty() || s[0] != '*') return false;
  pos = 1;
  std::size_t count = 0;
  if (!read_length(s, pos, count) || count == 0 || count > kMaxArguments) return false;
  for (std::size_t i = 0; i < count; ++i) {
    if (pos >= s.size() || s[pos] != '$') return false;
    ++pos;
    std::size_t length = 0;
    if (!read_length(s, pos, length)) return false;
    if (s.size() - pos < length + 2) return false;
    if (s[pos + length] != '\r' || s[pos + length + 1] != '\n') return false;
    arguments.items[arguments.count++] = s.substr(pos, length);
    pos += length + 2;
  }
  return pos == s.size();
}

void append_ok(std::string& out) { out += "+OK\r\n"; }

void append_integer(std::string& out, std::int64_t n) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out += ':';
  out.append(buf, p);
  out += "\r\n";
}

void append_blob(std::string& out, std::string_view value) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, value.size());
  out += '$';
  out.append(buf, p);
  out += "\r\n";
  out += value;
  out += "\r\n";
}

void append_null(std::string& out) { out += "$-1\r\n"; }

void append_error(std::string& out, std::string_view text) {
  out += "-ERR ";
  out += text;
  out += "\r\n";
}

void append_notify_set(std::string& out, std::string_view value) {
  out += "*4\r\n$6\r\nNOTIFY\r\n$3\r\nSET\r\n$5\r\nVALUE\r\n";
  append_blob(out, value);
}

void append_notify_delete(std::string& out) { out += "*2\r\n$6\r\nNOTIFY\r\n$6\r\nDELETE\r\n"; }

void append_upper_hex(std::string& out, std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
}

}  // namespace mqttd::statestore::resp3
