// The answers of a remote token check, kept so that a client that reconnects (or a flood of
// CONNECTs with one token) does not cost the API server a call each time. Bounded: when full,
// expired entries go first, then the oldest. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "authn/remote_methods.hpp"

namespace mqttd::remote_auth {

class VerdictCache {
 public:
  using Clock = std::chrono::system_clock;
  explicit VerdictCache(std::size_t max_entries = 10000) : max_entries_(max_entries) {}

  // SHA-256 of the token and the audiences (length-prefixed, so that no two lists collide): the
  // token itself is never kept.
  static std::string key(std::string_view token, const std::vector<std::string>& audiences);

  std::optional<authn::RemoteVerdict> find(const std::string& key, Clock::time_point now);
  void put(const std::string& key, authn::RemoteVerdict verdict, Clock::time_point until, Clock::time_point now);
  std::size_t size() const;

 private:
  struct Entry {
    authn::RemoteVerdict verdict;
    Clock::time_point until;
    std::list<std::string>::iterator order;
  };
  void erase(std::unordered_map<std::string, Entry>::iterator it);

  const std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // keys, oldest first
  Clock::time_point last_sweep_{};
};

}  // namespace mqttd::remote_auth
