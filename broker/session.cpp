#include "broker/session.hpp"

namespace mqttd {

bool Session::may_receive(std::string_view topic) {
  if (!permissions) return true;
  if (!permissions->cache_decisions()) return permissions->may_receive(topic);
  if (cached_for_ != permissions.get()) {
    receive_decisions_.clear();
    cached_for_ = permissions.get();
  }
  if (auto known = receive_decisions_.find(cached_for_, topic)) return *known;
  bool allowed = permissions->may_receive(topic);
  receive_decisions_.store(cached_for_, topic, allowed);
  return allowed;
}

}  // namespace mqttd
