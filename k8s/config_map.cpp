// The ConfigMap that the pod mounts at /etc/mqttd/config: the input files, byte for byte, keyed
// by their names. kubelet updates the mounted files when the ConfigMap changes, and the daemon
// reloads them (it watches its --config folder).
#include <fmt/format.h>

#include <set>

#include "k8s/objects.hpp"

namespace mqttd::k8s {
namespace {

// ConfigMap data must be UTF-8 (binaryData would not be YAML the daemon reads anyway).
bool is_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
    if (extra == 4 || s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

// The API server refuses a ConfigMap over 1 MiB (its whole object; data is most of it).
constexpr std::size_t kMaxConfigMapBytes = 1024 * 1024 - 4096;

}  // namespace

Tree config_map(const Scope& scope, const std::vector<InputFile>& inputs) {
  Tree data = Tree::map();
  std::set<std::string> keys;
  std::size_t total = 0;
  for (const auto& file : inputs) {
    if (!is_config_map_key(file.name))
      throw RenderError(
          fmt::format("{}: the file name cannot be a ConfigMap key (letters, digits, '-', '_', '.')", file.name));
    if (!file.name.ends_with(".yaml") && !file.name.ends_with(".yml"))
      throw RenderError(
          fmt::format("{}: the daemon reads only *.yaml and *.yml files from its mounted config "
                      "folder: rename the file",
                      file.name));
    if (!keys.insert(file.name).second)
      throw RenderError(fmt::format("{}: two input files share this name", file.name));
    if (!is_utf8(file.content)) throw RenderError(fmt::format("{}: not UTF-8 text", file.name));
    total += file.content.size();
    data.set(file.name, Tree::text(file.content));
  }
  if (total > kMaxConfigMapBytes)
    throw RenderError(fmt::format("the configuration files hold {} bytes; a ConfigMap holds at most 1 MiB", total));
  Tree cm = Tree::map({{"apiVersion", Tree::string("v1")}, {"kind", Tree::string("ConfigMap")}});
  cm.set("metadata", scope.metadata(scope.config_map_name()));
  cm.set("data", std::move(data));
  return cm;
}

}  // namespace mqttd::k8s
