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

  // The match cache (below): how many topics it can hold, and the limits of what it keeps.
  static constexpr std::size_t kCacheSlots = 256;
  static constexpr std::size_t kCacheMaxTopic = 256;  // bytes
  static constexpr std::size_t kCacheMaxMatches = 8;  // subscribers and groups together

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
    std::unique_ptr<Node> plus;
    std::unique_ptr<Node> hash;
    std::vector<Subscriber> subscribers;
    std::vector<SharedGroup> groups;
    bool empty() const { return children.empty() && !plus && !hash && subscribers.empty() && groups.empty(); }
  };

  // A node still to visit while matching: `rest` is the part of the topic not matched yet;
  // `at_end` is true once every level has been consumed.
  struct Frame {
    Node* node;
    std::string_view rest;
    bool at_end;
    bool first_level;
  };

  Node* find_node(std::string_view filter);
  template <typename OnSubscriber, typename OnGroup>
  static void emit(Node& node, OnSubscriber& s, OnGroup& g) {
    for (const auto& sub : node.subscribers) s(sub);
    for (auto& group : node.groups) g(group);
  }

  // What match() found for one topic while the trie had version `version`: pointers into the
  // trie's nodes, valid while no add() or remove() ran (each advances version_, which makes
  // every entry stale at once). It saves the walk, a hash and a compare per level, for topics
  // that come again and again: a state store client's response topic (nine levels), a sensor's
  // telemetry topic. Only short topics with few matches are kept, so the cache stays under
  // about 200 KB per replica (256 topics of at most 256 bytes); a fan-out to many subscribers
  // costs its deliveries, not its walk.
  struct CacheEntry {
    std::uint64_t version = 0;  // 0: never filled
    std::string topic;
    // In the walk's order: a subscriber, or a group (the other pointer null).
    std::vector<std::pair<const Subscriber*, SharedGroup*>> matches;
  };
  template <typename OnSubscriber, typename OnGroup>
  void walk(std::string_view topic, OnSubscriber&& on_subscriber, OnGroup&& on_group);

  std::unique_ptr<Node> root_;
  std::size_t count_ = 0;
  std::uint64_t version_ = 1;
  std::vector<CacheEntry> cache_;  // kCacheSlots entries, made at the first match
  // The cache's slot for a topic: a multiply per eight bytes (std::hash was 2% of a state store
  // request). Not keyed: a client that makes topics collide only makes its own lookups walk.
  static std::size_t cache_slot(std::string_view topic);
  // Nested match() calls (a callback that matches again) walk the trie: the entry the outer call
  // reads must not be refilled under it.
  unsigned depth_ = 0;
  // match()'s explicit stack, kept between calls so that matching allocates nothing: a topic of
  // thousands of levels must not cost a stack frame per level.
  std::vector<Frame> stack_;
};

// From the cache when the topic is there and the trie has not changed since; else the walk, whose
// result is kept when it is small. Same calls in the same order either way.
template <typename OnSubscriber, typename OnGroup>
void SubscriptionIndex::match(std::string_view topic, OnSubscriber&& s, OnGroup&& g) {
  if (depth_ > 0 || topic.size() > kCacheMaxTopic) {
    ++depth_;
    walk(topic, s, g);
    --depth_;
    return;
  }
  if (cache_.empty()) cache_.resize(kCacheSlots);
  CacheEntry& entry = cache_[cache_slot(topic)];
  ++depth_;
  if (entry.version == version_ && entry.topic == topic) {
    for (auto [sub, group] : entry.matches) {
      if (sub) {
        s(*sub);
      } else {
        g(*group);
      }
    }
    --depth_;
    return;
  }
  const std::uint64_t walked_at = version_;
  bool keep = true;
  entry.matches.clear();
  auto record = [&](const Subscriber* sub, SharedGroup* group) {
    if (!keep) return;
    if (entry.matches.size() == kCacheMaxMatches) {
      keep = false;
      return;
    }
    entry.matches.emplace_back(sub, group);
  };
  walk(
      topic,
      [&](const Subscriber& sub) {
        record(&sub, nullptr);
        s(sub);
      },
      [&](SharedGroup& group) {
        record(nullptr, &group);
        g(group);
      });
  --depth_;
  // Kept only if no callback changed the trie meanwhile (none does today).
  if (keep && version_ == walked_at) {
    entry.topic.assign(topic);
    entry.version = version_;
  } else {
    entry.version = 0;
  }
}

// Depth first, '+' before the literal level (the order deliveries are made in). Topics
// beginning with '$' are not matched by '+' or '#' at the first level. A callback may match
// again: a nested call uses the stack above `base`.
template <typename OnSubscriber, typename OnGroup>
void SubscriptionIndex::walk(std::string_view topic, OnSubscriber&& s, OnGroup&& g) {
  const std::size_t base = stack_.size();
  stack_.push_back(Frame{root_.get(), topic, false, true});
  while (stack_.size() > base) {
    Frame f = stack_.back();
    stack_.pop_back();
    Node& node = *f.node;
    if (f.at_end) {
      emit(node, s, g);
      if (node.hash) emit(*node.hash, s, g);  // "a/#" also matches "a"
      continue;
    }
    auto slash = f.rest.find('/');
    std::string_view level = f.rest.substr(0, slash);
    std::string_view next = slash == std::string_view::npos ? std::string_view{} : f.rest.substr(slash + 1);
    bool last = slash == std::string_view::npos;
    bool dollar = f.first_level && !level.empty() && level.front() == '$';
    if (node.hash && !dollar) emit(*node.hash, s, g);
    // Pushed in reverse: the '+' branch is popped, and finished, first.
    if (auto it = node.children.find(level); it != node.children.end())
      stack_.push_back(Frame{it->second.get(), next, last, false});
    if (node.plus && !dollar) stack_.push_back(Frame{node.plus.get(), next, last, false});
  }
}

}  // namespace mqttd
