#include "remote_auth/service_accounts_file.hpp"

#include <yaml-cpp/yaml.h>

#include <stdexcept>

#include "authn/service_account.hpp"

namespace mqttd::remote_auth {

ServiceAccountAttributes parse_service_accounts(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(std::string("not valid YAML: ") + e.what());
  }
  ServiceAccountAttributes out;
  if (root.IsNull()) return out;  // an empty file: no account has attributes
  if (!root.IsMap()) throw std::runtime_error("expected a map with 'serviceAccounts'");
  auto list = root["serviceAccounts"];
  if (!list || list.IsNull()) return out;
  if (!list.IsSequence()) throw std::runtime_error("'serviceAccounts' is not a list");
  std::size_t index = 0;
  for (const auto& entry : list) {
    std::string where = "serviceAccounts[" + std::to_string(index++) + "]";
    if (!entry.IsMap()) throw std::runtime_error(where + " is not a map");
    auto scalar = [&](const char* key) {
      auto node = entry[key];
      if (!node || !node.IsScalar() || node.Scalar().empty())
        throw std::runtime_error(where + ": '" + key + "' must be a non-empty string");
      return node.Scalar();
    };
    auto account = std::make_pair(scalar("namespace"), scalar("name"));
    std::map<std::string, std::string> annotations;
    if (auto a = entry["annotations"]; a && !a.IsNull()) {
      if (!a.IsMap()) throw std::runtime_error(where + ": 'annotations' is not a map");
      for (const auto& kv : a) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar())
          throw std::runtime_error(where + ": annotations must map strings to strings");
        annotations[kv.first.Scalar()] = kv.second.Scalar();
      }
    }
    if (out.count(account))
      throw std::runtime_error(where + ": " + account.first + "/" + account.second + " appears twice");
    out.emplace(std::move(account), authn::attributes_from_annotations(annotations));
  }
  return out;
}

}  // namespace mqttd::remote_auth
