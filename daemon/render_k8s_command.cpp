#include "daemon/render_k8s_command.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "config/configuration.hpp"
#include "k8s/render.hpp"

namespace mqttd {
namespace {

constexpr const char* kUsage = R"(usage: mqttd render-k8s --config PATH [--image NAME] [--namespace NS]

Prints the Kubernetes objects that run mqttd on the configuration PATH (a file or a folder of
*.yaml files), as YAML documents separated by ---, for `kubectl apply -f -`:
a ConfigMap holding the files, a Service per BrokerListener, a metrics Service, and a Deployment
(a StatefulSet with a volume claim and a headless Service when the Broker sets persistence).

  --config PATH      the configuration (required); checked as --check-config does
  --image NAME       the container image (default mqttd:latest)
  --namespace NS     the objects' namespace (default azure-iot-operations)
)";

int usage_error(const std::string& message) {
  std::cerr << "mqttd render-k8s: " << message << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int render_k8s_command(int argc, char** argv) {
  std::optional<std::string> path;
  k8s::RenderOptions options;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg != "--config" && arg != "--image" && arg != "--namespace")
      return usage_error("unknown option '" + arg + "'");
    if (i + 1 >= argc) return usage_error(arg + " needs a value");
    std::string value = argv[++i];
    if (arg == "--config")
      path = value;
    else if (arg == "--image")
      options.image = value;
    else
      options.namespace_name = value;
  }
  if (!path) return usage_error("--config PATH is required");
  if (options.image.empty()) return usage_error("--image needs a name");

  config::Configuration config;
  try {
    config = config::load(*path);
  } catch (const config::ConfigError& e) {
    std::cerr << "mqttd: configuration error: " << e.what() << "\n";
    return 1;
  }
  for (const auto& w : config.warnings) std::cerr << "warning: " << w << "\n";

  // The files as the daemon read them, keyed by name: the pod mounts them as one folder.
  std::vector<k8s::InputFile> inputs;
  for (const auto& file : config.files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
      std::cerr << "mqttd render-k8s: " << file << ": cannot be read\n";
      return 1;
    }
    inputs.push_back({std::filesystem::path(file).filename().string(), text.str()});
  }
  try {
    auto rendered = k8s::render(config, options, inputs);
    for (const auto& w : rendered.warnings) std::cerr << "warning: " << w << "\n";
    std::cout << rendered.yaml << std::flush;
    return std::cout ? 0 : 1;
  } catch (const k8s::RenderError& e) {
    std::cerr << "mqttd render-k8s: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace mqttd
