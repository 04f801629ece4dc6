#include "statestore/command.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace mqttd::statestore {

namespace {

// ASCII case folding inline (std::toupper is a library call per byte, and reads the locale).
bool equals_word(std::string_view s, std::string_view upper) {
  return s.size() == upper.size() && std::equal(s.begin(), s.end(), upper.begin(), [](char a, char b) {
           return (a >= 'a' && a <= 'z' ? static_cast<char>(a - ('a' - 'A')) : a) == b;
         });
}

// Milliseconds: digits, optionally a fraction (the .NET SDK writes a double), rounded up.
std::optional<std::uint64_t> parse_milliseconds(std::string_view s) {
  std::string_view whole = s, fraction;
  if (auto dot = s.find('.'); dot != std::string_view::npos) {
    whole = s.substr(0, dot);
    fraction = s.substr(dot + 1);
    if (fraction.empty() || !std::all_of(fraction.begin(), fraction.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
  }
  if (whole.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), v);
  if (ec != std::errc() || p != whole.data() + whole.size()) return std::nullopt;
  if (std::any_of(fraction.begin(), fraction.end(), [](char c) { return c != '0'; })) {
    if (v == std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
    ++v;
  }
  // A hundred years at most: the steady clock's nanoseconds would overflow not far beyond.
  if (v > 100ull * 365 * 24 * 3600 * 1000) return std::nullopt;
  return v;
}

}  // namespace

bool decode_command(std::span<const std::string_view> args, Command& out, std::string_view& error) {
  out = Command{};
  if (args.empty()) {
    error = errors::kSyntax;
    return false;
  }
  std::string_view verb = args[0];
  auto arity = [&](std::size_t low, std::size_t high) {
    if (args.size() >= low && args.size() <= high) return true;
    error = errors::kWrongArguments;
    return false;
  };
  if (equals_word(verb, "SET")) {
    out.verb = Verb::Set;
    if (!arity(3, 6)) return false;
    out.value = args[2];
    for (std::size_t i = 3; i < args.size(); ++i) {
      if ((equals_word(args[i], "NX") || equals_word(args[i], "NEX")) && out.condition == Condition::None) {
        out.condition = equals_word(args[i], "NX") ? Condition::NotExists : Condition::NotExistsOrEqual;
      } else if (equals_word(args[i], "PX") && !out.expiry_ms && i + 1 < args.size()) {
        out.expiry_ms = parse_milliseconds(args[++i]);
        if (!out.expiry_ms) {
          error = errors::kSyntax;
          return false;
        }
      } else {
        error = errors::kSyntax;
        return false;
      }
    }
  } else if (equals_word(verb, "GET")) {
    out.verb = Verb::Get;
    if (!arity(2, 2)) return false;
  } else if (equals_word(verb, "DEL")) {
    out.verb = Verb::Del;
    if (!arity(2, 2)) return false;
  } else if (equals_word(verb, "VDEL")) {
    out.verb = Verb::Vdel;
    if (!arity(3, 3)) return false;
    out.value = args[2];
  } else if (equals_word(verb, "KEYNOTIFY")) {
    out.verb = Verb::KeyNotify;
    if (!arity(2, 3)) return false;
    if (args.size() == 3) {
      if (!equals_word(args[2], "STOP")) {
        error = errors::kSyntax;
        return false;
      }
      out.stop = true;
    }
  } else {
    error = errors::kUnknownCommand;
    return false;
  }
  out.key = args[1];
  if (out.key.empty()) {
    error = errors::kEmptyKey;
    return false;
  }
  return true;
}

}  // namespace mqttd::statestore
