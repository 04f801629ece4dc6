// A BrokerAuthorization policy as written (rules of principals and resources), before it is
// compiled. config/ fills it from YAML; authz/ compiles it. No I/O.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mqttd::authz {

struct PrincipalsSpec {
  std::vector<std::string> client_ids;
  std::vector<std::string> usernames;
  std::vector<std::map<std::string, std::string>> attributes;  // OR across maps, AND within one
  bool operator==(const PrincipalsSpec&) const = default;
};

enum class BrokerMethod { Connect, Publish, Subscribe };

struct BrokerResourceSpec {
  BrokerMethod method = BrokerMethod::Connect;
  std::vector<std::string> client_ids;  // Connect only: a trailing '*' is a prefix glob
  std::vector<std::string> topics;      // Publish and Subscribe: MQTT filters, with tokens
  bool operator==(const BrokerResourceSpec&) const = default;
};

enum class KeyAccess { Read, Write, ReadWrite };
enum class KeyType { Pattern, String, Binary };

struct StateStoreResourceSpec {
  KeyAccess method = KeyAccess::Read;
  KeyType key_type = KeyType::Pattern;
  std::vector<std::string> keys;  // Binary: the raw bytes (config decodes base64)
  bool operator==(const StateStoreResourceSpec&) const = default;
};

struct RuleSpec {
  PrincipalsSpec principals;
  std::vector<BrokerResourceSpec> broker_resources;
  std::vector<StateStoreResourceSpec> state_store_resources;
  bool operator==(const RuleSpec&) const = default;
};

struct PolicySpec {
  std::string name;
  bool cache = true;
  std::vector<RuleSpec> rules;
  bool operator==(const PolicySpec&) const = default;
};

// Checks one template as the rules allow it; returns an explanation, or nothing if it is valid.
// Topics: MQTT filter syntax; a token {principal.clientId}, {principal.username} or
// {principal.attributes.<name>} must fill a whole level.
std::optional<std::string> check_topic_template(const std::string& text);
// Connect clientIds: literal text and tokens, with an optional trailing '*'.
std::optional<std::string> check_client_id_template(const std::string& text);
// Pattern keys: glob (*, ?, [..]) with tokens.
std::optional<std::string> check_key_pattern(const std::string& text);

}  // namespace mqttd::authz
