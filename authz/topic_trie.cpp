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

// Wildcards at the first level do not match topics that start with '$' (MQTT 4.7.2): a policy
// that allows "#" does not allow "$SYS/...", only a rule that names the '$' level does.
bool TopicTrie::match(const Node& n, std::string_view topic, std::size_t pos, bool dollar) {
  if (n.hash && !dollar) return true;
  if (pos > topic.size()) return n.terminal;
  auto [level, next] = level_at(topic, pos);
  if (auto it = n.children.find(level); it != n.children.end() && match(*it->second, topic, next, false)) return true;
  return n.plus && !dollar && match(*n.plus, topic, next, false);
}

bool TopicTrie::matches(std::string_view topic) const {
  return match(root_, topic, 0, !topic.empty() && topic[0] == '$');
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
