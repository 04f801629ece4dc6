#include "config/yaml_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace mqttd::config {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

Context Context::child(std::string_view field) const {
  return Context(file_, path_.empty() ? std::string(field) : path_ + "." + std::string(field));
}

Context Context::index(std::size_t i) const { return Context(file_, fmt::format("{}[{}]", path_, i)); }

void Context::fail(const YAML::Node& at, std::string_view message) const {
  throw ConfigError(fmt::format("{}: {}: {}", locate(at).text(), path_.empty() ? "(document)" : path_, message));
}

Location Context::locate(const YAML::Node& at) const {
  auto mark = at.Mark();
  return Location{file_, mark.line + 1, mark.column + 1};
}

void warn(std::vector<std::string>& warnings, const Context& ctx, const YAML::Node& at, std::string_view text) {
  warnings.push_back(fmt::format("{}: {}: {}", ctx.locate(at).text(), ctx.path(), text));
}

void expect_map(const Context& ctx, const YAML::Node& node) {
  if (!node.IsMap()) ctx.fail(node, "expected a mapping");
}

void expect_sequence(const Context& ctx, const YAML::Node& node) {
  if (!node.IsSequence()) ctx.fail(node, "expected a list");
}

void reject_unknown(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> known) {
  for (const auto& kv : node) {
    auto key = key_text(ctx, kv.first);
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (auto k : known) {
      auto d = edit_distance(key, k);
      if (d < best_distance) best_distance = d, best = k;
    }
    std::string hint = best_distance <= 3 ? fmt::format(" (did you mean '{}'?)", best) : "";
    ctx.child(key).fail(kv.first, fmt::format("unknown field{}", hint));
  }
}

std::uint64_t integer(const Context& ctx, const YAML::Node& node, std::uint64_t min, std::uint64_t max) {
  if (!node.IsScalar()) ctx.fail(node, "expected an integer");
  const std::string& s = node.Scalar();
  bool negative = !s.empty() && s[0] == '-';
  std::string_view digits = negative ? std::string_view(s).substr(1) : std::string_view(s);
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    ctx.fail(node, fmt::format("expected an integer from {} to {}, got '{}'", min, max, s));
  if (negative) ctx.fail(node, fmt::format("{} is out of range {}..{}", s, min, max));
  std::uint64_t value = std::stoull(std::string(digits));
  if (value < min || value > max) ctx.fail(node, fmt::format("{} is out of range {}..{}", value, min, max));
  return value;
}

std::string key_text(const Context& ctx, const YAML::Node& key) {
  if (key.IsNull()) return "null";
  if (!key.IsScalar()) ctx.fail(key, "expected a field name, not a list or mapping");
  return key.Scalar();
}

std::string text(const Context& ctx, const YAML::Node& node) {
  if (!node.IsScalar()) ctx.fail(node, "expected a string");
  return node.Scalar();
}

std::vector<std::string> string_list(const Context& ctx, const YAML::Node& node) {
  expect_sequence(ctx, node);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) out.push_back(text(ctx.index(i), node[i]));
  return out;
}

bool boolean(const Context& ctx, const YAML::Node& node) {
  auto s = text(ctx, node);
  if (s == "true") return true;
  if (s == "false") return false;
  ctx.fail(node, fmt::format("expected true or false, got '{}'", s));
}

std::string enumeration(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> allowed) {
  auto s = text(ctx, node);
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    ctx.fail(node, fmt::format("'{}' is not one of: {}", s, list));
  }
  return s;
}

std::chrono::milliseconds duration(const Context& ctx, const YAML::Node& node) {
  auto s = text(ctx, node);
  auto bad = [&] {
    ctx.fail(node, fmt::format("'{}' is not a duration (write it as Go does: 90s, 45m, 2160h, 1h30m)", s));
  };
  if (s.empty()) bad();
  double total_ms = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (start == i) bad();
    double value = 0;
    try {
      value = std::stod(s.substr(start, i - start));
    } catch (...) {
      bad();
    }
    std::size_t unit_start = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    auto unit = std::string_view(s).substr(unit_start, i - unit_start);
    double scale = unit == "ms" ? 1 : unit == "s" ? 1e3 : unit == "m" ? 60e3 : unit == "h" ? 3600e3 : -1;
    if (scale < 0) bad();
    total_ms += value * scale;
  }
  if (total_ms > 1e15) ctx.fail(node, fmt::format("'{}' is too long", s));
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ms));
}

std::map<std::string, std::string> string_map(const Context& ctx, const YAML::Node& node) {
  expect_map(ctx, node);
  std::map<std::string, std::string> out;
  for (const auto& kv : node) {
    auto key = key_text(ctx, kv.first);
    out[key] = text(ctx.child(key), kv.second);
  }
  return out;
}

std::string object_name(const Context& ctx, const YAML::Node& node) {
  auto s = text(ctx, node);
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok = !s.empty() && s.size() <= 253 && alnum(s.front()) && alnum(s.back());
  for (std::size_t i = 0; ok && i < s.size(); ++i) {
    char c = s[i];
    if (c == '.')
      ok = i > 0 && alnum(s[i - 1]) && i + 1 < s.size() && alnum(s[i + 1]);
    else
      ok = alnum(c) || c == '-';
  }
  if (!ok)
    ctx.fail(node, fmt::format("'{}' is not a valid name (lowercase letters, digits, '-' and '.', starting and "
                               "ending with a letter or digit, at most 253 characters)",
                               s));
  return s;
}

}  // namespace mqttd::config
