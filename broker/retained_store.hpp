// Retained messages, one per topic, shared by all workers. Setting one is rare next to routing,
// so a mutex guards the tree; matching a new subscription's filter walks only matching
// branches. The store is bounded (count and bytes) and removes expired messages through an
// index ordered by expiry, so that purging costs O(expired log n), never a walk of the tree.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/message.hpp"
#include "broker/subscription_index.hpp"

namespace mqttd {

class RetainedStore {
 public:
  // At most `max_messages` retained topics holding at most `max_bytes` (topic + properties +
  // payload of each stored message).
  RetainedStore(std::uint64_t max_messages = UINT64_MAX, std::uint64_t max_bytes = UINT64_MAX);
  ~RetainedStore();

  enum class SetResult { Stored, Cleared, TooManyMessages, TooManyBytes };
  // Stores `message` as the retained message of its topic; an empty payload clears it (always
  // allowed). A message for a new topic beyond the count bound, or one that would take the bytes
  // beyond their bound (a replacement counts the difference), is refused and nothing changes.
  SetResult set(const MessageRef& message);
  // Appends to `out` every unexpired retained message whose topic matches `filter`.
  void match(std::string_view filter, Clock::time_point now, std::vector<MessageRef>& out);
  // Removes the messages that expired by `now`; returns how many.
  std::size_t purge_expired(Clock::time_point now);
  std::size_t size() const;
  std::uint64_t bytes() const;
  // What a stored message counts against the bytes bound.
  static std::uint64_t cost(const Message& m) {
    return m.topic().size() + m.forward_properties().size() + m.payload().size();
  }
  // Forgets every retained message (a fuzz target starts each input from an empty store).
  void clear();

 private:
  struct Node;
  using ExpiryIndex = std::multimap<Clock::time_point, Node*>;
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
    MessageRef message;
    ExpiryIndex::iterator expiry;  // valid while `message` expires
  };
  // Drops the message of the node at the end of `path` and the nodes left empty.
  void remove(std::vector<std::pair<Node*, std::string_view>>& path, Node* node);
  void collect(Node& node, std::string_view rest, bool at_end, bool first_level, Clock::time_point now,
               std::vector<MessageRef>& out);
  static void collect_all(Node& node, Clock::time_point now, std::vector<MessageRef>& out);

  const std::uint64_t max_messages_;
  const std::uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::unique_ptr<Node> root_;
  std::size_t count_ = 0;
  std::uint64_t bytes_ = 0;
  ExpiryIndex expiries_;
};

}  // namespace mqttd
