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

void Session::set_permissions(std::shared_ptr<const authz::Permissions> p) {
  if (p == permissions_) return;
  permissions_ = p;
  shared_permissions_.store(std::move(p), std::memory_order_release);
}

bool Session::may_receive(std::string_view topic) {
  if (!permissions_) return true;
  if (!permissions_->cache_decisions()) return permissions_->may_receive(topic);
  if (auto known = receive_decisions_.find(*permissions_, topic)) return *known;
  bool allowed = permissions_->may_receive(topic);
  receive_decisions_.store(*permissions_, topic, allowed);
  return allowed;
}

bool Session::may_receive_snapshot(std::string_view topic) const {
  auto p = shared_permissions_.load(std::memory_order_acquire);
  return !p || p->may_receive(topic);
}

}  // namespace mqttd
