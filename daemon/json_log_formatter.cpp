#include "daemon/json_log_formatter.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace mqttd {
namespace {

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it does not start with one.
std::size_t utf8_sequence(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto continuation = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  unsigned char b = byte(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return continuation(1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    unsigned char b1 = byte(1);
    if (b == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b == 0xED && b1 > 0x9F) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    unsigned char b1 = byte(1);
    if (b == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append(spdlog::memory_buf_t& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

// "2024-05-01T12:00:00.123456Z", as the text form's %Y-%m-%dT%H:%M:%S.%fZ in UTC.
void append_time(spdlog::log_clock::time_point when, spdlog::memory_buf_t& out) {
  auto since_epoch = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch());
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (since_epoch - seconds).count());
}

// The name in a message that starts with `event=<name>` ([a-z0-9_]+, then a space or the end).
std::string_view event_name(std::string_view message) {
  constexpr std::string_view kPrefix = "event=";
  if (!message.starts_with(kPrefix)) return {};
  std::size_t end = kPrefix.size();
  while (end < message.size() && ((message[end] >= 'a' && message[end] <= 'z') ||
                                  (message[end] >= '0' && message[end] <= '9') || message[end] == '_'))
    ++end;
  if (end == kPrefix.size() || (end < message.size() && message[end] != ' ')) return {};
  return message.substr(kPrefix.size(), end - kPrefix.size());
}

}  // namespace

void append_json_string(std::string_view text, spdlog::memory_buf_t& out) {
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = utf8_sequence(text.substr(i));
    if (n == 0) {
      append(out, "\\ufffd");
      ++i;
      continue;
    }
    if (n == 1) {
      switch (c) {
        case '"':
          append(out, "\\\"");
          break;
        case '\\':
          append(out, "\\\\");
          break;
        case '\n':
          append(out, "\\n");
          break;
        case '\r':
          append(out, "\\r");
          break;
        case '\t':
          append(out, "\\t");
          break;
        default:
          if (c < 0x20 || c == 0x7F)
            fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
          else
            out.push_back(static_cast<char>(c));
      }
    } else if (n == 3 && c == 0xE2 && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(text[i + 2]) == 0xA8 || static_cast<unsigned char>(text[i + 2]) == 0xA9)) {
      append(out, static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
    } else {
      append(out, text.substr(i, n));
    }
    i += n;
  }
  out.push_back('"');
}

std::string json_string(std::string_view text) {
  spdlog::memory_buf_t out;
  append_json_string(text, out);
  return fmt::to_string(out);
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string_view message(msg.payload.data(), msg.payload.size());
  append(dest, "{\"time\":");
  append_time(msg.time, dest);
  append(dest, ",\"level\":");
  auto level = spdlog::level::to_string_view(msg.level);
  append_json_string(std::string_view(level.data(), level.size()), dest);
  if (auto event = event_name(message); !event.empty()) {
    append(dest, ",\"event\":");
    append_json_string(event, dest);
  }
  append(dest, ",\"msg\":");
  append_json_string(message, dest);
  append(dest, "}\n");
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const { return std::make_unique<JsonLogFormatter>(); }

}  // namespace mqttd
