// Helpers that read YAML nodes into typed values and fail with `file:line:column: path: message`.
// Internal to config/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/configuration.hpp"

namespace mqttd::config {

// A position in a file and the field path that led there, for error messages.
class Context {
 public:
  Context(std::string file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}
  Context child(std::string_view field) const;
  Context index(std::size_t i) const;  // path[i]
  [[noreturn]] void fail(const YAML::Node& at, std::string_view message) const;
  Location locate(const YAML::Node& at) const;
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::string path_;
};

// Adds "<file>:<line>:<column>: <path>: <text>" to `warnings`: a setting that is valid but does
// not do in mqttd what it does in the source broker (the form of every configuration warning).
void warn(std::vector<std::string>& warnings, const Context& ctx, const YAML::Node& at, std::string_view text);

void expect_map(const Context& ctx, const YAML::Node& node);
void expect_sequence(const Context& ctx, const YAML::Node& node);
// Fails on the first key not in `known`, suggesting the nearest known name.
void reject_unknown(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> known);
std::uint64_t integer(const Context& ctx, const YAML::Node& node, std::uint64_t min, std::uint64_t max);
// A mapping's key as text. A key that is itself a list or mapping (YAML's "? " complex keys) is
// refused with a ConfigError; yaml-cpp's as<std::string>() would throw BadConversion, which is
// not a ConfigError and would end the daemon (found by fuzz_config). A null key reads "null".
std::string key_text(const Context& ctx, const YAML::Node& key);
std::string text(const Context& ctx, const YAML::Node& node);
std::vector<std::string> string_list(const Context& ctx, const YAML::Node& node);
bool boolean(const Context& ctx, const YAML::Node& node);
std::string enumeration(const Context& ctx, const YAML::Node& node, std::initializer_list<std::string_view> allowed);
// A Go duration as Kubernetes resources write them: "90s", "1h30m", "2160h", "500ms".
std::chrono::milliseconds duration(const Context& ctx, const YAML::Node& node);
// A Kubernetes object name (RFC 1123 subdomain: lowercase letters, digits, '-' and '.', at most
// 253 characters). Names become folder names, so this also keeps "../" out of paths.
std::string object_name(const Context& ctx, const YAML::Node& node);
// A mapping of text to text (attributes, labels, resource quantities).
std::map<std::string, std::string> string_map(const Context& ctx, const YAML::Node& node);

}  // namespace mqttd::config
