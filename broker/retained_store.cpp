#include "broker/retained_store.hpp"

namespace mqttd {

RetainedStore::RetainedStore(std::uint64_t max_messages, std::uint64_t max_bytes)
    : max_messages_(max_messages), max_bytes_(max_bytes), root_(std::make_unique<Node>()) {}
RetainedStore::~RetainedStore() = default;

void RetainedStore::clear() {
  std::lock_guard lock(mutex_);
  expiries_.clear();
  root_ = std::make_unique<Node>();
  count_ = 0;
  bytes_ = 0;
}

RetainedStore::SetResult RetainedStore::set(const MessageRef& message) {
  std::string_view topic = message->topic();
  bool clear = message->payload().empty();
  std::uint64_t cost = RetainedStore::cost(*message);
  std::lock_guard lock(mutex_);
  std::vector<std::pair<Node*, std::string_view>> path;
  Node* node = root_.get();
  std::size_t start = 0;
  // Find the topic's node without creating any, so that a refused message leaves nothing behind.
  bool exists = true;
  while (true) {
    auto slash = topic.find('/', start);
    std::string_view level =
        topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    auto it = node->children.find(level);
    if (it == node->children.end()) {
      exists = false;
      break;
    }
    path.emplace_back(node, level);
    node = it->second.get();
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (clear) {
    if (!exists || !node->message) return SetResult::Cleared;
    remove(path, node);
    return SetResult::Cleared;
  }
  bool replaces = exists && node->message;
  std::uint64_t freed = replaces ? RetainedStore::cost(*node->message) : 0;
  if (!replaces && count_ >= max_messages_) return SetResult::TooManyMessages;
  if (bytes_ - freed + cost > max_bytes_) return SetResult::TooManyBytes;
  if (!exists) {
    // Create the missing levels, from the first one not found.
    while (true) {
      auto slash = topic.find('/', start);
      std::string_view level =
          topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      node = node->children.emplace(std::string(level), std::make_unique<Node>()).first->second.get();
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
  }
  if (replaces) {
    if (node->message->expires()) expiries_.erase(node->expiry);
  } else {
    ++count_;
  }
  bytes_ = bytes_ - freed + cost;
  node->message = message;
  if (message->expires()) node->expiry = expiries_.emplace(message->expires_at(), node);
  return SetResult::Stored;
}

void RetainedStore::remove(std::vector<std::pair<Node*, std::string_view>>& path, Node* node) {
  if (node->message->expires()) expiries_.erase(node->expiry);
  bytes_ -= RetainedStore::cost(*node->message);
  --count_;
  node->message = MessageRef();
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (child->second->message || !child->second->children.empty()) break;
    it->first->children.erase(child);
  }
}

std::size_t RetainedStore::purge_expired(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::size_t purged = 0;
  std::vector<std::pair<Node*, std::string_view>> path;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    // Walk down to the node again for the path that remove() prunes: O(levels).
    MessageRef message = expiries_.begin()->second->message;  // keeps the topic's bytes alive
    std::string_view topic = message->topic();
    path.clear();
    Node* node = root_.get();
    std::size_t start = 0;
    while (true) {
      auto slash = topic.find('/', start);
      std::string_view level =
          topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      auto it = node->children.find(level);
      path.emplace_back(node, level);
      node = it->second.get();
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    remove(path, node);
    ++purged;
  }
  return purged;
}

void RetainedStore::match(std::string_view filter, Clock::time_point now, std::vector<MessageRef>& out) {
  std::lock_guard lock(mutex_);
  collect(*root_, filter, false, true, now, out);
}

std::size_t RetainedStore::size() const {
  std::lock_guard lock(mutex_);
  return count_;
}

std::uint64_t RetainedStore::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
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
