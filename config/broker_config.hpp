// Loads the daemon's YAML resources. This part reads the Broker resource (apiVersion, kind,
// metadata, spec) into BrokerSettings; every error names the file, line, column and field path.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "broker/settings.hpp"

namespace mqttd::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Configuration {
  BrokerSettings broker;
  std::string log_level = "info";
  std::vector<std::string> files;  // what was read
};

// Reads one file, or every *.yaml / *.yml file of a folder in name order. Several documents
// may share a file (separated by ---). Throws ConfigError.
Configuration load(const std::string& path);

}  // namespace mqttd::config
