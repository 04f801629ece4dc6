#include "broker/retained_store.hpp"

namespace mqttd {

RetainedStore::RetainedStore() : root_(std::make_unique<Node>()) {}
RetainedStore::~RetainedStore() = default;

void RetainedStore::clear() {
  std::lock_guard lock(mutex_);
  root_ = std::make_unique<Node>();
  count_ = 0;
}

void RetainedStore::set(const MessageRef& message) {
  std::string_view topic = message->topic();
  bool clear = message->payload().empty();
  std::lock_guard lock(mutex_);
  std::vector<std::pair<Node*, std::string_view>> path;
  Node* node = root_.get();
  std::size_t start = 0;
  while (true) {
    auto slash = topic.find('/', start);
    std::string_view level =
        topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    auto it = node->children.find(level);
    if (it == node->children.end()) {
      if (clear) return;
      it = node->children.emplace(std::string(level), std::make_unique<Node>()).first;
    }
    path.emplace_back(node, level);
    node = it->second.get();
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (!clear) {
    if (!node->message) ++count_;
    node->message = message;
    return;
  }
  if (node->message) --count_;
  node->message = MessageRef();
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (child->second->message || !child->second->children.empty()) break;
    it->first->children.erase(child);
  }
}

void RetainedStore::match(std::string_view filter, Clock::time_point now, std::vector<MessageRef>& out) {
  std::lock_guard lock(mutex_);
  collect(*root_, filter, false, true, now, out);
}

std::size_t RetainedStore::size() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void RetainedStore::collect_all(Node& node, Clock::time_point now, std::vector<MessageRef>& out) {
  if (node.message && !node.message->expired(now)) out.push_back(node.message);
  for (auto& [name, child] : node.children) collect_all(*child, now, out);
}

void RetainedStore::collect(Node& node, std::string_view rest, bool at_end, bool first_level, Clock::time_point now,
                            std::vector<MessageRef>& out) {
  if (at_end) {
    if (node.message && !node.message->expired(now)) out.push_back(node.message);
    return;
  }
  auto slash = rest.find('/');
  std::string_view level = rest.substr(0, slash);
  bool last = slash == std::string_view::npos;
  std::string_view next = last ? std::string_view{} : rest.substr(slash + 1);
  if (level == "#") {
    // "#" matches the parent level too, except at the root.
    if (!first_level && node.message && !node.message->expired(now)) out.push_back(node.message);
    for (auto& [name, child] : node.children) {
      if (first_level && name.starts_with('$')) continue;
      collect_all(*child, now, out);
    }
    return;
  }
  if (level == "+") {
    for (auto& [name, child] : node.children) {
      if (first_level && name.starts_with('$')) continue;
      collect(*child, next, last, false, now, out);
    }
    return;
  }
  if (auto it = node.children.find(level); it != node.children.end()) collect(*it->second, next, last, false, now, out);
}

}  // namespace mqttd
