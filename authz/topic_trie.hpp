// A set of MQTT topic filters, resolved for one principal. Internal to authz/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "authz/policy.hpp"

namespace mqttd::authz {

class TopicTrie {
 public:
  // One resolved level: a wildcard, or literal text (a substituted value is always literal,
  // even if it reads "+" or "#" or holds a "/").
  struct Level {
    enum class Kind { Literal, Plus, Hash } kind = Kind::Literal;
    std::string text;
  };
  TopicTrie() = default;
  ~TopicTrie();
  TopicTrie(const TopicTrie&) = delete;
  TopicTrie& operator=(const TopicTrie&) = delete;

  void insert(const std::vector<Level>& filter);
  // Whether a concrete topic is matched by some filter of the set. Iterative: a policy may hold
  // filters of thousands of levels.
  bool matches(std::string_view topic) const;
  // Recursive, one frame per level of `filter` at most: the broker refuses deeper filters than
  // maxTopicLevels before it asks.
  Permissions::Coverage coverage(std::string_view filter) const;

 private:
  struct Node {
    std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
    std::unique_ptr<Node> plus;
    bool hash = false;      // a filter ends with "#" here (it also matches this node's topic)
    bool terminal = false;  // a filter ends exactly here
  };
  static Permissions::Coverage cover(const Node& n, std::string_view filter, std::size_t pos, bool dollar);
  static bool anything_below(const Node& n, bool skip_dollar);
  Node root_;
};

}  // namespace mqttd::authz
