#include "broker/session.hpp"
#include "broker/logged_client_id.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace mqttd {

void Session::set_permissions(std::shared_ptr<const authz::Permissions> p) {
  if (p.get() == permissions_) return;
  permissions_ = p.get();
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

void Session::ownership_violation(unsigned worker) const {
  // A thread touched a session it does not own: a race that could lose or corrupt its state.
  // Stopping here, in the builds that check, shows the culprit's stack instead of a later crash.
  spdlog::critical("event=ownership_violation client_id={} owner={} caller_worker={}", logged_client_id(client_id),
                   owner.load(std::memory_order_acquire), worker);
  std::abort();
}

bool Session::may_receive_snapshot(std::string_view topic) const {
  auto p = shared_permissions_.load(std::memory_order_acquire);
  return !p || p->may_receive(topic);
}

}  // namespace mqttd
