// What a Kubernetes ServiceAccount contributes to a K8S-SAT client's principal: its annotations
// `aio-broker-auth/<attribute>: <value>` (and the older prefix `aio-mq-broker-auth/`) become
// authorization attributes, as the source broker does.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mqttd::authn {

inline constexpr std::string_view kAttributeAnnotationPrefix = "aio-broker-auth/";
inline constexpr std::string_view kOlderAttributeAnnotationPrefix = "aio-mq-broker-auth/";

// The attributes carried by `annotations`; when both prefixes name the same attribute, the
// current prefix wins. Annotations without either prefix are ignored.
inline std::map<std::string, std::string> attributes_from_annotations(
    const std::map<std::string, std::string>& annotations) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : annotations)
    if (key.starts_with(kOlderAttributeAnnotationPrefix) && key.size() > kOlderAttributeAnnotationPrefix.size())
      out[key.substr(kOlderAttributeAnnotationPrefix.size())] = value;
  for (const auto& [key, value] : annotations)
    if (key.starts_with(kAttributeAnnotationPrefix) && key.size() > kAttributeAnnotationPrefix.size())
      out[key.substr(kAttributeAnnotationPrefix.size())] = value;
  return out;
}

// A service account's namespace and name from a TokenReview's username
// "system:serviceaccount:<namespace>:<name>"; nullopt for any other user.
struct ServiceAccountName {
  std::string namespace_name;
  std::string name;
};
inline std::optional<ServiceAccountName> service_account_of(std::string_view username) {
  constexpr std::string_view prefix = "system:serviceaccount:";
  if (!username.starts_with(prefix)) return std::nullopt;
  auto rest = username.substr(prefix.size());
  auto colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) return std::nullopt;
  if (rest.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
  return ServiceAccountName{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

}  // namespace mqttd::authn
