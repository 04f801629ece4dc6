// Topic aliases the broker assigns to what it sends one client (MQTT 5 section 3.3.2.3.4), for a
// client that allows them (Topic Alias Maximum > 0 in its CONNECT): the topics sent most recently
// keep their alias, the least recently used one gives its alias up for a new topic. A topic's
// first PUBLISH carries the topic and the alias; later ones the alias and an empty topic.
// Owned by the connection (one worker); no allocation once every slot was used and the topics
// fit in the slots' strings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mqttd {

class OutboundAliases {
 public:
  // At most 64 aliases per connection, whatever the client allows: the table costs memory per
  // connection, and the gain is on the topics a client receives most.
  static constexpr std::uint16_t kMaxAliases = 64;
  explicit OutboundAliases(std::uint16_t client_maximum);

  struct Choice {
    std::uint16_t alias = 0;   // 0: no alias (never: every topic gets one)
    bool established = false;  // the client knows it: send the alias with an empty topic
  };
  // The alias to send `topic` with. Call commit() once the packet is written (a packet dropped
  // before it reaches the client must not leave the client's table behind ours).
  Choice choose(std::string_view topic);
  void commit(std::string_view topic, Choice choice);
  std::uint16_t capacity() const { return static_cast<std::uint16_t>(slots_.size()); }

 private:
  struct Slot {
    std::string topic;                 // empty: unused
    std::uint16_t prev = 0, next = 0;  // LRU list by alias (0: none); head_ = most recent
  };
  void touch(std::uint16_t alias);
  void unlink(std::uint16_t alias);
  Slot& slot(std::uint16_t alias) { return slots_[alias - 1]; }

  std::vector<Slot> slots_;
  std::unordered_map<std::string_view, std::uint16_t> by_topic_;  // views into slots_[].topic
  std::uint16_t head_ = 0, tail_ = 0, used_ = 0;
};

}  // namespace mqttd
