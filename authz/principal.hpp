// Who a client is once authenticated: what authorization decides on.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace mqttd::authz {

struct Principal {
  std::string client_id;
  std::optional<std::string> username;  // X.509: the leaf certificate's CN; password file: the user
  std::map<std::string, std::string> attributes;
  bool operator==(const Principal&) const = default;
};

}  // namespace mqttd::authz
