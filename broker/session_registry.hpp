// Client id -> session, for the whole broker. Touched on CONNECT and at session end only, so a
// mutex is enough.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

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
  // The sessions, hashed and compared by their own client id (looked up by a string_view): the
  // id is not stored twice, and an entry is one pointer.
  struct ById {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    std::size_t operator()(const SessionPtr& s) const noexcept { return (*this)(std::string_view(s->client_id)); }
    bool operator()(const SessionPtr& a, const SessionPtr& b) const noexcept { return a->client_id == b->client_id; }
    bool operator()(std::string_view a, const SessionPtr& b) const noexcept { return a == b->client_id; }
    bool operator()(const SessionPtr& a, std::string_view b) const noexcept { return a->client_id == b; }
  };
  std::unordered_set<SessionPtr, ById, ById> sessions_;
};

}  // namespace mqttd
