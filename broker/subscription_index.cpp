#include "broker/subscription_index.hpp"

#include <algorithm>
#include <cstring>

namespace mqttd {

std::size_t SubscriptionIndex::cache_slot(std::string_view topic) {
  // Two independent lanes of sixteen bytes at a time: a multiply's latency is paid once per
  // sixteen bytes rather than per eight (a chained hash was 2.7% of a state store request).
  constexpr std::uint64_t kOdd1 = 0x9E3779B97F4A7C15ull, kOdd2 = 0xC2B2AE3D27D4EB4Full;
  auto load = [](const char* at) {
    std::uint64_t word;
    std::memcpy(&word, at, 8);
    return word;
  };
  std::uint64_t a = topic.size() * kOdd1, b = kOdd2;
  const char* p = topic.data();
  const std::size_t size = topic.size();
  if (size >= 8) {
    const char* end = p + size;
    for (; end - p >= 16; p += 16) {
      a = (a ^ load(p)) * kOdd1;
      b = (b ^ load(p + 8)) * kOdd2;
    }
    if (p != end) {  // the last sixteen (or, under sixteen, the first and last eight), some read already
      const char* last = size >= 16 ? end - 16 : topic.data();
      a = (a ^ load(last)) * kOdd1;
      b = (b ^ load(end - 8)) * kOdd2;
    }
  } else {
    std::uint64_t word = 0;
    for (std::size_t i = 0; i < size; ++i) word = word << 8 | static_cast<unsigned char>(p[i]);
    a = (a ^ word) * kOdd1;
  }
  std::uint64_t h = (a ^ (b >> 29) ^ (b << 35)) * kOdd1;
  return static_cast<std::size_t>(h >> 56) % kCacheSlots;  // the best-mixed bits
}

SubscriptionIndex::SubscriptionIndex() : root_(std::make_unique<Node>()) {}
// Nodes are freed from a worklist: unique_ptr's recursive destruction would cost a stack frame
// per level of the deepest filter.
SubscriptionIndex::~SubscriptionIndex() {
  std::vector<std::unique_ptr<Node>> pending;
  pending.push_back(std::move(root_));
  while (!pending.empty()) {
    std::unique_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    for (auto& [level, child] : node->children)
      if (child) pending.push_back(std::move(child));
    if (node->plus) pending.push_back(std::move(node->plus));
    if (node->hash) pending.push_back(std::move(node->hash));
  }
}

namespace {

template <typename Fn>
void for_each_level(std::string_view filter, Fn&& fn) {
  std::size_t start = 0;
  while (true) {
    auto slash = filter.find('/', start);
    fn(filter.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return;
    start = slash + 1;
  }
}

}  // namespace

void SubscriptionIndex::add(const SessionPtr& session, std::string_view filter, const SubscriptionOptions& options,
                            std::string_view share_name, std::shared_ptr<const std::string> share_filter) {
  ++version_;  // the match cache's pointers may move
  Node* node = root_.get();
  for_each_level(filter, [&](std::string_view level) {
    std::unique_ptr<Node>* slot;
    if (level == "+") {
      slot = &node->plus;
    } else if (level == "#") {
      slot = &node->hash;
    } else {
      auto it = node->children.find(level);
      if (it == node->children.end()) it = node->children.emplace(std::string(level), nullptr).first;
      slot = &it->second;
    }
    if (!*slot) *slot = std::make_unique<Node>();
    node = slot->get();
  });
  std::vector<Subscriber>* list = &node->subscribers;
  if (!share_name.empty()) {
    auto g = std::find_if(node->groups.begin(), node->groups.end(), [&](auto& x) { return x.name == share_name; });
    if (g == node->groups.end()) {
      node->groups.push_back(SharedGroup{std::string(share_name), std::move(share_filter), {}, 0});
      g = node->groups.end() - 1;
    }
    list = &g->members;
  }
  for (auto& sub : *list) {
    if (sub.session == session) {
      sub.options = options;
      return;
    }
  }
  list->push_back(Subscriber{session, options});
  ++count_;
}

SubscriptionIndex::Node* SubscriptionIndex::find_node(std::string_view filter) {
  Node* node = root_.get();
  for_each_level(filter, [&](std::string_view level) {
    if (!node) return;
    if (level == "+") {
      node = node->plus.get();
    } else if (level == "#") {
      node = node->hash.get();
    } else {
      auto it = node->children.find(level);
      node = it == node->children.end() ? nullptr : it->second.get();
    }
  });
  return node;
}

SharedGroup* SubscriptionIndex::find_group(std::string_view filter, std::string_view share_name) {
  Node* node = find_node(filter);
  if (!node) return nullptr;
  for (auto& g : node->groups)
    if (g.name == share_name) return &g;
  return nullptr;
}

bool SubscriptionIndex::remove(const Session* session, std::string_view filter, std::string_view share_name) {
  ++version_;  // the match cache's pointers may dangle
  // Walk down remembering the path, so that nodes left empty can be pruned on the way back.
  std::vector<std::pair<Node*, std::string_view>> path;
  Node* node = root_.get();
  bool found_path = true;
  for_each_level(filter, [&](std::string_view level) {
    if (!found_path) return;
    path.emplace_back(node, level);
    Node* next;
    if (level == "+") {
      next = node->plus.get();
    } else if (level == "#") {
      next = node->hash.get();
    } else {
      auto it = node->children.find(level);
      next = it == node->children.end() ? nullptr : it->second.get();
    }
    if (!next) found_path = false;
    node = next;
  });
  if (!found_path) return false;
  bool removed = false;
  auto erase_from = [&](std::vector<Subscriber>& list) {
    auto it = std::find_if(list.begin(), list.end(), [&](auto& s) { return s.session.get() == session; });
    if (it != list.end()) {
      list.erase(it);
      removed = true;
    }
  };
  if (share_name.empty()) {
    erase_from(node->subscribers);
  } else {
    for (auto g = node->groups.begin(); g != node->groups.end(); ++g) {
      if (g->name != share_name) continue;
      erase_from(g->members);
      if (g->members.empty()) node->groups.erase(g);
      break;
    }
  }
  if (!removed) return false;
  --count_;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto [parent, level] = *it;
    Node* child = level == "+"   ? parent->plus.get()
                  : level == "#" ? parent->hash.get()
                                 : parent->children.find(level)->second.get();
    if (!child->empty()) break;
    if (level == "+") {
      parent->plus.reset();
    } else if (level == "#") {
      parent->hash.reset();
    } else {
      parent->children.erase(parent->children.find(level));
    }
  }
  return true;
}

}  // namespace mqttd
