#include "broker/session.hpp"

namespace mqttd {

std::uint16_t Session::allocate_packet_id() {
  if (packet_ids_in_use_.empty()) packet_ids_in_use_.assign(65536 / 64, 0);
  for (int tries = 0; tries < 65535; ++tries) {
    std::uint16_t id = next_packet_id_;
    next_packet_id_ = static_cast<std::uint16_t>(next_packet_id_ == 65535 ? 1 : next_packet_id_ + 1);
    auto& word = packet_ids_in_use_[id / 64];
    std::uint64_t bit = std::uint64_t{1} << (id % 64);
    if (!(word & bit)) {
      word |= bit;
      return id;
    }
  }
  return 0;  // every identifier is in flight; the caller keeps the message queued
}

void Session::release_packet_id(std::uint16_t id) {
  if (packet_ids_in_use_.empty()) return;
  packet_ids_in_use_[id / 64] &= ~(std::uint64_t{1} << (id % 64));
}

void Session::release_all_packet_ids() { packet_ids_in_use_.clear(); }

bool Session::may_receive(std::string_view topic) {
  if (!permissions) return true;
  if (!permissions->cache_decisions()) return permissions->may_receive(topic);
  if (auto known = receive_decisions_.find(*permissions, topic)) return *known;
  bool allowed = permissions->may_receive(topic);
  receive_decisions_.store(*permissions, topic, allowed);
  return allowed;
}

}  // namespace mqttd
