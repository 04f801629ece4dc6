// A client id as the log writes it. The daemon's self-check connects to its internal port with a
// client id that nothing else knows (the port admits that one id only): the log shows it
// truncated, so that whoever reads the log cannot use the port. Every other id is written whole.
#pragma once

#include <string_view>

namespace mqttd {

// The self-check's client ids: this prefix and 32 random hexadecimal digits.
inline constexpr std::string_view kSelfCheckClientIdPrefix = "mqttd-selfcheck-";

inline std::string_view logged_client_id(std::string_view client_id) {
  if (client_id.size() > kSelfCheckClientIdPrefix.size() && client_id.starts_with(kSelfCheckClientIdPrefix))
    return "mqttd-selfcheck-\u2026";
  return client_id;
}

}  // namespace mqttd
