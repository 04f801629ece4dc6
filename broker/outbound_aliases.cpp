#include "broker/outbound_aliases.hpp"

#include <algorithm>

namespace mqttd {

OutboundAliases::OutboundAliases(std::uint16_t client_maximum)
    : slots_(std::min<std::uint16_t>(client_maximum, kMaxAliases)) {
  by_topic_.reserve(slots_.size());
}

OutboundAliases::Choice OutboundAliases::choose(std::string_view topic) {
  if (slots_.empty()) return {};
  if (auto it = by_topic_.find(topic); it != by_topic_.end()) return {it->second, true};
  // A free alias while there is one, else the least recently used.
  return {used_ < slots_.size() ? static_cast<std::uint16_t>(used_ + 1) : tail_, false};
}

void OutboundAliases::commit(std::string_view topic, Choice choice) {
  if (choice.alias == 0) return;
  if (choice.established) {
    touch(choice.alias);
    return;
  }
  Slot& s = slot(choice.alias);
  if (s.topic.empty()) {
    ++used_;
  } else {
    by_topic_.erase(s.topic);
    unlink(choice.alias);
  }
  s.topic.assign(topic);  // reuses the slot's buffer when the new topic fits
  by_topic_.emplace(s.topic, choice.alias);
  touch(choice.alias);
}

void OutboundAliases::unlink(std::uint16_t alias) {
  Slot& s = slot(alias);
  if (s.prev) slot(s.prev).next = s.next;
  if (s.next) slot(s.next).prev = s.prev;
  if (head_ == alias) head_ = s.next;
  if (tail_ == alias) tail_ = s.prev;
  s.prev = s.next = 0;
}

void OutboundAliases::touch(std::uint16_t alias) {
  if (head_ == alias) return;
  Slot& s = slot(alias);
  if (s.prev || s.next || tail_ == alias) unlink(alias);
  s.next = head_;
  if (head_) slot(head_).prev = alias;
  head_ = alias;
  if (!tail_) tail_ = alias;
}

}  // namespace mqttd
