#include "broker/session_registry.hpp"

namespace mqttd {

SessionRegistry::Claim SessionRegistry::claim(const std::string& client_id, unsigned worker) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(std::string_view(client_id));
  bool inserted = it == sessions_.end();
  if (inserted) it = sessions_.insert(std::make_shared<Session>(client_id, worker)).first;
  Claim c;
  c.session = *it;
  c.existed = !inserted;
  c.generation = c.session->generation.fetch_add(1, std::memory_order_acq_rel) + 1;
  return c;
}

bool SessionRegistry::remove_if_unclaimed(const SessionPtr& session, std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(std::string_view(session->client_id));
  if (it == sessions_.end() || *it != session) return false;
  if (session->generation.load(std::memory_order_acquire) != generation) return false;
  sessions_.erase(it);
  return true;
}

std::size_t SessionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace mqttd
