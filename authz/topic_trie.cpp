#include "authz/topic_trie.hpp"

namespace mqttd::authz {
namespace {

// The level of `text` that starts at `pos`, and where the next one starts (text.size() + 1
// when there is none).
std::pair<std::string_view, std::size_t> level_at(std::string_view text, std::size_t pos) {
  auto end = text.find('/', pos);
  if (end == std::string_view::npos) end = text.size();
  return {text.substr(pos, end - pos), end + 1};
}

}  // namespace

void TopicTrie::insert(const std::vector<Level>& filter) {
  Node* n = &root_;
  for (const auto& level : filter) {
    if (level.kind == Level::Kind::Hash) {
      n->hash = true;
      return;
    }
    if (level.kind == Level::Kind::Plus) {
      if (!n->plus) n->plus = std::make_unique<Node>();
      n = n->plus.get();
      continue;
    }
    auto it = n->children.find(level.text);
    if (it == n->children.end()) it = n->children.emplace(level.text, std::make_unique<Node>()).first;
    n = it->second.get();
  }
  n->terminal = true;
}

// Nodes are freed from a worklist: unique_ptr's recursive destruction would cost a stack frame
// per level of the deepest filter.
TopicTrie::~TopicTrie() {
  std::vector<std::unique_ptr<Node>> pending;
  auto take_children = [&](Node& n) {
    for (auto& [text, child] : n.children) pending.push_back(std::move(child));
    if (n.plus) pending.push_back(std::move(n.plus));
  };
  take_children(root_);
  while (!pending.empty()) {
    std::unique_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    take_children(*n);
  }
}

// Wildcards at the first level do not match topics that start with '$' (MQTT 4.7.2): a policy
// that allows "#" does not allow "$SYS/...", only a rule that names the '$' level does.
bool TopicTrie::matches(std::string_view topic) const {
  // Depth first with an explicit stack (per thread, reused: this runs for every PUBLISH and
  // delivery without a cached decision).
  struct Frame {
    const Node* node;
    std::size_t pos;  // where the next level of `topic` starts; topic.size() + 1 once consumed
    bool dollar;      // the first level starts with '$'
  };
  thread_local std::vector<Frame> stack;
  stack.clear();
  stack.push_back(Frame{&root_, 0, !topic.empty() && topic[0] == '$'});
  bool found = false;
  while (!stack.empty() && !found) {
    Frame f = stack.back();
    stack.pop_back();
    const Node& n = *f.node;
    if (n.hash && !f.dollar) {
      found = true;
    } else if (f.pos > topic.size()) {
      found = n.terminal;
    } else {
      auto [level, next] = level_at(topic, f.pos);
      if (n.plus && !f.dollar) stack.push_back(Frame{n.plus.get(), next, false});
      if (auto it = n.children.find(level); it != n.children.end())
        stack.push_back(Frame{it->second.get(), next, false});
    }
  }
  // A policy's deepest filter sized it; do not keep that for the thread's life.
  if (stack.capacity() > 1024) std::vector<Frame>().swap(stack);
  return found;
}

bool TopicTrie::anything_below(const Node& n, bool skip_dollar) {
  if (n.terminal || n.hash || n.plus) return true;
  for (const auto& [text, child] : n.children)
    if (!(skip_dollar && !text.empty() && text[0] == '$')) return true;
  return false;
}

Permissions::Coverage TopicTrie::cover(const Node& n, std::string_view filter, std::size_t pos, bool dollar) {
  using C = Permissions::Coverage;
  if (n.hash && !dollar) return C::Full;
  if (pos > filter.size()) return n.terminal ? C::Full : C::None;
  auto [level, next] = level_at(filter, pos);
  bool first = pos == 0;
  if (level == "#") {
    // The requested filter matches this node's topic and everything below it.
    return anything_below(n, first) ? C::Partial : C::None;
  }
  if (level == "+") {
    C via_plus = n.plus ? cover(*n.plus, filter, next, false) : C::None;
    if (via_plus == C::Full) return C::Full;
    if (via_plus == C::Partial) return C::Partial;
    for (const auto& [text, child] : n.children) {
      if (first && !text.empty() && text[0] == '$') continue;
      if (cover(*child, filter, next, false) != C::None) return C::Partial;
    }
    return C::None;
  }
  C literal = C::None;
  if (auto it = n.children.find(level); it != n.children.end()) literal = cover(*it->second, filter, next, false);
  if (literal == C::Full) return C::Full;
  C via_plus = n.plus && !dollar ? cover(*n.plus, filter, next, false) : C::None;
  if (via_plus == C::Full) return C::Full;
  return literal == C::Partial || via_plus == C::Partial ? C::Partial : C::None;
}

Permissions::Coverage TopicTrie::coverage(std::string_view filter) const {
  return cover(root_, filter, 0, !filter.empty() && filter[0] == '$');
}

}  // namespace mqttd::authz
