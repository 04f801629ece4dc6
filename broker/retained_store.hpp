// Retained messages, one per topic, shared by all workers. Setting one is rare next to routing,
// so a mutex guards the tree; matching a new subscription's filter walks only matching
// branches.
#pragma once

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
  RetainedStore();
  ~RetainedStore();

  // Stores `message` as the retained message of its topic; an empty payload clears it.
  void set(const MessageRef& message);
  // Appends to `out` every unexpired retained message whose topic matches `filter`.
  void match(std::string_view filter, Clock::time_point now, std::vector<MessageRef>& out);
  std::size_t size() const;
  // Forgets every retained message (a fuzz target starts each input from an empty store).
  void clear();

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
    MessageRef message;
  };
  void collect(Node& node, std::string_view rest, bool at_end, bool first_level, Clock::time_point now,
               std::vector<MessageRef>& out);
  static void collect_all(Node& node, Clock::time_point now, std::vector<MessageRef>& out);

  mutable std::mutex mutex_;
  std::unique_ptr<Node> root_;
  std::size_t count_ = 0;
};

}  // namespace mqttd
