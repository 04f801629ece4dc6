// The subscription trie: topic filter levels as edges, subscribers at the nodes. Each worker
// holds its own replica and matches against it without locks; changes reach every replica as
// tasks (see docs/architecture.md).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mqttd {

class Session;
using SessionPtr = std::shared_ptr<Session>;

struct SubscriptionOptions {
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint8_t retain_handling = 0;
  std::uint32_t identifier = 0;  // 0: none
};

struct Subscriber {
  SessionPtr session;
  SubscriptionOptions options;
};

// A "$share/<name>/<filter>" group: each message goes to one member.
struct SharedGroup {
  std::string name;
  // The whole "$share/name/filter", shared with every delivery through the group (no copy per
  // message).
  std::shared_ptr<const std::string> share_filter;
  std::vector<Subscriber> members;
  std::size_t next = 0;  // round-robin cursor (per replica)
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class SubscriptionIndex {
 public:
  SubscriptionIndex();
  ~SubscriptionIndex();
  SubscriptionIndex(const SubscriptionIndex&) = delete;
  SubscriptionIndex& operator=(const SubscriptionIndex&) = delete;

  // Adds or replaces the subscription of `session` to `filter` (in group `share_name` if not
  // empty; `share_filter` is then the full "$share/..." string).
  void add(const SessionPtr& session, std::string_view filter, const SubscriptionOptions& options,
           std::string_view share_name = {}, std::shared_ptr<const std::string> share_filter = {});
  // Returns true if the subscription existed.
  bool remove(const Session* session, std::string_view filter, std::string_view share_name = {});

  // Calls on_subscriber(const Subscriber&) for every plain subscription matching `topic`, and
  // on_group(SharedGroup&) for every shared group with a matching filter.
  template <typename OnSubscriber, typename OnGroup>
  void match(std::string_view topic, OnSubscriber&& on_subscriber, OnGroup&& on_group);

  // The group for a "$share/name/filter", or nullptr.
  SharedGroup* find_group(std::string_view filter, std::string_view share_name);

  std::size_t subscription_count() const { return count_; }

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
    std::unique_ptr<Node> plus;
    std::unique_ptr<Node> hash;
    std::vector<Subscriber> subscribers;
    std::vector<SharedGroup> groups;
    bool empty() const { return children.empty() && !plus && !hash && subscribers.empty() && groups.empty(); }
  };

  Node* find_node(std::string_view filter);
  template <typename OnSubscriber, typename OnGroup>
  static void visit(Node& node, std::string_view rest, bool at_end, bool first_level, OnSubscriber& s, OnGroup& g);
  template <typename OnSubscriber, typename OnGroup>
  static void emit(Node& node, OnSubscriber& s, OnGroup& g) {
    for (const auto& sub : node.subscribers) s(sub);
    for (auto& group : node.groups) g(group);
  }

  std::unique_ptr<Node> root_;
  std::size_t count_ = 0;
};

template <typename OnSubscriber, typename OnGroup>
void SubscriptionIndex::match(std::string_view topic, OnSubscriber&& on_subscriber, OnGroup&& on_group) {
  visit(*root_, topic, false, true, on_subscriber, on_group);
}

// `rest` is the part of the topic not matched yet; `at_end` is true once every level has been
// consumed. Topics beginning with '$' are not matched by '+' or '#' at the first level.
template <typename OnSubscriber, typename OnGroup>
void SubscriptionIndex::visit(Node& node, std::string_view rest, bool at_end, bool first_level, OnSubscriber& s,
                              OnGroup& g) {
  if (at_end) {
    emit(node, s, g);
    if (node.hash) emit(*node.hash, s, g);  // "a/#" also matches "a"
    return;
  }
  auto slash = rest.find('/');
  std::string_view level = rest.substr(0, slash);
  std::string_view next = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  bool last = slash == std::string_view::npos;
  bool dollar = first_level && !level.empty() && level.front() == '$';
  if (node.hash && !dollar) emit(*node.hash, s, g);
  if (node.plus && !dollar) visit(*node.plus, next, last, false, s, g);
  if (auto it = node.children.find(level); it != node.children.end()) visit(*it->second, next, last, false, s, g);
}

}  // namespace mqttd
