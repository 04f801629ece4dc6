// The state store's topics: where requests go and the namespace its notifications use.
#pragma once

#include <string_view>

namespace mqttd::statestore {

inline constexpr std::string_view kRequestTopic = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke";
// Notifications live under this prefix: a response topic may not start with it (nor equal the
// request topic), and clients may not publish under it.
inline constexpr std::string_view kReservedPrefix = "clients/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8";
inline constexpr std::string_view kNodeId = "StateStore";

inline bool is_reserved_topic(std::string_view topic) { return topic.starts_with(kReservedPrefix); }

}  // namespace mqttd::statestore
