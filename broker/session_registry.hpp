// Client id -> session, for the whole broker. Touched on CONNECT and at session end only, so a
// mutex is enough.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/session.hpp"

namespace mqttd {

class SessionRegistry {
 public:
  struct Claim {
    SessionPtr session;
    std::uint64_t generation = 0;
    bool existed = false;
  };
  // Finds or creates the session for `client_id` and bumps its generation, so that a handover
  // started by an older CONNECT can tell it lost.
  Claim claim(const std::string& client_id, unsigned worker);
  // Removes `session` if it is still the registered one and nobody claimed it since
  // `generation`. Returns true if removed: the caller then ends the session.
  bool remove_if_unclaimed(const SessionPtr& session, std::uint64_t generation);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  // Keyed by a view of the session's own client id (the node holds the session, so the view
  // lives as long as the entry): the id is not stored twice.
  std::unordered_map<std::string_view, SessionPtr> sessions_;
};

}  // namespace mqttd
